"""A websocket frame reader fed straight from the transport (the receive hot path).

aiohttp's reader copies every payload out of the bytes it is fed, queues a message and wakes the
reading task one loop iteration later. :class:`WsReaderProtocol` replaces it once the websocket is
open (aiohttp still does the HTTP upgrade and the closing handshake): it is an
``asyncio.BufferedProtocol``, so the (TLS) transport decrypts into its buffers; a large message's
payload is read straight into a buffer of its own (never reused, so zero-copy views of it may be
held downstream), unmasked in place (``wsmask``: aiohttp's C masking when importable), and handed to
``on_message`` synchronously from ``buffer_updated``. Small frames are parsed out of one reused
scratch buffer and copied (cheap). Control frames: PING is answered through ``on_ping``, PONG is
ignored, CLOSE ends the input (``on_close``). Anything malformed, a text message or a message over
``max_message_bytes`` ends the input with a :class:`WebSocketProtocolError` (``on_error``). No
bytes are read after the input ended. Masking is checked as RFC 6455 5.1 requires: a server fails
the connection (1002) on an unmasked client frame, a client on a masked server frame.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Callable

from .errors import RemoteProtocolError
from .wsmask import websocket_mask

SCRATCH_BYTES = 64 * 1024  # reused buffer small frames are parsed from (one per thread)
DIRECT_MIN_BYTES = 4 * 1024  # a partly received payload this large is read into its own buffer
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_KNOWN_OPCODES = frozenset((OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG))
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_TEXT = 1007
CLOSE_MESSAGE_TOO_BIG = 1009
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
# close codes a peer may send (RFC 6455 7.4; 3000-4999 are for applications and libraries)
_VALID_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013))


_local = threading.local()


def _shared_scratch(size: int) -> memoryview:
    """One scratch buffer per thread and size, shared by every reader: a reader uses it only
    between ``get_buffer`` and the end of ``buffer_updated`` (no other reader runs in between)
    and keeps what it could not parse yet (a few KiB at most) in its own ``_tail``."""
    buffers: dict[int, memoryview] | None = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    view = buffers.get(size)
    if view is None:
        view = buffers[size] = memoryview(bytearray(size))
    return view


class WebSocketProtocolError(RemoteProtocolError):
    """The peer broke RFC 6455 (or sent what the tunnel does not accept)."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code


def _ignore(*_: object) -> None:
    """A dropped callback (after the connection is lost)."""


