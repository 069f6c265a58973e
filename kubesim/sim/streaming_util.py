"""Status answers for the streaming subresources (rendered here, not by the API core, because
some are written after the response has started)."""

from __future__ import annotations

from aiohttp import web

from kubesim.errors import StatusError


def status_response(err: StatusError) -> web.Response:
    return web.json_response(
        err.status(), status=err.code, headers={"Cache-Control": "no-cache, private"}
    )
