"""Fixtures for the tunnel tests: session pairs over a socketpair or a real aiohttp websocket on
loopback, and small TCP servers as dial targets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from rancher_tunnel.constants import DEFAULT_LIMITS, WS_MAX_MESSAGE_BYTES, Limits
from rancher_tunnel.frames import Role
from rancher_tunnel.messages import Message
from rancher_tunnel.session import Session
from rancher_tunnel.splice import serve_tcp
from rancher_tunnel.stream import IncomingStream
from rancher_tunnel.wsadapter import StreamWebSocket
from tests.tlsutil import self_signed

TEARDOWN_TIMEOUT_S = 5.0
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def parse_target(target: str) -> tuple[str, int]:
    host, port = target.removeprefix("tcp://").rsplit(":", 1)
    return host.strip("[]"), int(port)


async def serve_any(incoming: IncomingStream) -> None:
    """Agent stream handler for tests: dial whatever the server asks for."""
    host, port = parse_target(incoming.target)
    await serve_tcp(incoming, host, port, connect_timeout_s=2.0)


@dataclass
class Pair:
    server: Session
    agent: Session
    tasks: list[asyncio.Task[None]]


async def _finish(pair: Pair) -> None:
    for s in (pair.server, pair.agent):
        await s.close()
    async with asyncio.timeout(TEARDOWN_TIMEOUT_S):
        await asyncio.gather(*pair.tasks)


@contextlib.asynccontextmanager
async def socketpair_sessions(
    *,
    limits: Limits = DEFAULT_LIMITS,
    on_stream: Callable[[IncomingStream], Awaitable[None]] | None = serve_any,
    on_message: Callable[[Message], Awaitable[None]] | None = None,
    server_on_stream: Callable[[IncomingStream], Awaitable[None]] | None = None,
) -> AsyncIterator[Pair]:
    a, b = socket.socketpair()
    r1, w1 = await asyncio.open_connection(sock=a)
    r2, w2 = await asyncio.open_connection(sock=b)
    server = Session(
        StreamWebSocket(r1, w1),
        Role.SERVER,
        name="test-server",
        limits=limits,
        on_message=on_message,
        on_stream=server_on_stream,
    )
    agent = Session(
        StreamWebSocket(r2, w2), Role.AGENT, name="test-agent", limits=limits, on_stream=on_stream
    )
    tasks = [asyncio.create_task(server.run()), asyncio.create_task(agent.run())]
    pair = Pair(server, agent, tasks)
    try:
        await server.wait_ready()
        yield pair
    finally:
        await _finish(pair)


@contextlib.asynccontextmanager
async def serve_app(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """``app`` served on a loopback port chosen by the OS (yielded), cleaned up on leaving."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def aiohttp_sessions(
    *,
    limits: Limits = DEFAULT_LIMITS,
    on_stream: Callable[[IncomingStream], Awaitable[None]] | None = serve_any,
) -> AsyncIterator[Pair]:
    """A server Session behind a real aiohttp websocket endpoint and an agent dialing it."""
    # handed over through a list emptied once taken: nothing of the app keeps the session
    ready = asyncio.Event()
    holder: list[Session] = []
    server_task: list[asyncio.Task[None]] = []

    async def connect(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_MESSAGE_BYTES, compress=False)
        await ws.prepare(request)
        session = Session(ws, Role.SERVER, name="aiohttp-server", limits=limits)
        holder.append(session)
        ready.set()
        await session.run()
        return ws

    app = web.Application()
    app.router.add_get("/connect", connect)
    async with serve_app(app) as port:
        http = aiohttp.ClientSession()
        ws = await http.ws_connect(
            f"http://127.0.0.1:{port}/connect",
            max_msg_size=WS_MAX_MESSAGE_BYTES,
            compress=0,
            autoping=True,
        )
        agent = Session(ws, Role.AGENT, name="aiohttp-agent", limits=limits, on_stream=on_stream)
        agent_task = asyncio.create_task(agent.run())
        await ready.wait()
        server = holder.pop()
        pair = Pair(server, agent, [agent_task, *server_task])
        try:
            await server.wait_ready()
            yield pair
        finally:
            await _finish(pair)
            await http.close()


@contextlib.asynccontextmanager
async def tcp_server(
    handler: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, int]]:
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(r, w)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            w.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await w.wait_closed()
            tasks.discard(task)

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield "127.0.0.1", server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[str, int]]:
    async with tcp_server(echo) as addr:
        yield addr


@dataclass
class Certs:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A self-signed certificate for "localhost" and contexts that use / trust it."""
    cert, key = self_signed(
        tmp_path_factory.mktemp("certs"),
        "localhost",
        dns_names=["localhost"],
        file_names=("cert.pem", "key.pem"),
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return Certs(server, client)


@pytest.fixture(autouse=True)
async def _no_leaked_tunnel_tasks() -> AsyncIterator[None]:
    """Every session task (reader, writer, keepalive, stream handlers) is gone after a test."""
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = [
        t
        for t in asyncio.all_tasks()
        if t is not current and not t.done() and t.get_name().startswith("tunnel:")
    ]
    assert not leaked, f"leaked tunnel tasks: {[t.get_name() for t in leaked]}"
