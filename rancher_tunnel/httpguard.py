"""HTTP listeners that a slow or oversized client cannot hold: a deadline for the TLS handshake and
for the first request's head (request line and headers), header size limits, and a bounded
keep-alive idle time (which also bounds a request head dripped on a kept-alive connection), and
a bound on the connections one source address holds between the end of their TLS handshake and a
complete first request head. A connection still in its handshake is bounded in time only
(``TLS_HANDSHAKE_TIMEOUT_S``): its address is known to our code only once the loop's own TLS
(uvloop's, in C) hands it over, and a TLS layer of ours in Python cost every agent session 256 KiB
and the tunnel's hot path its C TLS.

Used by every listener of ours built on aiohttp (the server, kube-api-auth): ``GuardedSite``
replaces ``web.TCPSite`` and ``RUNNER_LIMITS`` goes to ``web.AppRunner``."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from rancher_tunnel.logs import get_logger

HEADER_DEADLINE_S = 10.0  # from connection (after TLS) to a complete first request head
TLS_HANDSHAKE_TIMEOUT_S = 10.0
KEEPALIVE_TIMEOUT_S = 30.0  # idle between requests; a head dripped after a response counts
MAX_REQUEST_LINE_BYTES = 8190
MAX_HEADER_FIELD_BYTES = 8190
MAX_HEADERS = 100
MAX_ERROR_MESSAGE_CHARS = 200
# Connections one source address may hold between accept and a complete first request head
# (TLS handshake included); one more is closed at once, before its handshake. High, because
# agents behind one NAT reconnect together after a server restart, and a legitimate connection
# spends milliseconds in this window. IPv6 sources count per /64 (one host usually has a /64).
MAX_PENDING_HEADS_PER_SOURCE = 512
PENDING_PER_SOURCE_ENV = "RANCHER_MAX_PENDING_PER_SOURCE"
IPV6_SOURCE_PREFIX = 64
REFUSAL_LOG_INTERVAL_S = 60.0  # at most one log line per source per interval
MAX_REFUSAL_LOG_SOURCES = 4096  # sources remembered for that; the oldest are forgotten first

# For ``web.AppRunner(app, **RUNNER_LIMITS)``: forwarded to every connection's handler.
RUNNER_LIMITS: dict[str, Any] = {
    "keepalive_timeout": KEEPALIVE_TIMEOUT_S,
    "max_line_size": MAX_REQUEST_LINE_BYTES,
    "max_field_size": MAX_HEADER_FIELD_BYTES,
    "max_headers": MAX_HEADERS,
}


class GuardCounters:
    """Connections closed before a complete first request head, by reason (for metrics)."""

    header_timeouts = 0  # the head deadline passed
    pending_per_source = 0  # its source already held MAX_PENDING_HEADS_PER_SOURCE


def max_pending_per_source_from_env(env: Mapping[str, str] | None = None) -> int:
    """``RANCHER_MAX_PENDING_PER_SOURCE`` (a positive whole number), else the default."""
    env = os.environ if env is None else env
    raw = env.get(PENDING_PER_SOURCE_ENV, "").strip()
    if not raw:
        return MAX_PENDING_HEADS_PER_SOURCE
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{PENDING_PER_SOURCE_ENV} must be a positive whole number, got {raw!r}")
    return value


def source_key(peername: Any) -> str | None:
    """The address a connection is counted under: the IPv4 address (also when IPv4-mapped), or
    the IPv6 /64. None when the transport has no IP peer (a Unix socket)."""
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return None
    host = peername[0]
    if ":" not in host:
        return host
    try:
        addr = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((addr, IPV6_SOURCE_PREFIX), strict=False))


class PendingHeads:
    """Per source address: connections accepted that have not yet delivered a complete first
    request head (in their TLS handshake, or after it). One listener's; only touched from its
    event loop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count: dict[str, int] = {}
        self._refused_since_log: dict[str, tuple[float, int]] = {}  # source -> (logged at, n)
        self._log = get_logger(component="httpguard")

    def acquire(self, source: str) -> bool:
        n = self._count.get(source, 0)
        if n >= self.limit:
            GuardCounters.pending_per_source += 1
            self._note_refusal(source)
            return False
        self._count[source] = n + 1
        return True

    def release(self, source: str) -> None:
        n = self._count.get(source, 0) - 1
        if n > 0:
            self._count[source] = n
        else:
            self._count.pop(source, None)

    def _note_refusal(self, source: str) -> None:
        now = time.monotonic()
        last = self._refused_since_log.get(source)
        if last is not None and now - last[0] < REFUSAL_LOG_INTERVAL_S:
            self._refused_since_log[source] = (last[0], last[1] + 1)
            return
        self._refused_since_log.pop(source, None)
        while len(self._refused_since_log) >= MAX_REFUSAL_LOG_SOURCES:  # oldest first
            del self._refused_since_log[next(iter(self._refused_since_log))]
        self._refused_since_log[source] = (now, 0)
        self._log.warning(
            "connection closed: too many connections from one source without a request head",
            source=source, limit=self.limit,
            refused_since_last_line=(last[1] if last is not None else 0) + 1,
        )


class DeadlineRequestHandler(RequestHandler):
    """Closes the connection if no complete request head arrives within the deadline. With
    ``pending``, the connection is counted under its source address from its start (after the
    TLS handshake) until its first complete request head, or its end; one over the source's
    bound is closed at once."""

    def __init__(
        self, *args: Any, header_deadline_s: float, pending: PendingHeads | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline_s = header_deadline_s
        self._deadline: asyncio.TimerHandle | None = None
        self._pending = pending
        self._source: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._pending is not None:
            source = source_key(transport.get_extra_info("peername"))
            if source is not None and not self._pending.acquire(source):
                transport.close()  # connection_lost follows: nothing counted to release
                return
            self._source = source
        self._deadline = asyncio.get_running_loop().call_later(
            self._header_deadline_s, self._head_too_slow
        )

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is not None and self._request_count > 0:
            self._deadline.cancel()
            self._deadline = None
            self.release_source()

    def release_source(self) -> None:
        """No longer counted against its source (idempotent)."""
        if self._source is not None and self._pending is not None:
            self._pending.release(self._source)
        self._source = None

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
        self.release_source()
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)


class GuardedSite(web.TCPSite):
    """``web.TCPSite`` with the head deadline, a TLS handshake timeout and the bound on
    connections per source without a request head (``max_pending_per_source``; default:
    ``RANCHER_MAX_PENDING_PER_SOURCE``, else ``MAX_PENDING_HEADS_PER_SOURCE``)."""

    def __init__(
        self, runner: web.AppRunner, *args: Any, header_deadline_s: float = HEADER_DEADLINE_S,
        max_pending_per_source: int | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(runner, *args, **kwargs)
        self._header_deadline_s = header_deadline_s
        self.pending = PendingHeads(
            max_pending_per_source if max_pending_per_source is not None
            else max_pending_per_source_from_env())

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        deadline = self._header_deadline_s
        pending = self.pending

        def handler() -> RequestHandler:
            return DeadlineRequestHandler(
                server, loop=loop, header_deadline_s=deadline, pending=pending,
                **server._kwargs,
            )

        # The loop's own TLS (uvloop's on our services): an asyncio TLS layer of ours on each
        # connection cost 256 KiB of resident buffer and Python-level TLS per agent session.
        self._server = await loop.create_server(
            handler,
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
