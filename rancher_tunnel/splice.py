"""The agent's hot path: splice one tunnel stream to a TCP connection at transport level.

Both directions run protocol to transport with no StreamReader copies: the TCP side reads into
one reused buffer shared by the thread's connections (``asyncio.BufferedProtocol``) whose bytes
are framed straight into the outgoing batch; tunnel data is written to the socket as zero-copy
views of the websocket message. Flow control maps to tunnel credit: a TCP peer that stops reading
pauses tunnel reads (no credit goes back), a tunnel peer that stops granting credit pauses TCP
reads. Half-close is forwarded in each direction.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import cast

from .constants import CONNECT_TIMEOUT_S, READ_BUFFER_BYTES
from .errors import TunnelError
from .logs import get_logger
from .stream import IncomingStream, TunnelStream
from .transport import TunnelTransport

_log = get_logger(component="tunnel.splice")


class _Bridge:
    """Shared state of one splice: the two transports and their half-close bookkeeping."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tcp: asyncio.Transport | None = None
        self.tunnel: asyncio.Transport | None = None
        self.tcp_eof = False  # the TCP peer finished sending
        self.tunnel_eof = False  # the tunnel peer finished sending
        self.tcp_lost = False
        self.tunnel_lost = False
        self.done: asyncio.Future[None] = loop.create_future()
        self.early = bytearray()  # TCP bytes read before the tunnel side was attached

    def maybe_close(self) -> None:
        if self.tcp_eof and self.tunnel_eof:
            if self.tcp is not None:
                self.tcp.close()
            if self.tunnel is not None:
                self.tunnel.close()

    def maybe_done(self) -> None:
        if self.tcp_lost and self.tunnel_lost and not self.done.done():
            self.done.set_result(None)


_local = threading.local()


def _shared_read_buffer() -> memoryview:
    """The read buffer of every spliced connection of this thread: ``buffer_updated`` copies
    what was read (into the outgoing batch or a stream's backlog) before it returns, so no
    connection needs a buffer of its own (1,000 streams would hold 256 MiB)."""
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(READ_BUFFER_BYTES))
    return view


class _TcpSide(asyncio.BufferedProtocol):
    """Reads from the TCP target into the shared buffer and writes into the tunnel stream."""

    def __init__(self, bridge: _Bridge) -> None:
        self._bridge = bridge
        self._view = _shared_read_buffer()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport
        tcp = cast(asyncio.Transport, transport)
        self._bridge.tcp = tcp
        tcp.pause_reading()  # until the tunnel side is attached

    def get_buffer(self, sizehint: int) -> memoryview:
        tunnel = self._bridge.tunnel
        if isinstance(tunnel, TunnelTransport):
            credit = tunnel.write_credit
            if 0 < credit < len(self._view):
                return self._view[:credit]  # read no more than the tunnel can take now
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        tunnel = self._bridge.tunnel
        if tunnel is not None:
            tunnel.write(self._view[:nbytes])  # copied into the outgoing batch (or backlog)
        else:  # some loops (uvloop) may deliver before pause_reading() took effect
            self._bridge.early += self._view[:nbytes]

    def eof_received(self) -> bool:
        b = self._bridge
        b.tcp_eof = True
        if b.tunnel is not None:
            b.tunnel.write_eof()  # else forwarded when the tunnel side is attached
        b.maybe_close()
        return True

    def pause_writing(self) -> None:  # the TCP target stopped reading
        if self._bridge.tunnel is not None:
            self._bridge.tunnel.pause_reading()

    def resume_writing(self) -> None:
        if self._bridge.tunnel is not None:
            self._bridge.tunnel.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        b = self._bridge
        b.tcp_lost = True
        if b.tunnel is not None and not b.tunnel.is_closing():
            if exc is not None or not b.tcp_eof:
                b.tunnel.abort()
            else:
                b.tunnel.close()
        b.maybe_done()


