"""The tiny interface a session needs from its websocket, and adapters to it.

``AiohttpWebSocket`` wraps aiohttp's server ``web.WebSocketResponse`` or client
``ClientWebSocketResponse``; ``StreamWebSocket`` runs the same session over a plain asyncio stream
pair (``socket.socketpair()`` in tests): tunnel frames are length-prefixed, so no message framing
is needed there.

The hot path is synchronous: :meth:`write_chunk` writes one outgoing chunk (a bytearray with
``headroom_bytes`` free at its front) straight to the transport; the aiohttp adapter builds the
websocket frame header in that headroom and masks in place, so a chunk is written with one
``transport.write`` and no copies. :meth:`drain` is awaited only when the transport is paused.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from aiohttp import WSMessage, WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse

from .constants import WS_MAX_MESSAGE_BYTES
from .errors import RemoteProtocolError, forget_traceback
from .wsmask import websocket_mask
from .wsreader import WebSocketProtocolError, WsReaderProtocol

# push-mode callbacks: one binary message (never mutated afterwards); the end of the input
# (None: the peer closed; an OSError / ConnectionError; a ProtocolError)
MessageCallback = Callable[[bytes | bytearray], None]
EndCallback = Callable[[Exception | None], None]

STREAM_READ_BYTES = 256 * 1024  # one read from a StreamWebSocket's reader
WS_HEADROOM_BYTES = 14  # longest websocket frame header (2 + 8 length bytes) + 4 mask bytes
_WS_BINARY_FIN = 0x82
_WS_PONG_FIN = 0x8A
_TAKEOVER_TYPES = (WSMsgType.BINARY, WSMsgType.PING, WSMsgType.PONG)  # may be queued at start_push
_LEN2 = struct.Struct("!BBH")
_LEN8 = struct.Struct("!BBQ")
_MASK_RANDOM = random.Random()  # masking keys need not be secret (RFC 6455 10.3), like aiohttp's


@runtime_checkable
class WebSocketLike(Protocol):
    headroom_bytes: int

    def write_chunk(self, buf: bytearray, offset: int) -> None:
        """Write ``buf[offset:]`` as one message now (``offset`` bytes of headroom before it)."""
        ...

    @property
    def needs_drain(self) -> bool:
        """The transport's buffer is full: await :meth:`drain` before writing more."""
        ...

    async def drain(self) -> None: ...

    async def receive(self) -> bytes | None:
        """The next binary message; None once the peer closed."""
        ...

    async def close(self, code: int, reason: str) -> None: ...

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake."""
        ...


class AiohttpWebSocket:
    """An aiohttp websocket (server or client side) as a :class:`WebSocketLike`.

    Writes go to aiohttp's transport directly (uncompressed binary frames, masked on the client
    side as RFC 6455 requires). Reads: after :meth:`start_push` our ``wsreader`` reads from the
    transport (it answers pings; aiohttp's protocol still gets flow-control and connection-lost
    callbacks and, through its message queue, the peer's CLOSE, so aiohttp's ``close()`` runs the
    closing handshake as before); otherwise aiohttp reads and :meth:`receive` is used.
    """

    headroom_bytes = WS_HEADROOM_BYTES

    def __init__(self, ws: web.WebSocketResponse | ClientWebSocketResponse) -> None:
        self._ws = ws
        writer: Any = getattr(ws, "_writer", None)
        if writer is None or not hasattr(writer, "transport"):
            raise TypeError("websocket not prepared / unsupported aiohttp version")
        if getattr(writer, "compress", 0):
            raise ValueError("the tunnel websocket must not use compression")
        self._transport: asyncio.Transport = writer.transport
        self._protocol: Any = writer.protocol
        self._mask = bool(writer.use_mask)
        self._queue: Any = None
        self._on_end: EndCallback | None = None
        self._reader: WsReaderProtocol | None = None
        # a websocket PING that arrived while the transport was full: only the newest is
        # answered, with our next write (a peer that pings and does not read costs nothing)
        self._owed_pong: bytes | None = None

    def write_chunk(self, buf: bytearray, offset: int) -> None:
        if self._owed_pong is not None:
            payload, self._owed_pong = self._owed_pong, None
            self._pong(payload)
        self._write_frame(_WS_BINARY_FIN, buf, offset)

    def _write_frame(self, first: int, buf: bytearray, offset: int) -> None:
        n = len(buf) - offset
        if n < 126:
            header = bytes((first, n | (0x80 if self._mask else 0)))
        elif n < 65536:
            header = _LEN2.pack(first, 126 | (0x80 if self._mask else 0), n)
        else:
            header = _LEN8.pack(first, 127 | (0x80 if self._mask else 0), n)
        if self._mask:
            key = _MASK_RANDOM.getrandbits(32).to_bytes(4, "big")
            # mask the whole buffer with the key rotated so the payload at `offset` gets key[0]
            r = offset % 4
            rotated = key[(4 - r) % 4 :] + key[: (4 - r) % 4]
            websocket_mask(rotated, buf)
            header += key
        start = offset - len(header)
        buf[start:offset] = header
        if self._transport.is_closing():
            raise ConnectionResetError("websocket transport closing")
        self._transport.write(memoryview(buf)[start:])

    @property
    def needs_drain(self) -> bool:
        return bool(self._protocol.writing_paused)

    async def drain(self) -> None:
        await self._protocol._drain_helper()

    def start_push(self, on_message: MessageCallback, on_end: EndCallback) -> bool:
        """Read with our own frame reader from now on (see ``wsreader``): every binary message
        goes to ``on_message`` synchronously as it arrives, ``on_end`` is called once when the
        input ends. False (nothing changed; use :meth:`receive`) if the switch is not possible
        (e.g. aiohttp's own heartbeat is on). Messages are limited to the server websocket's
        ``max_msg_size`` (``WS_MAX_MESSAGE_BYTES`` on the client side, which does not keep it).

        Call it before the peer can have sent more than small messages (the tunnel's HELLO):
        messages aiohttp already parsed are delivered first, but a frame aiohttp has only partly
        read cannot be taken over."""
        transport = self._transport
        queue: Any = getattr(self._ws, "_reader", None)
        pending = getattr(queue, "_buffer", None)
        old = getattr(transport, "get_protocol", lambda: None)()
        if (
            not isinstance(pending, deque)
            or old is not self._protocol
            or transport.is_closing()
            or getattr(self._ws, "_heartbeat", None)  # aiohttp would wait for pongs we ignore
            or queue.is_eof()
            or queue.exception() is not None
            or any(m.type not in _TAKEOVER_TYPES for m, _ in pending)
        ):
            return False
        self._queue = queue
        self._on_end = on_end
        reader = WsReaderProtocol(
            max_message_bytes=int(getattr(self._ws, "_max_msg_size", 0) or WS_MAX_MESSAGE_BYTES),
            on_message=on_message,
            on_ping=self._pong,
            on_close=self._peer_closed,
            on_error=self._read_error,
            on_lost=self._lost,
            on_eof=old.eof_received,
            flow=old,
            masked=not self._mask,  # we do not mask: we are the server, the client must
        )
        queued = list(pending)
        pending.clear()
        transport.set_protocol(reader)
        self._reader = reader
        if not transport.is_reading():  # aiohttp may have paused it for its own queue
            transport.resume_reading()
        for msg, _size in queued:
            if msg.type is WSMsgType.BINARY:
                on_message(msg.data)
            elif msg.type is WSMsgType.PING:
                self._pong(msg.data)
        return True

    def _end(self, exc: Exception | None) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(exc)

    def _pong(self, payload: bytes) -> None:
        if self._transport.is_closing():
            return
        if self.needs_drain:
            self._owed_pong = payload
            return
        buf = bytearray(WS_HEADROOM_BYTES)
        buf += payload
        self._write_frame(_WS_PONG_FIN, buf, WS_HEADROOM_BYTES)

    def _peer_closed(self, code: int, reason: str) -> None:
        # aiohttp's close() finds the peer's CLOSE where its own reader would have put it
        self._queue.feed_data(WSMessage(WSMsgType.CLOSE, code, reason), 0)
        self._end(None)

    def _read_error(self, exc: WebSocketProtocolError) -> None:
        # our close frame carries the error; nothing more is read, so aiohttp must not wait
        # for the peer's answer
        self._queue.feed_data(WSMessage(WSMsgType.CLOSE, exc.close_code, exc.reason), 0)
        self._end(exc)

    def _lost(self, exc: Exception | None) -> None:
        self._end(exc)
        self._protocol.connection_lost(exc)  # aiohttp cleans up as if it had read all along

    async def receive(self) -> bytes | None:
        msg = await self._ws.receive()
        if msg.type is WSMsgType.BINARY:
            data: bytes = msg.data
            return data
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return None
        raise RemoteProtocolError(f"unexpected websocket message type {msg.type.name}")

    async def close(self, code: int, reason: str) -> None:
        try:
            await self._ws.close(code=code, message=reason.encode()[:120])
        finally:
            # aiohttp keeps a failed close's exception (a peer already gone), whose traceback
            # holds this websocket (~90 objects a session kept for a full collection)
            exc = self._ws.exception()
            if exc is not None:
                forget_traceback(exc)

    def abort(self) -> None:
        self._transport.abort()


class StreamWebSocket:
    """A byte stream (e.g. one end of ``socket.socketpair()``) as a :class:`WebSocketLike`."""

    headroom_bytes = 0

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    def write_chunk(self, buf: bytearray, offset: int) -> None:
        if self._writer.transport.is_closing():
            raise ConnectionResetError("stream closing")
        self._writer.write(memoryview(buf)[offset:] if offset else buf)

    @property
    def needs_drain(self) -> bool:
        t = self._writer.transport
        return t.get_write_buffer_size() > t.get_write_buffer_limits()[1]

    async def drain(self) -> None:
        await self._writer.drain()

    async def receive(self) -> bytes | None:
        data = await self._reader.read(STREAM_READ_BYTES)
        return data or None

    async def close(self, code: int, reason: str) -> None:
        if self._writer.is_closing():
            return
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    def abort(self) -> None:
        self._writer.transport.abort()


def adapt(
    ws: web.WebSocketResponse | ClientWebSocketResponse | WebSocketLike,
) -> WebSocketLike:
    if isinstance(ws, (web.WebSocketResponse, ClientWebSocketResponse)):
        return AiohttpWebSocket(ws)
    if isinstance(ws, WebSocketLike):
        return ws
    raise TypeError(f"not a websocket: {type(ws).__name__}")
