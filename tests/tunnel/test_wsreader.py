"""Our websocket frame reader (``wsreader``): fed whole and one byte at a time, masked and
unmasked, fragmented, control frames, errors; and the push-mode switch over a real aiohttp peer."""

from __future__ import annotations

import asyncio
import os
import struct

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from rancher_tunnel.constants import WS_MAX_MESSAGE_BYTES
from rancher_tunnel.wsadapter import AiohttpWebSocket
from rancher_tunnel.wsreader import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_UNSUPPORTED_DATA,
    WebSocketProtocolError,
    WsReaderProtocol,
)

from .conftest import aiohttp_sessions, serve_app

pytestmark = pytest.mark.timeout(30)


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bool = False, rsv: int = 0
) -> bytes:
    n = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes((first, mbit | n))
    elif n < 65536:
        head = struct.pack("!BBH", first, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Rec:
    def __init__(self, max_message_bytes: int = 1 << 20) -> None:
        self.messages: list[bytes] = []
        self.pings: list[bytes] = []
        self.closes: list[tuple[int, str]] = []
        self.errors: list[WebSocketProtocolError] = []
        self.lost: list[Exception | None] = []
        self.proto = WsReaderProtocol(
            max_message_bytes=max_message_bytes,
            on_message=lambda m: self.messages.append(bytes(m)),
            on_ping=self.pings.append,
            on_close=lambda c, r: self.closes.append((c, r)),
            on_error=self.errors.append,
            on_lost=self.lost.append,
            scratch_bytes=16 * 1024,
            direct_min_bytes=1024,
        )

    def feed(self, data: bytes, step: int | None = None) -> None:
        pos = 0
        while pos < len(data):
            buf = self.proto.get_buffer(-1)
            assert len(buf) > 0
            n = min(len(buf), len(data) - pos, step or len(data))
            buf[:n] = data[pos : pos + n]
            self.proto.buffer_updated(n)
            pos += n


PAYLOADS = [b"", b"x", os.urandom(125), os.urandom(126), os.urandom(5000), os.urandom(70_000)]


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("step", [None, 1, 7, 4096])
def test_binary_messages(mask: bool, step: int | None) -> None:
    # byte at a time through every size class but the largest
    payloads = PAYLOADS[:5] if step == 1 else PAYLOADS
    r = Rec()
    r.feed(b"".join(frame(2, p, mask=mask) for p in payloads), step)
    assert r.messages == payloads
    assert not r.errors and not r.closes


@pytest.mark.parametrize("step", [None, 1, 3000])
def test_fragmented_message_with_control_frames_between(step: int | None) -> None:
    parts = [os.urandom(10), os.urandom(3000), os.urandom(1)]
    data = (
        frame(2, parts[0], fin=False, mask=True)
        + frame(9, b"ping!", mask=True)
        + frame(0, parts[1], fin=False, mask=True)
        + frame(10, b"pong", mask=True)
        + frame(0, parts[2], mask=True)
        + frame(2, b"after", mask=True)
    )
    r = Rec()
    r.feed(data, step)
    assert r.messages == [b"".join(parts), b"after"]
    assert r.pings == [b"ping!"]


def test_close_frame_ends_input() -> None:
    r = Rec()
    r.feed(frame(2, b"a") + frame(8, struct.pack("!H", 1001) + b"bye") + frame(2, b"late"))
    assert r.messages == [b"a"]
    assert r.closes == [(1001, "bye")]
    assert r.proto.done
    r.feed(frame(2, b"later"))  # read and discarded
    assert r.messages == [b"a"]


def test_empty_close_frame() -> None:
    r = Rec()
    r.feed(frame(8, b"", mask=True), 1)
    assert r.closes == [(0, "")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(1, b"text"), CLOSE_UNSUPPORTED_DATA),
        (frame(2, b"x", rsv=0x40), CLOSE_PROTOCOL_ERROR),
        (frame(3, b"x"), CLOSE_PROTOCOL_ERROR),
        (frame(0, b"x"), CLOSE_PROTOCOL_ERROR),
        (frame(9, b"x", fin=False), CLOSE_PROTOCOL_ERROR),
        (frame(9, b"x" * 126), CLOSE_PROTOCOL_ERROR),
        (frame(2, b"a", fin=False) + frame(2, b"b"), CLOSE_PROTOCOL_ERROR),
        (frame(8, b"\x03"), CLOSE_PROTOCOL_ERROR),
        (frame(8, struct.pack("!H", 999)), CLOSE_PROTOCOL_ERROR),
        (frame(2, b"x" * 2001), CLOSE_MESSAGE_TOO_BIG),
        (frame(2, b"x" * 1500, fin=False) + frame(0, b"x" * 600), CLOSE_MESSAGE_TOO_BIG),
    ],
)
def test_violations_end_input(data: bytes, code: int) -> None:
    r = Rec(max_message_bytes=2000)
    r.feed(data + frame(2, b"never"), 1)
    assert [e.close_code for e in r.errors] == [code]
    assert r.messages == [] and r.proto.done