class WsReaderProtocol(asyncio.BufferedProtocol):
    """Reads websocket frames; see the module docstring.

    Callbacks: ``on_message(payload)`` for each binary message (a bytearray the reader never
    touches again), ``on_ping(payload)``, ``on_close(code, reason)`` (code 0: none given),
    ``on_error(exc)`` and ``on_lost(exc)`` (the transport's ``connection_lost``). After
    ``on_close``, ``on_error`` or ``on_lost`` nothing more is delivered. ``on_eof`` is called on
    ``eof_received`` (its result is returned).
    """

    def __init__(
        self,
        *,
        max_message_bytes: int,
        on_message: Callable[[bytearray], None],
        on_ping: Callable[[bytes], None],
        on_close: Callable[[int, str], None],
        on_error: Callable[[WebSocketProtocolError], None],
        on_lost: Callable[[Exception | None], None],
        on_eof: Callable[[], bool | None] | None = None,
        flow: asyncio.BaseProtocol | None = None,
        masked: bool | None = None,
        scratch_bytes: int = SCRATCH_BYTES,
        direct_min_bytes: int = DIRECT_MIN_BYTES,
    ) -> None:
        if not 256 <= direct_min_bytes <= scratch_bytes // 2:
            raise ValueError("need 256 <= direct_min_bytes <= scratch_bytes / 2")
        self._max = max_message_bytes
        self._on_message = on_message
        self._on_ping = on_ping
        self._on_close = on_close
        self._on_error = on_error
        self._on_lost = on_lost
        self._on_eof = on_eof
        self._flow = flow
        # True: we are the server, every frame must be masked; False: we are the client, none
        # may be; None: not checked
        self._masked = masked
        self._direct_min = direct_min_bytes
        self._sview = _shared_scratch(scratch_bytes)
        self._tail = b""  # bytes received and not parsed yet (an incomplete small frame)
        # a payload being read into its own buffer (direct mode)
        self._msg: bytearray | None = None
        self._msg_view: memoryview | None = None
        self._msg_pos = 0
        self._msg_key: bytes | None = None
        self._msg_opcode = 0
        self._msg_fin = False
        # a fragmented message being assembled
        self._frag: bytearray | None = None
        self._frag_opcode = 0
        self.done = False  # input ended (close, error, lost): everything else is discarded
        self.messages_in = 0

    # ----------------------------------------------------------------- asyncio protocol

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._msg_view is not None:
            return self._msg_view[self._msg_pos :]
        sview = self._sview
        n = len(self._tail)
        if n:
            sview[:n] = self._tail
        return sview[n:]

    def buffer_updated(self, nbytes: int) -> None:
        if self.done:
            self._tail = b""
            self._msg = self._msg_view = None
            return
        if self._msg is not None:
            self._msg_pos += nbytes
            if self._msg_pos < len(self._msg):
                return
            msg = self._msg
            self._msg = self._msg_view = None
            if self._msg_key is not None:
                websocket_mask(self._msg_key, msg)
            try:
                self._frame(self._msg_opcode, self._msg_fin, msg)
            except WebSocketProtocolError as exc:
                self._fail(exc)
            return
        try:
            self._parse(len(self._tail) + nbytes)
        except WebSocketProtocolError as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        if self._on_eof is not None:
            return self._on_eof()
        return None

    def pause_writing(self) -> None:
        if self._flow is not None:
            self._flow.pause_writing()

    def resume_writing(self) -> None:
        if self._flow is not None:
            self._flow.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._msg = self._msg_view = None
        self._frag = None
        self.done = True
        on_lost = self._on_lost
        # Nothing more can arrive. The callbacks are bound methods of the websocket and the
        # session, which hold this protocol: dropped, so that an ended session is freed by
        # reference counting instead of waiting, with all it holds, for a full collection.
        self._on_message, self._on_ping, self._on_close = _ignore, _ignore, _ignore
        self._on_error, self._on_lost, self._on_eof, self._flow = _ignore, _ignore, None, None
        on_lost(exc)

    # ----------------------------------------------------------------- parsing

    def _fail(self, exc: WebSocketProtocolError) -> None:
        if self.done:
            return
        self.done = True
        self._msg = self._msg_view = None
        self._frag = None
        self._tail = b""
        self._on_error(exc)

    def _parse(self, end: int) -> None:
        """Parse ``scratch[:end]`` (the tail from before and the bytes just read)."""
        sview = self._sview
        buf = sview.obj
        assert isinstance(buf, bytearray)
        pos = 0
        while not self.done:
            avail = end - pos
            if avail < 2:
                break
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            hlen = 2 if length < 126 else (4 if length == 126 else 10)
            masked = b1 & 0x80
            if masked:
                hlen += 4
            if avail < hlen:
                break
            if self._masked is not None and bool(masked) is not self._masked:
                what = "unmasked frame from a client" if self._masked else "masked server frame"
                raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, what)
            opcode = b0 & 0x0F
            fin = bool(b0 & 0x80)
            if b0 & 0x70:
                raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
            if opcode not in _KNOWN_OPCODES:
                raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
            if length == 126:
                length = _U16.unpack_from(buf, pos + 2)[0]
            elif length == 127:
                length = _U64.unpack_from(buf, pos + 2)[0]
            if opcode >= OP_CLOSE:
                if not fin:
                    raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
                if length > 125:
                    raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "control frame too long")
            else:
                self._check_data_header(opcode, length)
            key = bytes(buf[pos + hlen - 4 : pos + hlen]) if masked else None
            pstart = pos + hlen
            have = end - pstart
            if have >= length:
                payload = bytearray(sview[pstart : pstart + length])
                pos = pstart + length
                if key is not None and length:
                    websocket_mask(key, payload)
                self._frame(opcode, fin, payload)
                continue
            if opcode < OP_CLOSE and length >= self._direct_min:
                # read the rest of this payload straight into a buffer of its own
                msg = bytearray(length)
                msg[:have] = sview[pstart:end]
                self._msg = msg
                self._msg_view = memoryview(msg)
                self._msg_pos = have
                self._msg_key = key
                self._msg_opcode = opcode
                self._msg_fin = fin
                self._tail = b""
                return
            break  # a small frame not yet complete: keep it for the next read
        self._tail = b"" if pos >= end or self.done else bytes(sview[pos:end])

    def _check_data_header(self, opcode: int, length: int) -> None:
        if opcode == OP_CONTINUATION:
            if self._frag is None:
                raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "continuation of nothing")
            total = len(self._frag) + length
        else:
            if self._frag is not None:
                raise WebSocketProtocolError(
                    CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one"
                )
            total = length
        if total > self._max:
            raise WebSocketProtocolError(
                CLOSE_MESSAGE_TOO_BIG, f"message of {total} bytes exceeds {self._max}"
            )

    def _frame(self, opcode: int, fin: bool, payload: bytearray) -> None:
        if opcode < OP_CLOSE:
            if opcode == OP_CONTINUATION:
                assert self._frag is not None
                self._frag += payload
                if not fin:
                    return
                payload, self._frag = self._frag, None
                opcode = self._frag_opcode
            elif not fin:
                self._frag = payload
                self._frag_opcode = opcode
                return
            if opcode != OP_BINARY:
                raise WebSocketProtocolError(
                    CLOSE_UNSUPPORTED_DATA, "unexpected websocket message type TEXT"
                )
            self.messages_in += 1
            self._on_message(payload)
        elif opcode == OP_PING:
            self._on_ping(bytes(payload))
        elif opcode == OP_CLOSE:
            code, reason = _parse_close(payload)
            self.done = True
            self._on_close(code, reason)
        # OP_PONG: nothing to do (the tunnel keeps its own keepalive)


def _parse_close(payload: bytearray) -> tuple[int, str]:
    if not payload:
        return 0, ""
    if len(payload) == 1:
        raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, "close frame of one byte")
    code = _U16.unpack_from(payload, 0)[0]
    if (code < 3000 and code not in _VALID_CLOSE_CODES) or code >= 5000:
        raise WebSocketProtocolError(CLOSE_PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketProtocolError(CLOSE_INVALID_TEXT, "close reason not utf-8") from None
    return code, reason
