"""``GET /api/v1/namespaces/<ns>/pods/<p>/log``: the container's log buffer with kubelet's
options (container, follow, previous, sinceSeconds, sinceTime, timestamps, tailLines,
limitBytes), streamed chunked and flushed per line when following."""

from __future__ import annotations

import datetime

from aiohttp import web

from kubesim.errors import StatusError
from kubesim.sim.context import SimContext
from kubesim.sim.logbuf import ContainerLog, LogLine
from kubesim.sim.podcheck import container_running, kubelet_unreachable, pick_container
from kubesim.sim.store_api import Obj
from kubesim.sim.streaming_util import status_response
from kubesim.sim.util import name_of, namespace_of, now, rfc3339_nano
from rancher_tunnel.logs import get_logger

log = get_logger(component="kubesim.sim.podlogs")


def _int_param(request: web.Request, name: str, pod: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise StatusError(
            400, "BadRequest", f'strconv.ParseInt: parsing "{raw}": invalid syntax'
        ) from exc
    minimum = 1 if name in ("sinceSeconds", "limitBytes") else 0
    if value < minimum:
        comparison = "greater than 0" if minimum else "greater than or equal to 0"
        raise StatusError(
            422,
            "Invalid",
            f'PodLogOptions "{pod}" is invalid: {name}: Invalid value: {value}: '
            f"must be {comparison}",
            {
                "name": pod,
                "kind": "PodLogOptions",
                "causes": [
                    {
                        "reason": "FieldValueInvalid",
                        "message": f"Invalid value: {value}: must be {comparison}",
                        "field": name,
                    }
                ],
            },
        )
    return value


def _bool_param(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() in ("1", "true")


def _since(request: web.Request, pod: str) -> datetime.datetime | None:
    seconds = _int_param(request, "sinceSeconds", pod)
    since_time = request.query.get("sinceTime")
    if seconds is not None and since_time:
        raise StatusError(
            422,
            "Invalid",
            f'PodLogOptions "{pod}" is invalid: []: Forbidden: at most one of '
            "`sinceTime` or `sinceSeconds` may be specified",
        )
    if seconds is not None:
        return now() - datetime.timedelta(seconds=seconds)
    if since_time:
        try:
            return datetime.datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError as exc:
            raise StatusError(
                400, "BadRequest", f'parsing time "{since_time}" as RFC3339 failed'
            ) from exc
    return None


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _render(line: LogLine, timestamps: bool) -> bytes:
    return (rfc3339_nano(line.time).encode() + b" " + line.data) if timestamps else line.data


async def serve_log(request: web.Request, pod: Obj, ctx: SimContext) -> web.StreamResponse:
    try:
        return await _serve(request, pod, ctx)
    except StatusError as err:
        return status_response(err)


async def _serve(request: web.Request, pod: Obj, ctx: SimContext) -> web.StreamResponse:
    name, ns = name_of(pod), namespace_of(pod)
    container = pick_container(pod, request.query.get("container", ""))
    follow = _bool_param(request, "follow")
    previous = _bool_param(request, "previous")
    timestamps = _bool_param(request, "timestamps")
    tail = _int_param(request, "tailLines", name)
    limit = _int_param(request, "limitBytes", name)
    since = _since(request, name)
    if not pod.get("spec", {}).get("nodeName"):
        return web.Response(status=204, headers={"Cache-Control": "no-cache, private"})
    unreachable = kubelet_unreachable(ctx, pod, f"/containerLogs/{ns}/{name}/{container}")
    if unreachable is not None:
        raise unreachable
    buf: ContainerLog | None
    if previous:
        buf = ctx.logs.previous(ns, name, container)
        if buf is None:
            raise StatusError(
                400,
                "BadRequest",
                f'previous terminated container "{container}" in pod "{name}" not found',
            )
        follow = False
    else:
        waiting = container_running(pod, container)
        if waiting is not None:
            raise waiting
        buf = ctx.logs.get(ns, name, container)
    end, lines = buf.snapshot()
    if since is not None:
        lines = [ln for ln in lines if ln.time >= since]
    if tail is not None:
        lines = lines[-tail:] if tail else []
    resp = web.StreamResponse(
        status=200, headers={"Content-Type": "text/plain", "Cache-Control": "no-cache, private"}
    )
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    budget = limit

    async def emit(line: LogLine) -> bool:
        nonlocal budget
        data = _render(line, timestamps)
        if budget is not None:
            data = data[:budget]
            budget -= len(data)
        if data:
            await resp.write(data)
        return budget is None or budget > 0

    try:
        with ctx.streams.track():
            for line in lines:
                if not await emit(line):
                    break
            else:
                if follow:
                    async for line in buf.follow(end, lambda: _connected(request)):
                        if not await emit(line):
                            break
        await resp.write_eof()
    except ConnectionError:  # the client went away mid-stream
        log.info("log stream closed by client", namespace=ns, pod=name)
    return resp
