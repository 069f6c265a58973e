"""A client connection spliced onto one peer stream. The first plain request of a keep-alive
client connection that must be forwarded goes through aiohttp (its middleware decides), and from
then on the connection's bytes no longer go through aiohttp at all: each further request head is
checked and rewritten here (the same rules as ``forward._forward_head``) and written on the same
pooled peer stream, and the holder's answers are passed back as they come, their framing followed
only to know where each one ends. That takes, per request, aiohttp's request and response objects,
its handler task, the lean client's parse and the answer's re-serialisation off the hop (the
forwarder's CPU per forwarded GET went from about 340 to about 220 us).

Anything this fast path does not handle exactly like aiohttp would (another target, a body
framed other than by Content-Length, an upgrade, ``Expect``, ``Connection: close``, a malformed
or oversized head, a path aiohttp would normalise) is not sent: once the answers already asked
for have come back, the connection and its unread bytes go back to aiohttp, which handles the
request as any other, and the stream goes back to its pool. The holder's answers get the
``Strict-Transport-Security`` header the forwarder's own answers carry (the holder saw a plain
stream, not TLS). When the peer stream is lost before an answer began, the client gets a ``503``
as on the per-request path; after, its connection is closed (a watch ends, kubectl retries)."""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from rancher_server.proxy.lean import UpstreamConnection, chunk_size
from rancher_server.proxy.status import status_body
from rancher_server.tls import HSTS_VALUE
from rancher_tunnel.logs import get_logger

MAX_HEAD_BYTES = 16 * 1024  # a larger request head goes to aiohttp (its limits, its 400)
MAX_LINE_BYTES = 8190  # aiohttp's max_line_size / max_field_size on our listeners
MAX_HEADERS = 100
MAX_RESPONSE_HEAD_BYTES = 64 * 1024
MAX_CHUNK_LINE_BYTES = 4096
CLIENT_HIGH_WATER_BYTES = 1024 * 1024  # the client reads slower than the holder answers
CLIENT_LOW_WATER_BYTES = 256 * 1024
CLIENT_DRAIN_POLL_S = 0.005

_CLUSTER_PATH = re.compile(rb"/(?:k8s|v3)/clusters/([^/?]+)(?:/|$)")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_CHAR = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([^\r]*)")
_CONNECTION = re.compile(rb"\r\nconnection:([^\r]*)")
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding:([^\r]*)")
# Request headers not passed on (hop by hop, and forwarding headers a client may have sent);
# Host is passed as it came, Content-Length re-written; the rest make the request aiohttp's.
_DROPPED = frozenset({b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                      b"trailer", b"proxy-connection", b"x-rancher-forwarded-for",
                      b"x-rancher-forwarded-by"})
_NOT_SPLICED = frozenset({b"transfer-encoding", b"upgrade", b"expect"})

# the holder's answers, as the client receives them
_IDLE, _HEAD, _LENGTH, _CHUNKED, _UNTIL_CLOSE = range(5)
# chunked framing
_SIZE, _DATA, _DATA_CRLF, _TRAILER = range(4)

log = get_logger(component="ha-splice")


class SpliceError(Exception):
    """The holder sent something that is not an answer to what was asked."""


class SplicedResponse(web.StreamResponse):
    """What the handler that spliced a connection gives aiohttp: everything was written already;
    ``keep_alive`` says whether aiohttp goes on reading the connection (it was handed back)."""

    def __init__(self, keep_alive: bool) -> None:
        super().__init__()
        self._handed_back = keep_alive

    @property
    def keep_alive(self) -> bool:
        return self._handed_back

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def can_splice(request: web.Request) -> bool:
    """Whether this request's connection can be taken over after it: HTTP/1.1 kept alive, no
    body, over TLS, and nothing else of the client's buffered in aiohttp yet."""
    protocol: Any = request.protocol
    transport = request.transport
    return (
        request.version == (1, 1) and request.keep_alive and not request.body_exists
        and request.secure and transport is not None and not transport.is_closing()
        and "Expect" not in request.headers
        and hasattr(protocol, "set_parser")
        and getattr(protocol, "_payload_parser", True) is None
        and not getattr(protocol, "_messages", True)
        and getattr(protocol, "_message_tail", True) == b""
        and getattr(protocol, "_upgraded", True) is False
        and getattr(protocol, "_waiter", True) is None
        and hasattr(protocol, "_keepalive_handle")
    )


class _ClientFeed:
    """Installed as aiohttp's payload parser: the client's bytes come here."""

    def __init__(self, splice: Splice) -> None:
        self._splice = splice

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._splice.from_client(data)
        return False, b""

    def feed_eof(self) -> None:
        self._splice.client_ended()


