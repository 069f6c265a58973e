"""HTTP listeners that a slow or oversized client cannot hold: a deadline for the TLS handshake and
for the first request's head (request line and headers), header size limits, and a bounded
keep-alive idle time (which also bounds a request head dripped on a kept-alive connection).

Used by every listener of ours built on aiohttp (the server, kube-api-auth): ``GuardedSite``
replaces ``web.TCPSite`` and ``RUNNER_LIMITS`` goes to ``web.AppRunner``."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

HEADER_DEADLINE_S = 10.0  # from connection (after TLS) to a complete first request head
TLS_HANDSHAKE_TIMEOUT_S = 10.0
KEEPALIVE_TIMEOUT_S = 30.0  # idle between requests; a head dripped after a response counts
MAX_REQUEST_LINE_BYTES = 8190
MAX_HEADER_FIELD_BYTES = 8190
MAX_HEADERS = 100
MAX_ERROR_MESSAGE_CHARS = 200

# For ``web.AppRunner(app, **RUNNER_LIMITS)``: forwarded to every connection's handler.
RUNNER_LIMITS: dict[str, Any] = {
    "keepalive_timeout": KEEPALIVE_TIMEOUT_S,
    "max_line_size": MAX_REQUEST_LINE_BYTES,
    "max_field_size": MAX_HEADER_FIELD_BYTES,
    "max_headers": MAX_HEADERS,
}


class GuardCounters:
    """How many connections were closed for a slow request head (for metrics)."""

    header_timeouts = 0


class DeadlineRequestHandler(RequestHandler):
    """Closes the connection if no complete request head arrives within the deadline."""

    def __init__(self, *args: Any, header_deadline_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline_s = header_deadline_s
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._deadline = asyncio.get_running_loop().call_later(
            self._header_deadline_s, self._head_too_slow
        )

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is not None and self._request_count > 0:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        if self._request_count == 0 and self.transport is not None:
            GuardCounters.header_timeouts += 1
            self.transport.abort()

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A JSON body saying what was wrong (a malformed or oversized head), never a traceback;
        a Kubernetes ``Status`` on ``/k8s/`` paths."""
        resp = super().handle_error(request, status, exc, message)  # logs; may raise
        what = (message or HTTPStatus(status).phrase)[:MAX_ERROR_MESSAGE_CHARS]
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            what = "internal error; see the server log"
        body: dict[str, Any]
        if request.path.startswith("/k8s/"):
            body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": what, "reason": "BadRequest" if status < 500 else "InternalError",
                    "code": status}
        else:
            body = {"type": "error", "status": status,
                    "code": "InvalidRequest" if status < 500 else "ServerError", "message": what}
        out = web.Response(
            status=status, text=json.dumps(body), content_type="application/json")
        out.force_close()
        del resp
        return out

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)


class GuardedSite(web.TCPSite):
    """``web.TCPSite`` with the head deadline and a TLS handshake timeout."""

    def __init__(
        self, runner: web.AppRunner, *args: Any, header_deadline_s: float = HEADER_DEADLINE_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(runner, *args, **kwargs)
        self._header_deadline_s = header_deadline_s

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        deadline = self._header_deadline_s

        def factory() -> RequestHandler:
            return DeadlineRequestHandler(
                server, loop=loop, header_deadline_s=deadline,
                **server._kwargs,
            )

        self._server = await loop.create_server(
            factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S if self._ssl_context else None,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]
        else:
            self._bound_port = self._port
