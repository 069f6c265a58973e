"""Binary frames of the tunnel: a 10-byte struct header and a payload.

Header (network byte order): ``u32 payload length, u32 stream id, u8 type, u8 flags``. Frames are
length-prefixed, so several can be batched in one websocket message and a parser fed one byte at a
time still finds them. Stream 0 carries connection-level frames (HELLO, PING, PONG, SYNC, MESSAGE,
GOAWAY); every other frame names a stream. Every field is bounded; anything malformed raises
:class:`RemoteProtocolError` with a short reason.

Payloads:
  HELLO   u16 version, u8 role, u8 reserved, u32 initial window, u32 max frame payload,
          u32 max streams
  OPEN    u32 initial credit granted to the acceptor, utf-8 target (``tcp://host:port``)
  ACCEPT  u32 initial credit granted to the opener
  REFUSE  utf-8 reason          RESET  utf-8 reason
  DATA    bytes                 END    empty (the sender's direction is finished)
  WINDOW  u32 credit increment (> 0)
  PING    8 opaque bytes        PONG   the 8 bytes of the PING it answers
  SYNC    u32 watermark (highest stream id of the receiver's side the sender has seen), u32 ids
  MESSAGE msgpack (see messages.py)
  GOAWAY  u8 code, utf-8 reason
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

from .constants import (
    FRAME_HEADER_BYTES,
    MAX_FRAME_PAYLOAD_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_REASON_BYTES,
    MAX_STREAMS,
    MAX_TARGET_BYTES,
    MAX_WINDOW_BYTES,
    PING_PAYLOAD_BYTES,
)
from .errors import LocalProtocolError, RemoteProtocolError

HEADER = struct.Struct("!IIBB")
assert HEADER.size == FRAME_HEADER_BYTES
_U32 = struct.Struct("!I")
_HELLO = struct.Struct("!HBBIII")
_GOAWAY = struct.Struct("!B")
MAX_STREAM_ID = 2**32 - 1


class FrameType(enum.IntEnum):
    HELLO = 1
    OPEN = 2
    ACCEPT = 3
    REFUSE = 4
    DATA = 5
    END = 6
    RESET = 7
    WINDOW = 8
    PING = 9
    PONG = 10
    SYNC = 11
    MESSAGE = 12
    GOAWAY = 13


CONNECTION_FRAMES = frozenset(
    {
        FrameType.HELLO,
        FrameType.PING,
        FrameType.PONG,
        FrameType.SYNC,
        FrameType.MESSAGE,
        FrameType.GOAWAY,
    }
)
# payload size bound per type beyond the global frame bound
_MAX_PAYLOAD = {
    FrameType.HELLO: _HELLO.size,
    FrameType.OPEN: 4 + MAX_TARGET_BYTES,
    FrameType.ACCEPT: 4,
    FrameType.REFUSE: MAX_REASON_BYTES,
    FrameType.END: 0,
    FrameType.RESET: MAX_REASON_BYTES,
    FrameType.WINDOW: 4,
    FrameType.PING: PING_PAYLOAD_BYTES,
    FrameType.PONG: PING_PAYLOAD_BYTES,
    FrameType.SYNC: 4 + 4 * MAX_STREAMS,
    FrameType.MESSAGE: MAX_MESSAGE_BYTES,
    FrameType.GOAWAY: 1 + MAX_REASON_BYTES,
}

# indexed by the type byte: (type, payload bound, whether it belongs on stream 0), None if unknown
_TYPE_INFO: list[tuple[FrameType, int, bool] | None] = [None] * 256
for _t in FrameType:
    _TYPE_INFO[_t] = (_t, _MAX_PAYLOAD.get(_t, MAX_FRAME_PAYLOAD_BYTES), _t in CONNECTION_FRAMES)


class Role(enum.IntEnum):
    """Which end of the tunnel: the server opens even stream ids, the agent odd ones."""

    SERVER = 0
    AGENT = 1

    @property
    def peer(self) -> Role:
        return Role.AGENT if self is Role.SERVER else Role.SERVER

    def owns(self, stream_id: int) -> bool:
        """Whether streams with this id are opened by this role."""
        return stream_id != 0 and stream_id % 2 == int(self)


class GoAwayCode(enum.IntEnum):
    NORMAL = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2
    TIMEOUT = 3
    LIMIT_EXCEEDED = 4  # the peer exceeded a per-peer bound (rancher_tunnel.constants)


class Frame(NamedTuple):
    stream_id: int
    type: FrameType
    flags: int
    payload: bytes | memoryview


_new_tuple = tuple.__new__  # Frame(...) without NamedTuple's Python-level __new__ (hot path)


class Hello(NamedTuple):
    version: int
    role: Role
    initial_window: int
    max_frame_payload: int
    max_streams: int


# --- encoding ------------------------------------------------------------------------------


def encode_frame(stream_id: int, ftype: FrameType, payload: bytes = b"", flags: int = 0) -> bytes:
    """One frame as bytes (used for control frames; DATA is appended in place, see protocol)."""
    if not 0 <= stream_id <= MAX_STREAM_ID:
        raise LocalProtocolError("stream id out of range")
    if len(payload) > MAX_FRAME_PAYLOAD_BYTES:
        raise LocalProtocolError("frame payload too large")
    return HEADER.pack(len(payload), stream_id, ftype, flags) + payload


def _text(text: str, limit: int, what: str) -> bytes:
    raw = text.encode("utf-8", "replace")
    if len(raw) > limit:
        # never fail on a long local reason: cut it at a character boundary
        raw = raw[:limit].decode("utf-8", "ignore").encode("utf-8")
    return raw


def hello_payload(hello: Hello) -> bytes:
    return _HELLO.pack(
        hello.version,
        hello.role,
        0,
        hello.initial_window,
        hello.max_frame_payload,
        hello.max_streams,
    )


def open_payload(credit: int, target: str) -> bytes:
    raw = target.encode("utf-8")
    if not raw or len(raw) > MAX_TARGET_BYTES:
        raise LocalProtocolError("target empty or too long")
    return _U32.pack(credit) + raw


def u32_payload(value: int) -> bytes:
    return _U32.pack(value)


def reason_payload(reason: str) -> bytes:
    return _text(reason, MAX_REASON_BYTES, "reason")


def sync_payload(watermark: int, stream_ids: list[int]) -> bytes:
    if len(stream_ids) > MAX_STREAMS:
        raise LocalProtocolError("too many stream ids for SYNC")
    return struct.pack(f"!I{len(stream_ids)}I", watermark, *stream_ids)


def goaway_payload(code: GoAwayCode, reason: str) -> bytes:
    return _GOAWAY.pack(code) + _text(reason, MAX_REASON_BYTES, "reason")


# --- decoding ------------------------------------------------------------------------------


def _decode_text(payload: bytes | memoryview, what: str) -> str:
    try:
        return bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"{what} is not utf-8") from None


def decode_hello(payload: bytes | memoryview) -> Hello:
    if len(payload) != _HELLO.size:
        raise RemoteProtocolError("bad HELLO size")
    version, role, reserved, window, max_frame, max_streams = _HELLO.unpack(payload)
    if role not in (Role.SERVER, Role.AGENT):
        raise RemoteProtocolError("bad HELLO role")
    if reserved:
        raise RemoteProtocolError("bad HELLO reserved byte")
    if not 0 < window <= MAX_WINDOW_BYTES:
        raise RemoteProtocolError("bad HELLO initial window")
    if not 0 < max_frame <= MAX_FRAME_PAYLOAD_BYTES * 16:
        raise RemoteProtocolError("bad HELLO max frame payload")
    if not 0 < max_streams <= 2**20:
        raise RemoteProtocolError("bad HELLO max streams")
    return Hello(version, Role(role), window, max_frame, max_streams)


def decode_open(payload: bytes | memoryview) -> tuple[int, str]:
    if len(payload) < 5:
        raise RemoteProtocolError("OPEN without target")
    (credit,) = _U32.unpack_from(payload, 0)
    target = _decode_text(payload[4:], "OPEN target")
    if not target.isprintable():
        raise RemoteProtocolError("OPEN target not printable")
    return credit, target


def decode_u32(payload: bytes | memoryview, what: str) -> int:
    if len(payload) != 4:
        raise RemoteProtocolError(f"bad {what} size")
    return int(_U32.unpack(payload)[0])


def decode_reason(payload: bytes | memoryview) -> str:
    return _decode_text(payload, "reason")


def decode_sync(payload: bytes | memoryview) -> tuple[int, list[int]]:
    if len(payload) < 4 or len(payload) % 4:
        raise RemoteProtocolError("bad SYNC size")
    values = struct.unpack(f"!{len(payload) // 4}I", payload)
    return values[0], list(values[1:])


def decode_goaway(payload: bytes | memoryview) -> tuple[int, str]:
    if len(payload) < 1:
        raise RemoteProtocolError("bad GOAWAY size")
    return payload[0], _decode_text(payload[1:], "GOAWAY reason")


class FrameParser:
    """Incremental frame parser; feed it bytes in chunks of any size.

    Payloads of frames wholly inside one fed chunk are zero-copy memoryviews of that chunk
    (callers feed ``bytes``, or a bytearray they never change afterwards); a frame split across
    chunks is reassembled.
    """

    __slots__ = ("_buf", "_max_payload", "_pending")

    def __init__(self, max_payload_bytes: int = MAX_FRAME_PAYLOAD_BYTES) -> None:
        self._buf = bytearray()
        self._max_payload = max_payload_bytes
        self._pending: tuple[int, int, int, int] | None = None  # header of the frame in _buf

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)

    def _check_header(self, length: int, stream_id: int, ftype: int, flags: int) -> FrameType:
        """Validate a header; returns the frame type."""
        info = _TYPE_INFO[ftype]
        if info is None:
            raise RemoteProtocolError("unknown frame type")
        t, limit, on_stream_zero = info
        if length > limit or length > self._max_payload:
            raise RemoteProtocolError(f"{t.name} payload too large")
        if flags:
            raise RemoteProtocolError("unknown frame flags")
        if (stream_id == 0) is not on_stream_zero:
            raise RemoteProtocolError(f"{t.name} on wrong stream id")
        return t

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        frames: list[Frame] = []
        view = memoryview(data)
        end = len(view)
        pos = 0
        buf = self._buf
        header = HEADER
        hsize = FRAME_HEADER_BYTES
        if buf:
            if self._pending is None:
                take = min(hsize - len(buf), end)
                buf += view[:take]
                pos = take
                if len(buf) < hsize:
                    return frames
                fields = header.unpack_from(buf, 0)
                self._check_header(*fields)
                self._pending = fields
            length, sid, ftype, flags = self._pending
            take = min(hsize + length - len(buf), end - pos)
            buf += view[pos : pos + take]
            pos += take
            if len(buf) < hsize + length:
                return frames
            t = self._check_header(length, sid, ftype, flags)
            frames.append(Frame(sid, t, flags, bytes(buf[hsize:])))
            buf.clear()
            self._pending = None
        type_info = _TYPE_INFO
        max_payload = self._max_payload
        new_frame = _new_tuple
        while end - pos >= hsize:
            length, sid, ftype, flags = fields = header.unpack_from(view, pos)
            info = type_info[ftype]
            if (
                info is None
                or flags
                or length > info[1]
                or length > max_payload
                or (sid == 0) is not info[2]
            ):
                self._check_header(length, sid, ftype, flags)  # raises, with the reason
                raise AssertionError("unreachable")  # pragma: no cover
            start = pos + hsize
            if end - start < length:
                self._pending = fields
                break
            pos = start + length
            frames.append(new_frame(Frame, (sid, info[0], flags, view[start:pos])))
        if pos < end:
            buf += view[pos:]
        return frames