def test_oversized_header_rejected_before_payload() -> None:
    r = Rec(max_message_bytes=2000)
    r.feed(struct.pack("!BBQ", 0x82, 127, 2**40))
    assert [e.close_code for e in r.errors] == [CLOSE_MESSAGE_TOO_BIG]


def test_large_payload_goes_direct_and_is_not_reused() -> None:
    got: list[bytearray] = []
    proto = WsReaderProtocol(
        max_message_bytes=1 << 20,
        on_message=got.append,
        on_ping=lambda p: None,
        on_close=lambda c, r: None,
        on_error=lambda e: None,
        on_lost=lambda e: None,
    )
    a, b = os.urandom(300_000), os.urandom(200_000)
    data = frame(2, a, mask=True) + frame(2, b, mask=True)
    pos = 0
    while pos < len(data):
        buf = proto.get_buffer(-1)
        n = min(len(buf), len(data) - pos)
        buf[:n] = data[pos : pos + n]
        proto.buffer_updated(n)
        pos += n
    assert [bytes(m) for m in got] == [a, b]
    assert got[0] is not got[1]


def test_connection_lost_reported() -> None:
    r = Rec()
    r.feed(frame(2, b"x" * 3000)[:100])
    exc = ConnectionResetError()
    r.proto.connection_lost(exc)
    assert r.lost == [exc] and r.proto.done


async def test_push_mode_with_aiohttp_peer() -> None:
    """Against aiohttp's own client: binary messages, its ping answered with a pong, its close."""
    received: list[bytes] = []
    ended: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
    closed: list[bool] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_MESSAGE_BYTES, compress=False)
        await ws.prepare(request)
        adapter = AiohttpWebSocket(ws)
        assert adapter.start_push(lambda m: received.append(bytes(m)), ended.set_result)
        assert await ended is None
        await adapter.close(1000, "ok")
        closed.append(True)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    async with serve_app(app) as port:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"http://127.0.0.1:{port}/ws", autoping=False, compress=0) as ws,
        ):
            big = os.urandom(300_000)
            await ws.send_bytes(b"one")
            await ws.send_bytes(big)
            await ws.ping(b"are you there")
            msg = await ws.receive(timeout=5)
            assert msg.type is WSMsgType.PONG and msg.data == b"are you there"
            assert await ws.close(code=1000, message=b"done")
        assert received == [b"one", big]
        for _ in range(100):
            if closed:
                break
            await asyncio.sleep(0.01)
        assert closed


async def test_sessions_use_push_mode() -> None:
    async with aiohttp_sessions() as p:
        for s in (p.server, p.agent):
            ws = s._ws
            assert isinstance(ws, AiohttpWebSocket)
            assert ws._reader is not None and ws._reader.messages_in > 0


def test_readers_share_the_scratch_buffer_safely() -> None:
    """Two readers fed alternately, each left holding an incomplete frame between reads."""
    a, b = Rec(), Rec()
    pa = [os.urandom(n) for n in (5, 900, 3, 1023, 200)]
    pb = [os.urandom(n) for n in (700, 1, 1000, 64)]
    da = b"".join(frame(2, p, mask=True) for p in pa)
    db = b"".join(frame(2, p) for p in pb)
    for i in range(0, max(len(da), len(db)), 97):
        a.feed(da[i : i + 97])
        b.feed(db[i : i + 97])
    assert a.messages == pa
    assert b.messages == pb


@pytest.mark.parametrize(
    ("send", "code"),
    [("text", CLOSE_UNSUPPORTED_DATA), ("big", CLOSE_MESSAGE_TOO_BIG)],
)
async def test_push_mode_violation_closes_with_its_code(send: str, code: int) -> None:
    ended: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1000, compress=False)
        await ws.prepare(request)
        adapter = AiohttpWebSocket(ws)
        assert adapter.start_push(lambda m: None, ended.set_result)
        exc = await ended
        assert isinstance(exc, WebSocketProtocolError) and exc.close_code == code
        await adapter.close(exc.close_code, exc.reason)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    async with (
        serve_app(app) as port,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"http://127.0.0.1:{port}/ws", compress=0) as ws,
    ):
        if send == "text":
            await ws.send_str("hello")
        else:
            await ws.send_bytes(b"x" * 1001)
        msg = await ws.receive(timeout=5)
        assert msg.type is WSMsgType.CLOSE and msg.data == code
