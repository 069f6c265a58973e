"""A SPDY/3.1 frame codec, free of I/O: the framing that kubectl's port-forward speaks inside
websocket messages (``SPDY/3.1+portforward.k8s.io``, KEP 4006 "tunneling").

Feed received bytes with :meth:`SpdyCodec.feed` (whole or a byte at a time) and get frames;
build frames with the ``encode_*`` methods. Header blocks are zlib-compressed with the SPDY/3
dictionary, one compression stream per direction, as the spec requires."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
RST_PROTOCOL_ERROR = 1
RST_CANCEL = 5
RST_INTERNAL_ERROR = 6
MAX_FRAME_BYTES = 16 * 1024 * 1024  # the 24-bit length field's range
MAX_HEADER_BLOCK_BYTES = 1024 * 1024
DATA_CHUNK_BYTES = 32 * 1024

_WORDS = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200_OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00 section 2.6.10.1):
# length-prefixed words, then a run of status lines, dates and media types. 1423 bytes.
DICTIONARY = (
    b"".join(struct.pack(">I", len(w)) + w.replace("_", " ").encode() for w in _WORDS)
    + _TAIL.encode()
)


class SpdyError(Exception):
    """The peer broke the SPDY framing; the session must end."""


Headers = dict[str, list[str]]


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    flags: int
    data: bytes

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass(frozen=True)
class ControlFrame:
    type: int
    flags: int
    stream_id: int = 0
    headers: Headers = field(default_factory=dict)
    status: int = 0  # RST_STREAM / GOAWAY status
    value: int = 0  # PING id, WINDOW_UPDATE delta, GOAWAY last-good-stream id

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


Frame = DataFrame | ControlFrame


def _encode_block(headers: Headers) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        n, v = name.lower().encode(), "\0".join(values).encode()
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def _decode_block(block: bytes) -> Headers:
    def take(pos: int, n: int) -> tuple[bytes, int]:
        if pos + n > len(block):
            raise SpdyError("truncated header block")
        return block[pos : pos + n], pos + n

    raw, pos = take(0, 4)
    (count,) = struct.unpack(">I", raw)
    headers: Headers = {}
    for _ in range(count):
        raw, pos = take(pos, 4)
        name, pos = take(pos, struct.unpack(">I", raw)[0])
        raw, pos = take(pos, 4)
        value, pos = take(pos, struct.unpack(">I", raw)[0])
        headers.setdefault(name.decode().lower(), []).extend(value.decode().split("\0"))
    return headers


class SpdyCodec:
    """Decoder and encoder for one SPDY session (one compression context per direction)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(
            zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY
        )

    # -- decoding ------------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            head, body = bytes(self._buf[:8]), bytes(self._buf[8 : 8 + length])
            del self._buf[: 8 + length]
            frame = self._parse(head, body)
            if frame is not None:
                frames.append(frame)
        return frames

    def _headers(self, block: bytes) -> Headers:
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BLOCK_BYTES)
        except zlib.error as exc:
            raise SpdyError(f"header block does not inflate: {exc}") from exc
        if self._inflate.unconsumed_tail:
            raise SpdyError("header block too large")
        return _decode_block(raw)

    def _parse(self, head: bytes, body: bytes) -> Frame | None:
        flags = head[4]
        if not head[0] & 0x80:
            stream_id = int.from_bytes(head[0:4], "big") & 0x7FFFFFFF
            return DataFrame(stream_id, flags, body)
        version = int.from_bytes(head[0:2], "big") & 0x7FFF
        ftype = int.from_bytes(head[2:4], "big")
        if version != VERSION:
            raise SpdyError(f"unsupported SPDY version {version}")

        def u31(pos: int) -> int:
            if len(body) < pos + 4:
                raise SpdyError(f"control frame {ftype} too short")
            return int.from_bytes(body[pos : pos + 4], "big") & 0x7FFFFFFF

        if ftype == SYN_STREAM:
            return ControlFrame(ftype, flags, u31(0), self._headers(body[10:]))
        if ftype in (SYN_REPLY, HEADERS):
            return ControlFrame(ftype, flags, u31(0), self._headers(body[4:]))
        if ftype == RST_STREAM:
            return ControlFrame(ftype, flags, u31(0), status=u31(4))
        if ftype == PING:
            return ControlFrame(ftype, flags, value=int.from_bytes(body[0:4], "big"))
        if ftype == GOAWAY:
            return ControlFrame(ftype, flags, value=u31(0), status=u31(4) if len(body) >= 8 else 0)
        if ftype == WINDOW_UPDATE:
            return ControlFrame(ftype, flags, u31(0), value=u31(4))
        if ftype == SETTINGS:
            return ControlFrame(ftype, flags)
        return None  # unknown control frames are ignored, as the spec asks

    # -- encoding ------------------------------------------------------------------------------
    @staticmethod
    def _control(ftype: int, flags: int, body: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(body)) + body

    def _compress(self, headers: Headers) -> bytes:
        return self._deflate.compress(_encode_block(headers)) + self._deflate.flush(
            zlib.Z_SYNC_FLUSH
        )

    def encode_syn_stream(self, stream_id: int, headers: Headers, flags: int = 0) -> bytes:
        body = struct.pack(">IIBB", stream_id, 0, 0, 0) + self._compress(headers)
        return self._control(SYN_STREAM, flags, body)

    def encode_syn_reply(
        self, stream_id: int, headers: Headers | None = None, fin: bool = False
    ) -> bytes:
        body = struct.pack(">I", stream_id) + self._compress(headers or {})
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, body)

    def encode_rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def encode_ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def encode_goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))

    @staticmethod
    def encode_data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        out = []
        for i in range(0, max(len(data), 1), DATA_CHUNK_BYTES):
            chunk = data[i : i + DATA_CHUNK_BYTES]
            last = i + DATA_CHUNK_BYTES >= len(data)
            flags = FLAG_FIN if fin and last else 0
            out.append(
                struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(chunk)) + chunk
            )
        return b"".join(out)
