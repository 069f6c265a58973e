"""HTTP listeners that a slow or oversized client cannot hold: a deadline for the TLS handshake and
for the first request's head (request line and headers), header size limits, and a bounded
keep-alive idle time (which also bounds a request head dripped on a kept-alive connection), and
a bound on the connections one source address holds between accept and a complete first request
head (TLS handshake included: a source over it is closed before any TLS work).

Used by every listener of ours built on aiohttp (the server, kube-api-auth): ``GuardedSite``
replaces ``web.TCPSite`` and ``RUNNER_LIMITS`` goes to ``web.AppRunner``."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ipaddress
import json
import os
import ssl
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, cast

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
    """Closes the connection if no complete request head arrives within the deadline. A
    connection counted in ``pending`` under ``source`` (by ``_AcceptGate``) is released when its
    first request head is complete, or when it ends."""

    def __init__(
        self, *args: Any, header_deadline_s: float, pending: PendingHeads | None = None,
        source: str | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline_s = header_deadline_s
        self._deadline: asyncio.TimerHandle | None = None
        self._pending = pending
        self._source = source if pending is not None else None

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


class _ServerTLS(asyncio.sslproto.SSLProtocol):
    """asyncio's server-side TLS, as ``create_server(ssl=...)`` would build it, that also tells
    the handler when the connection ends during the handshake (then the handler never hears of
    the connection: its ``connection_made`` comes after the handshake)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, handler: DeadlineRequestHandler,
        context: ssl.SSLContext,
    ) -> None:
        # No waiter (None: nobody awaits the handshake; CPython accepts it, typeshed says
        # Future) and a float timeout (typeshed says int; CPython takes seconds as a number).
        super().__init__(loop, handler, context, None,  # type: ignore[arg-type]
                         server_side=True,
                         ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S)  # type: ignore[arg-type]
        self._on_lost: Callable[[], None] = handler.release_source

    def connection_lost(self, exc: BaseException | None) -> None:
        self._on_lost()
        super().connection_lost(exc)


class _AcceptGate(asyncio.Protocol):
    """The first protocol of every accepted connection, while the peer address is known and
    before any TLS work: over its source's bound the connection is closed at once; otherwise it
    is counted and handed to the handler (through TLS when the site has a context), which
    releases it at its first complete request head."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, pending: PendingHeads,
        context: ssl.SSLContext | None,
        make_handler: Callable[[str | None], DeadlineRequestHandler],
    ) -> None:
        self._loop = loop
        self._pending = pending
        self._context = context
        self._make_handler = make_handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        source = source_key(transport.get_extra_info("peername"))
        if source is not None and not self._pending.acquire(source):
            transport.abort()
            return
        handler = self._make_handler(source)
        protocol: asyncio.BaseProtocol = handler
        if self._context is not None:
            protocol = _ServerTLS(self._loop, handler, self._context)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)


class GuardedSite(web.TCPSite):
    """``web.TCPSite`` with the head deadline, a TLS handshake timeout and the bound on
    connections per source without a request head, handshake included (``max_pending_per_source``;
    default: ``RANCHER_MAX_PENDING_PER_SOURCE``, else ``MAX_PENDING_HEADS_PER_SOURCE``).

    The listener itself is plain TCP: ``_AcceptGate`` sees each connection at accept and layers
    asyncio's TLS protocol on it, as ``create_server(ssl=...)`` does, so that a source over its
    bound costs no handshake."""

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
        context = self._ssl_context

        def handler(source: str | None) -> DeadlineRequestHandler:
            return DeadlineRequestHandler(
                server, loop=loop, header_deadline_s=deadline, pending=pending, source=source,
                **server._kwargs,
            )

        self._server = await loop.create_server(
            lambda: _AcceptGate(loop, pending, context, handler),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]
        else:
            self._bound_port = self._port
