"""pods/<p>/portforward with Python clients for both framings: SPDY tunneled in websocket
messages (what kubectl 1.32 speaks) and kubelet's websocket channels."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import aiohttp
import pytest

from kubesim.sim import spdy
from kubesim.sim.portforward import SPDY_TUNNEL_PROTOCOL

from .conftest import SimServer, running_pod

pytestmark = pytest.mark.timeout(30)
RECV_TIMEOUT_S = 5.0


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()
        await w.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def spdy_frames(
    ws: aiohttp.ClientWebSocketResponse, codec: spdy.SpdyCodec, until: int
) -> list[spdy.Frame]:
    frames: list[spdy.Frame] = []
    while len(frames) < until:
        msg = await asyncio.wait_for(ws.receive(), RECV_TIMEOUT_S)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        frames += codec.feed(msg.data)
    return frames


async def test_spdy_tunnel_forwards_to_the_declared_port(
    sim_server: SimServer, echo_port: int
) -> None:
    srv = sim_server
    await running_pod(srv.store, "web", annotations={"kubesim.io/port-80": str(echo_port)})
    url = f"{srv.url}/api/v1/namespaces/default/pods/web/portforward"
    codec = spdy.SpdyCodec()
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(url, protocols=(SPDY_TUNNEL_PROTOCOL,)) as ws,
    ):
        assert ws.protocol == SPDY_TUNNEL_PROTOCOL
        h = {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}
        await ws.send_bytes(codec.encode_syn_stream(1, h))
        await ws.send_bytes(codec.encode_syn_stream(3, {**h, "streamtype": ["data"]}))
        await ws.send_bytes(codec.encode_ping(42))
        replies = await spdy_frames(ws, codec, 3)
        assert [(f.type, f.stream_id) for f in replies if isinstance(f, spdy.ControlFrame)] == [
            (spdy.SYN_REPLY, 1),
            (spdy.SYN_REPLY, 3),
            (spdy.PING, 0),
        ]
        assert isinstance(replies[2], spdy.ControlFrame) and replies[2].value == 42
        await ws.send_bytes(spdy.SpdyCodec.encode_data(3, b"hello", fin=False))
        [echo] = await spdy_frames(ws, codec, 1)
        assert echo == spdy.DataFrame(3, 0, b"hello")
        await ws.send_bytes(spdy.SpdyCodec.encode_data(3, b"", fin=True))  # half-close
        tail = await spdy_frames(ws, codec, 2)
        assert tail == [
            spdy.DataFrame(3, spdy.FLAG_FIN, b""),
            spdy.DataFrame(1, spdy.FLAG_FIN, b""),
        ]
        # a second connection on a port with nothing behind it gets kubelet's error
        h = {"streamtype": ["error"], "port": ["81"], "requestid": ["1"]}
        await ws.send_bytes(codec.encode_syn_stream(5, h))
        await ws.send_bytes(codec.encode_syn_stream(7, {**h, "streamtype": ["data"]}))
        frames = await spdy_frames(ws, codec, 4)
        errors = [f for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == 5]
        assert errors[0].data.startswith(b"error forwarding port 81 to pod web")
        assert b"connect: connection refused" in errors[0].data and errors[0].fin


async def test_channel_port_forward(sim_server: SimServer, echo_port: int) -> None:
    srv = sim_server
    await running_pod(
        srv.store, "db", annotations={"kubesim.io/port-5432": f"127.0.0.1:{echo_port}"}
    )
    url = f"{srv.url}/api/v1/namespaces/default/pods/db/portforward?ports=5432"
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
            prefix = struct.pack("<H", 5432)
            assert await asyncio.wait_for(ws.receive_bytes(), RECV_TIMEOUT_S) == b"\x00" + prefix
            assert await asyncio.wait_for(ws.receive_bytes(), RECV_TIMEOUT_S) == b"\x01" + prefix
            await ws.send_bytes(b"\x00select 1")
            assert await asyncio.wait_for(ws.receive_bytes(), RECV_TIMEOUT_S) == b"\x00select 1"
        async with s.get(
            f"{srv.url}/api/v1/namespaces/default/pods/db/portforward?ports=0",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        ) as r:
            assert r.status == 400 and "must be > 0" in (await r.json())["message"]
        async with s.ws_connect(url.replace("5432", "1"), protocols=("v4.channel.k8s.io",)) as ws:
            await ws.receive_bytes()
            await ws.receive_bytes()
            err = await asyncio.wait_for(ws.receive_bytes(), RECV_TIMEOUT_S)
            assert err[0] == 1 and b"connection refused" in err
