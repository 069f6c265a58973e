"""Entry point for the pod subresources the API core hands over: log, exec, attach,
portforward."""

from __future__ import annotations

from aiohttp import web

from kubesim.errors import StatusError
from kubesim.sim.context import SimContext
from kubesim.sim.store_api import Obj
from kubesim.sim.streaming_util import status_response


async def handle(
    subresource: str, request: web.Request, pod: Obj, ctx: SimContext
) -> web.StreamResponse:
    if subresource == "log":
        from kubesim.sim.podlogs import serve_log

        return await serve_log(request, pod, ctx)
    if subresource in ("exec", "attach"):
        from kubesim.sim.remotecommand import serve_remotecommand

        return await serve_remotecommand(subresource, request, pod, ctx)
    if subresource == "portforward":
        from kubesim.sim.portforward import serve_portforward

        return await serve_portforward(request, pod, ctx)
    return status_response(
        StatusError(404, "NotFound", "the server could not find the requested resource")
    )
