"""Upgraded requests (exec, attach, port-forward over websocket): the request goes downstream as
raw HTTP/1.1 inside a TLS stream through the tunnel; a 101 answer is passed back and from then on
bytes are spliced both ways unchanged.

Once the 101 went out the client speaks websocket (or SPDY), never HTTP again: when the stream
dies under it (the agent went away, the tunnel stream was reset) a websocket client gets a close
frame with 1011 at the next frame boundary of what the cluster sent (the connection is cut if it
died mid-frame), a SPDY client has its connection reset; nothing is raised to the HTTP layer."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import cast

from aiohttp import web
from multidict import CIMultiDict

from rancher_server.proxy.headers import upstream_response_headers
from rancher_server.proxy.upstream import Upstream
from rancher_tunnel.errors import TunnelError
from rancher_tunnel.logs import get_logger
from rancher_tunnel.session import Session

log = get_logger(component="proxy-upgrade")

MAX_RESPONSE_HEAD_BYTES = 64 * 1024
MAX_ERROR_BODY_BYTES = 1024 * 1024
SPLICE_READ_BYTES = 64 * 1024
CLIENT_WRITE_HIGH_WATER_BYTES = 1024 * 1024
CLIENT_DRAIN_POLL_S = 0.005
WS_CLOSE_INTERNAL_ERROR = 1011
WS_CLOSE_REASON = b"upstream stream lost"
WS_CLOSE_LINGER_S = 2.0  # after our close frame, wait this long for the client to close
_WS_CLOSE_FRAME = bytes((0x88, 2 + len(WS_CLOSE_REASON))) + struct.pack(
    "!H", WS_CLOSE_INTERNAL_ERROR
) + WS_CLOSE_REASON
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class FrameBoundary:
    """Follows the websocket frames the cluster sends the client (headers only, payloads are
    skipped) so that a close frame of ours is written only between two of them."""

    def __init__(self) -> None:
        self._head = b""  # a frame header not complete yet
        self._skip = 0  # payload bytes of the current frame still to come

    @property
    def at_boundary(self) -> bool:
        return not self._head and not self._skip

    def feed(self, data: bytes) -> None:
        pos, n = 0, len(data)
        while pos < n:
            if self._skip:
                step = min(self._skip, n - pos)
                self._skip -= step
                pos += step
                continue
            head = self._head + data[pos : pos + 14]
            length = head[1] & 0x7F if len(head) >= 2 else 0
            need = 2 + (2 if length == 126 else 8 if length == 127 else 0)
            need += 4 if len(head) >= 2 and head[1] & 0x80 else 0
            if len(head) < need or len(head) < 2:
                self._head = head
                return
            used = need - len(self._head)
            self._head = b""
            pos += used
            if length == 126:
                length = _U16.unpack_from(head, 2)[0]
            elif length == 127:
                length = _U64.unpack_from(head, 2)[0]
            self._skip = length


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def _stream_lost(
    request: web.Request,
    transport: asyncio.BaseTransport,
    frames: FrameBoundary,
    client_done: asyncio.Event,
    error: str,
) -> None:
    """The cluster side died after the 101: close the client's websocket with 1011 (or reset a
    SPDY connection); never an HTTP answer."""
    wt = cast(asyncio.WriteTransport, transport)
    if wt.is_closing():
        return
    if _is_websocket(request) and frames.at_boundary:
        log.warning("upgraded stream lost; closing the websocket with 1011", error=error)
        wt.write(_WS_CLOSE_FRAME)
        # the closing handshake: the client answers with its close and ends the connection
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client_done.wait(), WS_CLOSE_LINGER_S)
        wt.close()
    else:
        log.warning("upgraded stream lost; resetting the client connection", error=error)
        wt.abort()


class _ClientToDownstream:
    """Installed as aiohttp's payload parser after the upgrade: client bytes go downstream."""

    def __init__(self, writer: asyncio.StreamWriter, done: asyncio.Event) -> None:
        self._writer = writer
        self._done = done

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if not self._writer.is_closing():
            self._writer.write(data)
        return False, b""

    def feed_eof(self) -> None:
        if not self._writer.is_closing() and self._writer.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.write_eof()
        self._done.set()


def request_head(method: str, path_qs: str, host: str, headers: CIMultiDict[str]) -> bytes:
    lines = [f"{method} {path_qs} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse_head(raw: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    text = raw.decode("latin-1")
    status_line, *header_lines = text.split("\r\n")
    parts = status_line.split(" ", 2)
    code = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return code, reason, headers


async def _drain(transport: asyncio.BaseTransport) -> None:
    """Wait while the client is slower than the cluster (the transport's buffer is full)."""
    wt = cast(asyncio.WriteTransport, transport)
    # A raw transport offers no drain event, so poll its buffer.
    while wt.get_write_buffer_size() > CLIENT_WRITE_HIGH_WATER_BYTES and not wt.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(CLIENT_DRAIN_POLL_S)


async def proxy_upgrade(
    request: web.Request,
    tunnel: Session,
    up: Upstream,
    headers: CIMultiDict[str],
    path_qs: str,
) -> web.StreamResponse:
    reader, writer = await tunnel.open_connection(
        up.host, up.port, ssl=up.ssl, server_hostname=up.host
    )
    head = request_head(request.method, path_qs, up.host_header, headers)
    return await relay_upgrade(request, reader, writer, head)


async def relay_upgrade(
    request: web.Request,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    head: bytes,
) -> web.StreamResponse:
    """Sends ``head`` on the opened connection; a 101 answer is passed back and the two sides
    are spliced from then on, anything else is answered as it came."""
    try:
        writer.write(head)
        reader._limit = MAX_RESPONSE_HEAD_BYTES  # type: ignore[attr-defined]
        raw = await reader.readuntil(b"\r\n\r\n")
        code, reason, resp_headers = _parse_head(raw[:-4])
        if code != 101:
            out_headers = upstream_response_headers(resp_headers)
            length = int(dict((k.lower(), v) for k, v in resp_headers).get("content-length", "0"))
            body = await reader.readexactly(min(length, MAX_ERROR_BODY_BYTES)) if length else b""
            writer.close()
            return web.Response(status=code, reason=reason, headers=out_headers, body=body)
        resp = web.StreamResponse(
            status=101,
            reason=reason or "Switching Protocols",
            headers=upstream_response_headers(resp_headers, keep_upgrade=True),
        )
        await resp.prepare(request)
        transport = request.transport
        assert transport is not None and request.protocol is not None
        done = asyncio.Event()
        request.protocol.set_parser(_ClientToDownstream(writer, done))  # type: ignore[arg-type]
        frames = FrameBoundary()
        try:
            while True:
                chunk = await reader.read(SPLICE_READ_BYTES)
                if not chunk or transport.is_closing():
                    break
                frames.feed(chunk)
                transport.write(chunk)
                await _drain(transport)
        except (TunnelError, OSError) as e:  # StreamReset is a ConnectionResetError
            await _stream_lost(request, transport, frames, done, repr(e))
            return resp
        transport.close()
        return resp
    finally:
        writer.close()
