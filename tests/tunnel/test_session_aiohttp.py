"""The session over a real aiohttp websocket on loopback; TLS and an aiohttp client running over
tunnel streams."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
import uvloop
from aiohttp import web

from rancher_tunnel.connector import TunnelConnector
from rancher_tunnel.errors import DialRefused
from rancher_tunnel.splice import forward_protocol

from .conftest import (
    Certs,
    Pair,
    aiohttp_sessions,
    echo,
    serve_app,
    socketpair_sessions,
    tcp_server,
)

pytestmark = pytest.mark.timeout(30)


async def test_streams_over_aiohttp_websocket(echo_server: tuple[str, int]) -> None:
    async with aiohttp_sessions() as p:

        async def one(size: int) -> None:
            reader, writer = await p.server.open_connection(*echo_server)
            payload = os.urandom(size)
            writer.write(payload)
            writer.write_eof()
            assert await reader.read() == payload
            writer.close()
            await writer.wait_closed()

        await asyncio.gather(*(one(s) for s in (1, 10_000, 3_000_000, 5, 70_000)))
        with pytest.raises(DialRefused, match="failed"):
            await p.server.open_connection("127.0.0.1", 1)
    assert p.agent.closed and p.server.closed


async def tls_echo(p: Pair, addr: tuple[str, int], certs: Certs, size: int) -> None:
    """TLS through the tunnel to the echo server at ``addr``: ``size`` random bytes come back."""
    reader, writer = await p.server.open_connection(
        *addr, ssl=certs.client, server_hostname="localhost"
    )
    assert writer.get_extra_info("peercert") is not None  # TLS really ran end to end
    payload = os.urandom(size)
    writer.write(payload)
    await writer.drain()
    assert await reader.readexactly(len(payload)) == payload
    writer.close()
    await writer.wait_closed()


async def test_tls_over_create_connection(certs: Certs) -> None:
    async with tcp_server(echo, ssl_context=certs.server) as addr, socketpair_sessions() as p:
        await tls_echo(p, addr, certs, 200_000)


async def test_tls_wrong_hostname_fails(certs: Certs) -> None:
    async with tcp_server(echo, ssl_context=certs.server) as addr, socketpair_sessions() as p:
        with pytest.raises(ssl.SSLCertVerificationError):
            await p.server.open_connection(*addr, ssl=certs.client, server_hostname="evil.example")
        await asyncio.sleep(0.05)
        assert p.server.stats.open_streams == 0


@contextlib.asynccontextmanager
async def _http_app(certs: Certs | None) -> AsyncIterator[int]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.query.get('n', '')}")

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(64):
            await resp.write(b"b" * 65536)
        return resp

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/big", big)
    async with serve_app(app, certs.server if certs else None) as port:
        yield port


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_aiohttp_client_over_tunnel(certs: Certs, tls: bool) -> None:
    async with _http_app(certs if tls else None) as port, aiohttp_sessions() as p:
        connector = TunnelConnector(p.server, ssl=certs.client if tls else False)
        scheme = "https" if tls else "http"
        host = "localhost" if tls else "127.0.0.1"
        async with aiohttp.ClientSession(connector=connector) as http:
            for i in range(5):  # keep-alive reuses one stream
                async with http.get(f"{scheme}://{host}:{port}/hello?n={i}") as resp:
                    assert resp.status == 200
                    assert await resp.text() == f"hello {i}"
            async with http.get(f"{scheme}://{host}:{port}/big") as resp:
                assert len(await resp.read()) == 64 * 65536
            results = await asyncio.gather(
                *(http.get(f"{scheme}://{host}:{port}/hello?n={i}") for i in range(20))
            )
            for r in results:
                assert r.status == 200
                r.release()
            with pytest.raises(aiohttp.ClientConnectorError):
                await http.get(f"{scheme}://{host}:1/hello")


@pytest.mark.parametrize("pair", ["socketpair", "aiohttp"])
def test_tls_and_splice_under_uvloop(certs: Certs, pair: str) -> None:
    """uvloop's start_tls refuses foreign transports: the TLS fallback must work there too."""
    sessions = socketpair_sessions if pair == "socketpair" else aiohttp_sessions

    async def main() -> None:
        async with tcp_server(echo, ssl_context=certs.server) as addr, sessions() as p:
            await tls_echo(p, addr, certs, 3_000_000)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_server_first_target_keeps_its_banner(loop: str) -> None:
    """A target that talks first (SSH, SMTP banners): nothing read before the stream is attached
    may be lost, whatever the event loop (uvloop delivers reads before pause_reading applies)."""

    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-banner\r\n")
        await writer.drain()
        writer.write(await reader.readexactly(4))
        await writer.drain()

    async def main() -> None:
        async with tcp_server(banner) as addr, aiohttp_sessions() as p:
            for _ in range(20):
                reader, writer = await p.server.open_connection(*addr)
                async with asyncio.timeout(5):
                    assert await reader.readexactly(16) == b"SSH-2.0-banner\r\n"
                writer.write(b"pong")
                async with asyncio.timeout(5):
                    assert await reader.readexactly(4) == b"pong"
                writer.close()
                await writer.wait_closed()

    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_forward_protocol_keeps_bytes_sent_before_the_stream_opens(loop: str) -> None:
    """A local listener spliced into the tunnel: the client talks at once, before the stream is
    open (uvloop reads even though the protocol paused reading in connection_made)."""

    async def main() -> None:
        async with tcp_server(echo) as addr, aiohttp_sessions() as p:
            target = f"tcp://{addr[0]}:{addr[1]}"
            server = await asyncio.get_running_loop().create_server(
                forward_protocol(lambda: p.server.open_stream(target)), "127.0.0.1", 0
            )
            port = server.sockets[0].getsockname()[1]
            try:
                for size in (10, 100_000, 2_000_000):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    payload = os.urandom(size)
                    writer.write(payload)  # before the tunnel stream exists
                    writer.write_eof()
                    async with asyncio.timeout(10):
                        assert await reader.read() == payload
                    writer.close()
                    await writer.wait_closed()
            finally:
                server.close()
                await server.wait_closed()

    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


async def test_text_message_on_the_tunnel_is_a_protocol_error() -> None:
    async with aiohttp_sessions() as p:
        raw_ws = p.agent._ws._ws  # type: ignore[attr-defined]
        await raw_ws.send_str("not a tunnel frame")
        async with asyncio.timeout(5):
            await p.server.wait_closed()
        assert "unexpected websocket message type TEXT" in (p.server.close_reason or "")
        async with asyncio.timeout(5):
            await p.agent.wait_closed()
