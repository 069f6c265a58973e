"""The lean client end to end: TLS inside a tunnel stream to a real aiohttp server, keep-alive
reuse, chunked streaming, request bodies, and an idle connection the server closed."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from rancher_server.proxy.lean import LeanPool, send_request
from rancher_server.tls import generate
from tests.tunnel.conftest import socketpair_sessions


def _head(method: str, path: str, port: int, extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[int, ssl.SSLContext]]:
    tls = generate(tmp_path, ["127.0.0.1"])

    async def small(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for i in range(3):
            await resp.write(b"event %d\n" % i)
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application()
    app.router.add_get("/small", small)
    app.router.add_get("/stream", stream)
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app, keepalive_timeout=0.3)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context())
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, ssl.create_default_context(cadata=tls.ca_pem.decode())
    finally:
        await runner.cleanup()


async def test_requests_through_a_tunnel(server: tuple[int, ssl.SSLContext]) -> None:
    port, ctx = server
    async with socketpair_sessions() as p:
        pool = LeanPool(
            lambda: p.server, "127.0.0.1", port, ctx, connect_timeout_s=5, keepalive_s=30
        )
        try:
            first = await send_request(
                pool, _head("GET", "/small", port), head_request=False, retry_stale=True
            )
            assert first.status == 200
            assert await first.conn.read_all() == b'{"ok": true}'
            first.conn.release()

            again = await send_request(
                pool, _head("GET", "/small", port), head_request=False, retry_stale=True
            )
            assert again.conn is first.conn  # kept alive and reused
            assert await again.conn.read_all() == b'{"ok": true}'
            again.conn.release()

            streamed = await send_request(
                pool, _head("GET", "/stream", port), head_request=False, retry_stale=True
            )
            assert streamed.length is None  # chunked
            pieces = []
            while piece := await streamed.conn.read():
                pieces.append(piece)
            assert b"".join(pieces) == b"event 0\nevent 1\nevent 2\n"
            assert len(pieces) >= 2  # delivered as they came, not buffered to the end
            streamed.conn.release()

            conn = await pool.acquire()
            body = b"x" * 100_000
            answer = conn.send(_head("POST", "/echo", port, f"Content-Length: {len(body)}\r\n"))
            conn.write(body)
            await conn.drain()
            echoed = await answer
            assert echoed.status == 200
            assert await conn.read_all() == body
            conn.release()

            await asyncio.sleep(0.6)  # the server drops idle connections after 0.3 s
            late = await send_request(
                pool, _head("GET", "/small", port), head_request=False, retry_stale=True
            )
            assert late.status == 200
            assert await late.conn.read_all() == b'{"ok": true}'
            late.conn.release()
        finally:
            pool.close()