class Splice(asyncio.Protocol):
    """One client connection spliced onto one peer stream (the transport of ``conn``, a pooled
    lean connection, whose protocol this is while the splice lasts)."""

    def __init__(self, request: web.Request, conn: UpstreamConnection,
                 sends_to_peer: Callable[[str], bool], forwarded_for: str, forwarded_by: str,
                 counted: Callable[[], None], failed: Callable[[], None], held_by: str) -> None:
        assert request.transport is not None and conn.transport is not None
        self._loop = asyncio.get_running_loop()
        self._client: Any = request.transport
        self._handler: Any = request.protocol  # aiohttp's RequestHandler of the connection
        self._conn = conn
        self._peer: Any = conn.transport
        self._sends_to_peer = sends_to_peer
        self._extra = b"X-Rancher-Forwarded-For: %s\r\nX-Rancher-Forwarded-By: %s\r\n" % (
            forwarded_for.encode("latin-1", "replace"), forwarded_by.encode("latin-1", "replace"))
        self._counted = counted
        self._failed = failed
        self._held_by = held_by
        self.done: asyncio.Future[bool] = self._loop.create_future()
        # client -> peer
        self._in = bytearray()
        self._body = 0  # request body bytes still to pass on
        self._held = False  # a request waits for aiohttp: nothing more is sent
        self._close_requested = False  # the server shuts down: end at the next boundary
        # peer -> client
        self._pending: deque[bool] = deque()  # one per request sent: was it a HEAD
        self._state = _IDLE
        self._head = bytearray()
        self._remaining = 0
        self._chunk = _SIZE
        self._line = bytearray()
        self._close_after = False  # the holder said Connection: close
        self._peer_paused = False

    # ------------------------------------------------------------------ start and end

    def start(self, first_head: bytes, is_head: bool) -> None:
        """Take the peer stream and the client's input over, and send the first request."""
        self._peer.set_protocol(self)
        self._handler.set_parser(_ClientFeed(self))
        # aiohttp's keep-alive timer (armed by an earlier answer of its own on this connection)
        # would close a connection whose waiter is pending: it is re-armed after a hand-back
        keepalive = self._handler._keepalive_handle
        if keepalive is not None:
            keepalive.cancel()
            self._handler._keepalive_handle = None
        # aiohttp's close() (the server shutting down) cancels the waiter: we end then
        self._handler._waiter = waiter = self._loop.create_future()
        waiter.add_done_callback(self._close_requested_cb)
        self._send(first_head, is_head)

    def _close_requested_cb(self, fut: asyncio.Future[None]) -> None:
        if self.done.done() or not fut.cancelled():
            return
        self._close_requested = True
        self._maybe_end()

    def _finish(self, handed_back: bool, stream_clean: bool) -> None:
        if self.done.done():
            return
        handler = self._handler
        waiter = handler._waiter
        handler._waiter = None
        if waiter is not None and not waiter.done():
            waiter.remove_done_callback(self._close_requested_cb)
            waiter.cancel()
        handler._payload_parser = None
        handler._data_received_cb = None
        if self._peer_paused and not self._peer.is_closing():
            self._peer.resume_reading()
        if stream_clean and not self._peer.is_closing():
            self._peer.set_protocol(self._conn)
            self._conn.release()  # back to its pool
        else:
            self._conn.close()
        rest = bytes(self._in)
        self._in.clear()
        self.done.set_result(handed_back)
        if handed_back:
            self._client.resume_reading()
            if rest:
                handler.data_received(rest)  # parsed by aiohttp, handled after we return

    def abort(self) -> None:
        """The handler was cancelled: drop both sides."""
        if not self.done.done():
            self._client.abort()
            self._finish(False, False)

    def _at_boundary(self) -> bool:
        return not self._pending and self._state == _IDLE and not self._body

    def _maybe_end(self) -> None:
        """Hand the connection back, or close it at shutdown, once no answer is outstanding."""
        if self.done.done() or not self._at_boundary():
            return
        if self._held:
            self._finish(True, True)
        elif self._close_requested:
            self._client.close()
            self._finish(False, not self._in)

    # ------------------------------------------------------------------ client -> peer

    def from_client(self, data: bytes) -> None:
        if self.done.done() or self._peer.is_closing():
            return  # a stream being closed under us: its connection_lost ends the splice
        self._in += data
        self._pump()

    def _pump(self) -> None:
        buf = self._in
        while buf and not self._held:
            if self._body:
                n = min(self._body, len(buf))
                self._peer.write(bytes(buf[:n]))
                del buf[:n]
                self._body -= n
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    self._hold()
                return
            parsed = self._rewrite(bytes(buf[:end + 2]))
            if parsed is None:
                self._hold()
                return
            head, is_head, length = parsed
            del buf[:end + 4]
            self._send(head, is_head)
            self._counted()
            self._body = length

    def _send(self, head: bytes, is_head: bool) -> None:
        self._pending.append(is_head)
        self._peer.write(head)

    def _hold(self) -> None:
        self._held = True
        self._client.pause_reading()
        self._maybe_end()

    def _rewrite(self, head: bytes) -> tuple[bytes, bool, int] | None:
        """The request for the holder, or None when it is aiohttp's to handle. ``head`` ends with
        its last header line's CRLF."""
        if _BAD_CHAR.search(head.replace(b"\r\n", b"")):
            return None  # a bare CR or LF, a NUL: never passed on as they are
        lines = head.split(b"\r\n")
        lines.pop()  # after the last CRLF
        request_line = lines[0]
        parts = request_line.split(b" ")
        if (len(parts) != 3 or parts[2] != b"HTTP/1.1" or len(request_line) > MAX_LINE_BYTES
                or len(lines) > MAX_HEADERS + 1 or not _TOKEN.fullmatch(parts[0])):
            return None
        target = parts[1]
        path = target.split(b"?", 1)[0]
        # what aiohttp would decode or normalise, it decides about
        if (not path.startswith(b"/") or b"%" in path or b"//" in path or b"/." in path
                or b"\\" in path or not path.isascii()):
            return None
        m = _CLUSTER_PATH.match(path)
        if m is None or not self._sends_to_peer(m.group(1).decode("ascii")):
            return None
        out = [request_line]
        length = -1
        host = False
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or len(line) > MAX_LINE_BYTES or not _TOKEN.fullmatch(name):
                return None  # an empty or folded line, a bad name: aiohttp answers it
            lname = name.lower()
            if lname in _DROPPED:
                continue
            if lname in _NOT_SPLICED:
                return None
            if lname == b"content-length":
                value = value.strip(b" \t")
                if length >= 0 or not value.isdigit():
                    return None
                length = int(value)
                continue
            if lname == b"connection":
                tokens = {t.strip(b" \t").lower() for t in value.split(b",")}
                if b"close" in tokens or b"upgrade" in tokens:
                    return None
                continue
            if lname == b"host":
                if host:
                    return None
                host = True
            out.append(line)
        if not host:
            return None
        length = max(length, 0)
        if length:
            out.append(b"Content-Length: %d" % length)
        out.append(self._extra)
        return b"\r\n".join(out) + b"\r\n", parts[0] == b"HEAD", length

    def client_ended(self) -> None:
        """The client closed its side (or aiohttp's connection ended)."""
        if self.done.done():
            return
        clean = self._at_boundary() and not self._in
        self._finish(False, clean)

    # ------------------------------------------------------------------ peer -> client

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        try:
            out = self._from_peer(data)
        except SpliceError as e:
            log.warning("the holder's answer could not be followed; connection closed",
                        error=str(e))
            self._client.abort()
            self._finish(False, False)
            return
        client = self._client
        if out and not client.is_closing():
            client.write(out[0] if len(out) == 1 else b"".join(out))
            if (not self._peer_paused
                    and client.get_write_buffer_size() > CLIENT_HIGH_WATER_BYTES):
                self._peer_paused = True
                self._peer.pause_reading()
                self._loop.call_later(CLIENT_DRAIN_POLL_S, self._check_client)
        if self._close_after and self._at_boundary():
            client.close()
            self._finish(False, False)
            return
        self._maybe_end()

    def _check_client(self) -> None:
        if not self._peer_paused or self.done.done():
            return
        client = self._client
        if client.is_closing() or client.get_write_buffer_size() <= CLIENT_LOW_WATER_BYTES:
            self._peer_paused = False
            self._peer.resume_reading()
        else:
            self._loop.call_later(CLIENT_DRAIN_POLL_S, self._check_client)

    def _from_peer(self, data: bytes) -> list[bytes]:
        """What to write to the client for ``data``; follows the answers' framing."""
        out: list[bytes] = []
        pos, n = 0, len(data)
        while pos < n:
            state = self._state
            if state == _LENGTH:
                take = min(self._remaining, n - pos)
                out.append(data[pos:pos + take] if take < n else data)
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._answered()
            elif state in (_IDLE, _HEAD):
                if not self._pending:
                    raise SpliceError("an answer nobody asked for")
                self._state = _HEAD
                head = self._head
                head += data[pos:] if pos else data
                end = head.find(b"\r\n\r\n")
                if end < 0:
                    if len(head) > MAX_RESPONSE_HEAD_BYTES:
                        raise SpliceError("answer head too large")
                    return out
                data = bytes(head[end + 4:])
                pos, n = 0, len(data)
                out.append(self._on_head(bytes(head[:end + 2])))
                head.clear()
            elif state == _CHUNKED:
                start = pos
                pos = self._chunked(data, pos, n)
                out.append(data[start:pos])
            else:  # _UNTIL_CLOSE
                out.append(data[pos:] if pos else data)
                pos = n
        return out

    def _on_head(self, head: bytes) -> bytes:
        """The answer head as the client gets it (CRLF-terminated); sets the body's framing."""
        lower = head.lower()
        status_line = head[:head.find(b"\r\n")]
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise SpliceError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
        code = int(parts[1])
        if 100 <= code < 200:
            if code == 101:
                raise SpliceError("unexpected protocol switch")
            self._state = _IDLE  # interim: the answer follows
            return head + b"\r\n"
        connection = _CONNECTION.search(lower)
        if parts[0] != b"HTTP/1.1" or (connection is not None
                                       and b"close" in connection.group(1)):
            self._close_after = True
        te = _TRANSFER_ENCODING.search(lower)
        lengths = _CONTENT_LENGTH.findall(lower)
        if self._pending[0] or code in (204, 304):
            self._answered()
        elif te is not None:
            if te.group(1).rsplit(b",", 1)[-1].strip() == b"chunked":
                self._state, self._chunk = _CHUNKED, _SIZE
                self._line.clear()
            else:
                self._state = _UNTIL_CLOSE
                self._close_after = True
        elif lengths:
            values = {v.strip(b" \t") for v in lengths}
            value = values.pop()
            if values or not value.isdigit():
                raise SpliceError("bad Content-Length")
            self._remaining = int(value)
            self._state = _LENGTH
            if not self._remaining:
                self._answered()
        else:
            self._state = _UNTIL_CLOSE
            self._close_after = True
        if b"\r\nstrict-transport-security:" not in lower:
            head += b"Strict-Transport-Security: " + HSTS_VALUE.encode() + b"\r\n"
        return head + b"\r\n"

    def _chunked(self, data: bytes, pos: int, n: int) -> int:
        """Follows chunked framing over ``data[pos:n]``; where it stopped (the answer's end, or
        ``n``)."""
        while pos < n and self._state == _CHUNKED:
            if self._chunk == _DATA:
                take = min(self._remaining, n - pos)
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._chunk = _DATA_CRLF
                continue
            nl = data.find(b"\n", pos, n)
            line = self._line
            if nl < 0:
                line += data[pos:n]
                if len(line) > MAX_CHUNK_LINE_BYTES:
                    raise SpliceError("chunk line too long")
                return n
            line += data[pos:nl + 1]
            pos = nl + 1
            text = bytes(line)
            line.clear()
            if not text.endswith(b"\r\n"):
                raise SpliceError("chunk line without CRLF")
            if self._chunk == _DATA_CRLF:
                if text != b"\r\n":
                    raise SpliceError("chunk not followed by CRLF")
                self._chunk = _SIZE
            elif self._chunk == _SIZE:
                try:
                    size = chunk_size(text)
                except ValueError as e:
                    raise SpliceError(str(e)) from None
                if size:
                    self._chunk, self._remaining = _DATA, size
                else:
                    self._chunk = _TRAILER
            elif text == b"\r\n":  # the end of the trailer: the answer is complete
                self._answered()
        return pos

    def _answered(self) -> None:
        self._pending.popleft()
        self._state = _IDLE

    # ------------------------------------------------------------------ the peer stream

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        client = self._client
        if self._pending and self._state in (_IDLE, _HEAD) and not client.is_closing():
            # nothing of this answer was passed on: say why, as the per-request path does
            self._failed()
            body = json.dumps(status_body(
                503, f"the replica holding this cluster's tunnel ({self._held_by}) is "
                f"unreachable: {exc or 'the peer stream ended'}")).encode()
            client.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\nStrict-Transport-Security: %s\r\n"
                b"\r\n%s" % (len(body), HSTS_VALUE.encode(), body))
        if not client.is_closing():
            client.close()  # after what was passed on: a watch ends cleanly
        self._finish(False, False)

    def eof_received(self) -> bool | None:
        return None  # the stream closes; connection_lost follows

    def pause_writing(self) -> None:
        self._client.pause_reading()

    def resume_writing(self) -> None:
        if not self._held and not self.done.done():
            self._client.resume_reading()
