"""A lean HTTP/1.1 client for the proxy's hot path: pooled keep-alive connections, each a tunnel
stream with TLS end to end, carrying a request head the proxy serialised itself and answering with
a parsed response head and the body as it arrives (no aiohttp client machinery per request).

One request at a time per connection; a connection goes back to its pool only when its answer
was read to the end with keep-alive framing (Content-Length or chunked), the request was written
whole, and neither side asked to close."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections import deque
from collections.abc import Callable

from rancher_server.proxy.headers import HOP_BY_HOP
from rancher_tunnel.errors import SessionClosed
from rancher_tunnel.session import Session, format_target

MAX_RESPONSE_HEAD_BYTES = 64 * 1024
MAX_CHUNK_LINE_BYTES = 4096
PAUSE_ABOVE_BYTES = 1024 * 1024  # body bytes buffered before the stream stops being read
RESUME_BELOW_BYTES = 256 * 1024
MAX_IDLE_PER_POOL = 64
TLS_READ_BYTES = 256 * 1024

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER, _UNTIL_CLOSE, _DONE = range(8)

SessionGetter = Callable[[], Session]


def chunk_size(line: bytes) -> int:
    """The size on a chunked body's size line (extensions after ``;`` ignored); ValueError with
    the reason when it is not one."""
    text = line.split(b";", 1)[0].strip()
    try:
        size = int(text, 16)
    except ValueError:
        raise ValueError(f"bad chunk size {text[:20]!r}") from None
    if size < 0:
        raise ValueError("negative chunk size")
    return size


class UpstreamError(ConnectionError):
    """The connection to the downstream API server failed or sent something unusable."""


_HEADER_LINE = re.compile(r"([^:\r\n]+):[ \t]*([^\r\n]*?)[ \t]*\r\n")


def _head_fields(raw: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    """(status, reason, headers) of a response head (without its final blank line)."""
    text = raw.decode("latin-1")
    status_line, _, rest = text.partition("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise UpstreamError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
    try:
        code = int(parts[1])
    except ValueError:
        raise UpstreamError(f"bad status line: {status_line[:80]!r}") from None
    if not rest:
        return code, parts[2] if len(parts) > 2 else "", []
    headers: list[tuple[str, str]] = _HEADER_LINE.findall(rest + "\r\n")
    if len(headers) != rest.count("\r\n") + 1:
        raise UpstreamError("malformed header line in the answer")
    return code, parts[2] if len(parts) > 2 else "", headers


class Response:
    """A response head; the body is read through its connection."""

    __slots__ = ("conn", "declared_length", "headers", "length", "reason", "status")

    def __init__(
        self,
        conn: UpstreamConnection,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        length: int | None,
        declared_length: int | None,
    ) -> None:
        self.conn = conn
        self.declared_length = declared_length  # the Content-Length header (HEAD: of a GET)
        self.status = status
        self.reason = reason
        self.headers = headers  # end to end: hop-by-hop ones and those Connection names removed
        self.length = length  # body bytes when known (Content-Length, or 0 without a body)


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection: TLS (an ``SSLObject`` over memory BIOs, no asyncio SSL
    transport in between) on a raw tunnel stream, and the HTTP/1.1 response parser. Without a
    context it speaks plain HTTP on the stream (a peer replica's tunnel, itself mutual TLS)."""

    accepts_memoryview = True  # the tunnel may hand us views: they go straight into the BIO

    def __init__(
        self, pool: LeanPool, context: ssl.SSLContext | None, server_hostname: str | None
    ) -> None:
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._in_bio = ssl.MemoryBIO()
        self._out_bio = ssl.MemoryBIO()
        self._tls = None if context is None else context.wrap_bio(
            self._in_bio, self._out_bio, server_side=False, server_hostname=server_hostname
        )
        self._handshake_waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.used = False  # has carried a request before (a failure may be a stale keep-alive)
        self._reusable = True
        self._buf = bytearray()
        self._state = _DONE
        self._remaining = 0
        self._head_bytes_seen = False
        self._no_body = False  # HEAD request
        self._head_waiter: asyncio.Future[Response] | None = None
        self._body: deque[bytes] = deque()
        self._body_bytes = 0
        self._body_waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._reusable = False
        hs = self._handshake_waiter
        if hs is not None and not hs.done():
            hs.set_exception(exc or UpstreamError("the stream closed during the TLS handshake"))
        if self._state == _UNTIL_CLOSE:
            self._finish()
        elif self._state != _DONE:
            self._fail(exc or UpstreamError("the downstream API server closed the connection"))
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        self._pool._forget(self)

    def eof_received(self) -> bool | None:
        self._reusable = False
        if self._state == _UNTIL_CLOSE:
            self._finish()
        return None  # close

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        tls = self._tls
        if tls is None:
            try:
                self._feed(data)
            except UpstreamError as e:
                self._reusable = False
                self._fail(e)
                if self.transport is not None:
                    self.transport.abort()
            return
        self._in_bio.write(data)
        try:
            if self._handshake_waiter is not None and not self._handshake_step():
                return
            while True:
                try:
                    plain = tls.read(TLS_READ_BYTES)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:  # close_notify: the server ends the connection
                    self._reusable = False
                    if self._state == _UNTIL_CLOSE:
                        self._finish()
                    break
                if not plain:
                    break
                self._feed(plain)
            if self._out_bio.pending:
                self._flush_tls()
        except (UpstreamError, ssl.SSLError) as e:
            self._reusable = False
            self._fail(e)
            if self.transport is not None:
                self.transport.abort()

    # ---------------------------------------------------------------- TLS

    def _flush_tls(self) -> None:
        data = self._out_bio.read()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    def _handshake_step(self) -> bool:
        """Advance the handshake; True once it is done (the waiter is then resolved)."""
        waiter = self._handshake_waiter
        assert self._tls is not None
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush_tls()
            return False
        except ssl.SSLError as e:
            self._handshake_waiter = None
            if waiter is not None and not waiter.done():
                waiter.set_exception(e)
            if self.transport is not None:
                self.transport.abort()
            return False
        self._flush_tls()
        self._handshake_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    async def handshake(self) -> None:
        if self._tls is None:
            return
        self._handshake_waiter = self._loop.create_future()
        waiter = self._handshake_waiter
        self._handshake_step()
        await waiter

    def _write_plain(self, data: bytes) -> None:
        if self.transport is None or self.closed:
            return
        if self._tls is None:
            self.transport.write(data)
            return
        try:
            self._tls.write(data)
        except ssl.SSLError as e:
            raise UpstreamError(f"TLS write failed: {e}") from e
        self._flush_tls()

    # ---------------------------------------------------------------- parsing

    def _feed(self, data: bytes) -> None:
        state = self._state
        if state == _LENGTH and not self._buf:
            n = len(data)
            if n <= self._remaining:
                self._push(data)
                self._remaining -= n
                if not self._remaining:
                    self._finish()
                return
        if state == _DONE:
            self._reusable = False  # bytes nobody asked for
            return
        self._buf += data
        self._parse()

    def _parse(self) -> None:
        buf = self._buf
        while buf:
            state = self._state
            if state == _HEAD:
                self._head_bytes_seen = True
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_RESPONSE_HEAD_BYTES:
                        raise UpstreamError("response head too large")
                    return
                raw = bytes(buf[:end])
                del buf[: end + 4]
                self._on_head(raw)
            elif state == _LENGTH:
                n = min(self._remaining, len(buf))
                self._push(bytes(buf[:n]))
                del buf[:n]
                self._remaining -= n
                if not self._remaining:
                    self._finish()
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_CHUNK_LINE_BYTES:
                        raise UpstreamError("chunk size line too long")
                    return
                line = bytes(buf[:end])
                del buf[: end + 2]
                try:
                    size = chunk_size(line)
                except ValueError as e:
                    raise UpstreamError(str(e)) from None
                if size:
                    self._state, self._remaining = _CHUNK_DATA, size
                else:
                    self._state = _TRAILER
            elif state == _CHUNK_DATA:
                n = min(self._remaining, len(buf))
                self._push(bytes(buf[:n]))
                del buf[:n]
                self._remaining -= n
                if not self._remaining:
                    self._state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise UpstreamError("chunk not followed by CRLF")
                del buf[:2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_CHUNK_LINE_BYTES:
                        raise UpstreamError("trailer line too long")
                    return
                del buf[: end + 2]
                if end == 0:
                    self._finish()
            elif state == _UNTIL_CLOSE:
                self._push(bytes(buf))
                buf.clear()
            else:  # _DONE with bytes left over: the server sent more than one answer
                self._reusable = False
                buf.clear()

    def _on_head(self, raw: bytes) -> None:
        status, reason, headers = _head_fields(raw)
        if 100 <= status < 200 and status != 101:
            return  # an interim answer (100 Continue): the real one follows
        length: int | None = None
        chunked = False
        hop = HOP_BY_HOP
        passed: list[tuple[str, str]] = []
        named: set[str] | None = None  # header names the Connection header lists
        for name, value in headers:
            lname = name.lower()
            if lname not in hop:
                passed.append((name, value))
            elif lname == "content-length":
                try:
                    n = int(value)
                except ValueError:
                    raise UpstreamError(f"bad Content-Length {value[:20]!r}") from None
                if n < 0 or (length is not None and n != length):
                    raise UpstreamError("bad Content-Length")
                length = n
            elif lname == "transfer-encoding":
                chunked = value.lower().rsplit(",", 1)[-1].strip() == "chunked"
                if not chunked:
                    raise UpstreamError(f"unsupported Transfer-Encoding {value[:40]!r}")
            elif lname == "connection":
                tokens = {t.strip().lower() for t in value.split(",")}
                if "close" in tokens:
                    self._reusable = False
                named = (named or set()) | tokens
        if named:
            passed = [(k, v) for k, v in passed if k.lower() not in named]
        if status == 101:
            raise UpstreamError("unexpected protocol switch")
        declared = length
        if self._no_body or status in (204, 304):
            self._state = _DONE
            length = 0
        elif chunked:
            self._state = _CHUNK_SIZE
            length = None
        elif length is not None:
            self._state, self._remaining = _LENGTH, length
        else:
            self._state = _UNTIL_CLOSE
            self._reusable = False
        waiter = self._head_waiter
        self._head_waiter = None
        response = Response(self, status, reason, passed, length, declared)
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
        if self._state == _DONE or (self._state == _LENGTH and not length):
            self._finish()

    def _push(self, data: bytes) -> None:
        if not data:
            return
        self._body.append(data)
        self._body_bytes += len(data)
        if self._body_bytes > PAUSE_ABOVE_BYTES and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self._state = _DONE
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        self._state = _DONE
        self._error = exc
        waiter = self._head_waiter
        self._head_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self._wake()

    def _wake(self) -> None:
        waiter = self._body_waiter
        if waiter is not None:
            self._body_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ---------------------------------------------------------------- used by the proxy

    def send(self, data: bytes, *, head_request: bool = False) -> asyncio.Future[Response]:
        """Write a request head (and a body that fits in it); the future gives the answer's
        head."""
        assert self.transport is not None
        waiter = self._expect(head_request)
        self._write_plain(data)
        return waiter

    def _expect(self, head_request: bool) -> asyncio.Future[Response]:
        """Get ready to parse the answer to a request being sent."""
        self._state = _HEAD
        self._no_body = head_request
        self._error = None
        self._head_bytes_seen = False
        self._head_waiter = waiter = self._loop.create_future()
        return waiter

    def write(self, data: bytes) -> None:
        self._write_plain(data)

    def abandon_request(self) -> None:
        """The request body was not sent whole: the connection cannot carry another request."""
        self._reusable = False

    async def drain(self) -> None:
        if self._write_paused and not self.closed:
            self._drain_waiter = self._loop.create_future()
            await self._drain_waiter
        if self.closed:
            raise UpstreamError("the downstream connection closed while sending")

    @property
    def failed_before_answer(self) -> bool:
        """Lost before any byte of an answer arrived (a reused connection the server had just
        closed: the request can be sent again on a fresh one)."""
        return self._error is not None and not self._head_bytes_seen

    async def read(self) -> bytes:
        """Body bytes as they come; b"" at the end. Raises UpstreamError if the stream broke."""
        while True:
            if self._body:
                data = self._body.popleft()
                self._body_bytes -= len(data)
                if self._paused and self._body_bytes < RESUME_BELOW_BYTES and self.transport:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self._state == _DONE:
                if self._error is not None:
                    raise UpstreamError(str(self._error) or "downstream connection lost")
                return b""
            self._body_waiter = self._loop.create_future()
            await self._body_waiter

    async def read_all(self) -> bytes:
        chunks = []
        while chunk := await self.read():
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @property
    def complete(self) -> bool:
        return self._state == _DONE and self._error is None and not self._body

    def release(self) -> None:
        """Give the connection back (reused if the exchange ended cleanly, closed otherwise)."""
        if self.closed:
            return
        if self._reusable and self.complete and not self._buf and not self._write_paused:
            self._pool._put(self)
        else:
            self.close()

    def close(self) -> None:
        """Drop the connection; one that ended cleanly says goodbye (TLS close_notify) first."""
        self._reusable = False
        waiter = self._head_waiter
        if waiter is not None and not waiter.done():
            waiter.cancel()  # nobody waits for an answer any more
        self._head_waiter = None
        transport = self.transport
        if transport is not None and not self.closed:
            self.closed = True
            if self._state == _DONE and self._error is None and not self._write_paused:
                if self._tls is not None:
                    with contextlib.suppress(ssl.SSLError):
                        self._tls.unwrap()
                with contextlib.suppress(ssl.SSLError):
                    self._flush_tls_now(transport)
                transport.close()
            else:
                transport.abort()
        self._pool._forget(self)

    def _flush_tls_now(self, transport: asyncio.Transport) -> None:
        data = self._out_bio.read()
        if data:
            transport.write(data)


class LeanPool:
    """Keep-alive connections to one downstream API server through one cluster's tunnel."""

    def __init__(
        self,
        session: SessionGetter,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        *,
        connect_timeout_s: float,
        keepalive_s: float,
    ) -> None:
        self._session = session
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._connect_timeout_s = connect_timeout_s
        self._keepalive_s = keepalive_s
        self._idle: list[UpstreamConnection] = []
        self._all: set[UpstreamConnection] = set()
        self._closed = False

    async def acquire(self) -> UpstreamConnection:
        """An idle connection (most recently used first) or a new one."""
        idle = self._idle
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if conn.closed:
                    continue
                if now - conn.idle_since > self._keepalive_s:
                    conn.close()
                    for old in idle:  # older still
                        old.close()
                    idle.clear()
                    break
                return conn
        return await self.connect()

    async def connect(self) -> UpstreamConnection:
        if self._closed:
            raise SessionClosed("the pool is closed")
        session = self._session()
        conn = UpstreamConnection(self, self._ssl, self._host or None)
        async with asyncio.timeout(self._connect_timeout_s):
            stream = await session.open_stream(format_target(self._host, self._port))
            self._all.add(conn)
            try:
                stream.attach(conn)
                await conn.handshake()
            except BaseException:
                conn.close()
                raise
        return conn

    def _put(self, conn: UpstreamConnection) -> None:
        if self._closed or len(self._idle) >= MAX_IDLE_PER_POOL:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        conn.used = True
        self._idle.append(conn)

    def _forget(self, conn: UpstreamConnection) -> None:
        self._all.discard(conn)
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)

    def close(self) -> None:
        self._closed = True
        for conn in list(self._all):
            conn.close()
        self._idle.clear()
        self._all.clear()


async def send_request(
    pool: LeanPool, head: bytes, *, head_request: bool, retry_stale: bool
) -> Response:
    """Send a body-less request and wait for the answer's head; a reused connection that turns
    out to have been closed by the server is replaced once when ``retry_stale``."""
    conn = await pool.acquire()
    try:
        return await conn.send(head, head_request=head_request)
    except (UpstreamError, ConnectionError, SessionClosed):
        reused = conn.used
        stale = conn.failed_before_answer
        conn.close()
        if not (retry_stale and reused and stale):
            raise
    except BaseException:
        conn.close()
        raise
    conn = await pool.connect()
    try:
        return await conn.send(head, head_request=head_request)
    except BaseException:
        conn.close()
        raise

