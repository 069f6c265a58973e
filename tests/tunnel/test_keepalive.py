"""Dead-peer detection: a peer that stops answering pings is torn down within the bound, however
busy its streams are."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from rancher_tunnel.constants import Limits
from rancher_tunnel.frames import Role
from rancher_tunnel.protocol import Connection
from rancher_tunnel.session import Session
from rancher_tunnel.stream import IncomingStream
from rancher_tunnel.wsadapter import StreamWebSocket

pytestmark = pytest.mark.timeout(30)

LIMITS = Limits(ping_interval_s=0.1, pong_timeout_s=0.6, close_timeout_s=0.5)
BOUND_S = LIMITS.ping_interval_s + LIMITS.pong_timeout_s + 0.5  # + scheduling slack


async def _silent_peer(
    *, open_stream: bool
) -> tuple[Session, asyncio.Task[None], asyncio.StreamWriter, list[int], float]:
    a, b = socket.socketpair()
    for s in (a, b):  # small socket buffers: a blocked writer shows up quickly
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    r1, w1 = await asyncio.open_connection(sock=a)
    r2, w2 = await asyncio.open_connection(sock=b)
    written: list[int] = [0]

    async def blast(incoming: IncomingStream) -> None:
        stream = await incoming.accept()
        chunk = b"b" * 65536
        while True:
            await stream.write(chunk)
            written[0] += len(chunk)

    session = Session(
        StreamWebSocket(r1, w1), Role.SERVER, name="under-test", limits=LIMITS, on_stream=blast
    )
    run = asyncio.create_task(session.run())
    t0 = time.monotonic()
    # the fake agent: a bare protocol core that handshakes (and maybe opens a stream), then
    # never reads again
    fake = Connection(Role.AGENT)
    w2.write(fake.data_to_send())
    fake.receive_data(await r2.read(65536))
    if open_stream:
        fake.open_stream("tcp://anything:1")
    while chunk := fake.data_to_send():
        w2.write(chunk)
    await w2.drain()
    return session, run, w2, written, t0


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy-stream"])
async def test_peer_that_stops_answering_pings_is_torn_down(busy: bool) -> None:
    session, run, w, written, t0 = await _silent_peer(open_stream=busy)
    async with asyncio.timeout(BOUND_S + 2):
        await run
    elapsed = time.monotonic() - t0
    assert session.closed
    assert "no pong" in (session.close_reason or "")
    assert elapsed <= BOUND_S, f"dead peer detected after {elapsed:.2f} s (bound {BOUND_S} s)"
    if busy:
        assert written[0] > 0  # the stream really was busy (its writer blocked on the peer)
    w.close()
    await w.wait_closed()


async def test_answering_peer_stays_up_and_rtt_is_measured() -> None:
    from .conftest import socketpair_sessions

    async with socketpair_sessions(limits=LIMITS) as p:
        await asyncio.sleep(LIMITS.pong_timeout_s * 2)
        assert not p.server.closed and not p.agent.closed
        assert p.server.rtt_s is not None and 0 <= p.server.rtt_s < LIMITS.pong_timeout_s
        assert p.agent.rtt_s is not None