class _TunnelSide(asyncio.Protocol):
    """Receives tunnel data (zero-copy views) and writes it to the TCP target."""

    accepts_memoryview = True
    pause_on_no_credit = True

    def __init__(self, bridge: _Bridge) -> None:
        self._bridge = bridge

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        b = self._bridge
        b.tunnel = transport
        if b.early:
            transport.write(b.early)
            b.early = bytearray()
        if b.tcp_eof:
            transport.write_eof()
        if b.tcp_lost:
            if not b.tcp_eof:
                transport.abort()
            return
        if b.tcp is not None:
            b.tcp.resume_reading()

    def data_received(self, data: bytes) -> None:
        tcp = self._bridge.tcp
        if tcp is not None:
            tcp.write(data)

    def eof_received(self) -> bool:
        b = self._bridge
        b.tunnel_eof = True
        if b.tcp is not None and b.tcp.can_write_eof():
            b.tcp.write_eof()
        b.maybe_close()
        return True

    def pause_writing(self) -> None:  # tunnel credit exhausted
        if self._bridge.tcp is not None:
            self._bridge.tcp.pause_reading()

    def resume_writing(self) -> None:
        if self._bridge.tcp is not None:
            self._bridge.tcp.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        b = self._bridge
        b.tunnel_lost = True
        if b.tcp is not None and not b.tcp.is_closing():
            if exc is not None or not b.tunnel_eof:
                b.tcp.abort()
            else:
                b.tcp.close()
        b.maybe_done()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


class _ForwardSide(_TcpSide):
    """An accepted local TCP connection that opens a tunnel stream and splices itself to it."""

    def __init__(self, open_stream: Callable[[], Awaitable[TunnelStream]]) -> None:
        super().__init__(_Bridge(asyncio.get_running_loop()))
        self._open_stream = open_stream
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._task = asyncio.get_running_loop().create_task(self._dial(), name="tunnel:forward")

    async def _dial(self) -> None:
        b = self._bridge
        try:
            stream = await self._open_stream()
        except (TunnelError, OSError, TimeoutError) as exc:
            _log.info("forward dial failed", reason=str(exc))
            if b.tcp is not None:
                _refuse(b.tcp)
            return
        if b.tcp_lost and not b.tcp_eof and not b.early:
            stream.reset("client went away")
            return
        stream.attach(_TunnelSide(b))


def _refuse(tcp: asyncio.Transport) -> None:
    """Close a local connection whose stream the peer refused: end-of-stream first, so the
    client reads EOF. Closing at once was a reset whenever its request had arrived and not been
    read yet (a socket closed with unread input resets), otherwise an EOF: which one depended
    on timing."""
    try:
        if tcp.can_write_eof():
            tcp.write_eof()
    except (OSError, RuntimeError):
        pass  # already closing: the abort below is all that is left
    tcp.abort()


def forward_protocol(
    open_stream: Callable[[], Awaitable[TunnelStream]],
) -> Callable[[], asyncio.BufferedProtocol]:
    """A protocol factory for ``loop.create_server``: every accepted connection is spliced to
    a tunnel stream from ``open_stream()`` (e.g. ``lambda: session.open_stream(target)``), with
    the same zero-copy, credit-mapped path as :func:`serve_tcp`. Bytes the client sends before
    the stream is open are kept, not lost."""
    return lambda: _ForwardSide(open_stream)


async def serve_tcp(
    incoming: IncomingStream,
    host: str,
    port: int,
    *,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> None:
    """Connect to ``host:port`` and splice it to ``incoming`` until both directions are done.

    If the connect fails the stream is refused with the reason; the session is not affected.
    """
    loop = asyncio.get_running_loop()
    bridge = _Bridge(loop)
    try:
        async with asyncio.timeout(connect_timeout_s):
            await loop.create_connection(lambda: _TcpSide(bridge), host, port)
    except (OSError, TimeoutError) as exc:
        reason = f"connect to {host}:{port} failed: {_describe(exc)}"
        _log.info("dial failed", stream_id=incoming.stream_id, reason=reason)
        await incoming.refuse(reason)
        return
    try:
        stream = await incoming.accept()
        stream.attach(_TunnelSide(bridge))
        await bridge.done
    finally:
        if bridge.tcp is not None and not bridge.tcp_lost:
            bridge.tcp.abort()
        if bridge.tunnel is not None and not bridge.tunnel_lost:
            bridge.tunnel.abort()
