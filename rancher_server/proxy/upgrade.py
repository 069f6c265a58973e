"""Upgraded requests (exec, attach, port-forward over websocket): the request goes downstream as
raw HTTP/1.1 inside a TLS stream through the tunnel; a 101 answer is passed back and from then on
bytes are spliced both ways unchanged."""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

from aiohttp import web
from multidict import CIMultiDict

from rancher_server.proxy.headers import upstream_response_headers
from rancher_server.proxy.upstream import Upstream
from rancher_tunnel.session import Session

MAX_RESPONSE_HEAD_BYTES = 64 * 1024
MAX_ERROR_BODY_BYTES = 1024 * 1024
SPLICE_READ_BYTES = 64 * 1024
CLIENT_WRITE_HIGH_WATER_BYTES = 1024 * 1024
CLIENT_DRAIN_POLL_S = 0.005


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


def _head(method: str, path_qs: str, host: str, headers: CIMultiDict[str]) -> bytes:
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
    try:
        writer.write(_head(request.method, path_qs, up.host_header, headers))
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
        while True:
            chunk = await reader.read(SPLICE_READ_BYTES)
            if not chunk or transport.is_closing():
                break
            transport.write(chunk)
            await _drain(transport)
        transport.close()
        return resp
    finally:
        writer.close()
