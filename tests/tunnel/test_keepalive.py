"""Dead-peer detection: a peer that stops answering pings is torn down within the bound, however
busy its streams are."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time

import pytest

from rancher_tunnel.constants import Limits
from rancher_tunnel.frames import Role
from rancher_tunnel.protocol import Connection
from rancher_tunnel.session import KEEPALIVE_JITTER, Session
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


async def test_server_pings_a_peer_it_hears_from_only_for_the_rtt_sample() -> None:
    """The agent pings every interval; the server, which hears those, pings only every
    ``rtt_sample_s`` (half the frames of an idle session) and still measures the round trip."""
    from .conftest import socketpair_sessions

    limits = Limits(ping_interval_s=0.1, pong_timeout_s=0.6, rtt_sample_s=0.5,
                    close_timeout_s=0.5)
    async with socketpair_sessions(limits=limits) as p:
        start_server, start_agent = p.server._conn.pings_sent, p.agent._conn.pings_sent
        await asyncio.sleep(2.0)
        assert not p.server.closed and not p.agent.closed
        agent_pings = p.agent._conn.pings_sent - start_agent
        server_pings = p.server._conn.pings_sent - start_server
        assert agent_pings >= 12, agent_pings  # every 0.1 s
        assert 2 <= server_pings <= 6, server_pings  # every 0.5 s, plus scheduling slack
        assert p.server.rtt_s is not None


async def test_peer_that_sends_but_never_reads_is_dropped_after_the_rtt_sample() -> None:
    """A peer that keeps sending (pings) but never reads owes the server a valid pong within
    ``rtt_sample_s`` + the pong timeout: its messages keep it alive only until then."""
    limits = Limits(ping_interval_s=0.1, pong_timeout_s=0.6, rtt_sample_s=0.8,
                    close_timeout_s=0.5)
    bound = limits.rtt_sample_s + limits.pong_timeout_s + limits.ping_interval_s + 0.5
    a, b = socket.socketpair()
    r1, w1 = await asyncio.open_connection(sock=a)
    r2, w2 = await asyncio.open_connection(sock=b)
    session = Session(StreamWebSocket(r1, w1), Role.SERVER, name="under-test", limits=limits)
    run = asyncio.create_task(session.run())
    fake = Connection(Role.AGENT)
    w2.write(fake.data_to_send())
    fake.receive_data(await r2.read(65536))  # the handshake, then it never reads again
    t0 = time.monotonic()

    async def keep_pinging() -> None:
        while True:
            fake.ping()
            w2.write(fake.data_to_send())
            await asyncio.sleep(limits.ping_interval_s / 2)

    pinger = asyncio.create_task(keep_pinging())
    try:
        async with asyncio.timeout(bound + 2):
            await run
    finally:
        pinger.cancel()
    elapsed = time.monotonic() - t0
    assert "no pong for 1.4 s" in (session.close_reason or ""), session.close_reason
    # alive past the plain pong timeout (its pings count), dropped by the pong it owes
    assert limits.pong_timeout_s < elapsed <= bound, elapsed
    w2.close()


async def test_peer_that_never_says_hello_is_closed_at_the_handshake_deadline() -> None:
    """A peer that connects and sends nothing is closed (not just dropped) once the handshake
    deadline passes; no keepalive ping is sent before the handshake."""
    limits = Limits(ping_interval_s=0.1, pong_timeout_s=0.6, handshake_timeout_s=0.4,
                    close_timeout_s=0.5)
    a, b = socket.socketpair()
    r1, w1 = await asyncio.open_connection(sock=a)
    _r2, w2 = await asyncio.open_connection(sock=b)
    session = Session(StreamWebSocket(r1, w1), Role.SERVER, name="under-test", limits=limits)
    t0 = time.monotonic()
    await asyncio.wait_for(session.run(), 5)
    elapsed = time.monotonic() - t0
    assert session.close_reason == "handshake timed out"
    assert limits.handshake_timeout_s <= elapsed < limits.handshake_timeout_s + 1.0, elapsed
    assert session.connection.pings_sent == 0
    w2.close()


async def test_pings_of_sessions_that_came_up_together_are_spread() -> None:
    """Sessions that shook hands at the same moment (a reconnect storm, or timers that all came
    due during one stall of the loop) do not ping in step: the first interval after the
    handshake is a random part of the interval, and every later one a random part of its last
    fifth, never longer than the interval (no liveness deadline moves)."""
    from .conftest import socketpair_sessions

    interval = 0.2
    limits = Limits(ping_interval_s=interval, pong_timeout_s=1.0, close_timeout_s=0.5)
    pairs = 8
    agents: list[Session] = []
    seen: list[list[float]] = [[] for _ in range(pairs)]  # when each agent's pings went out

    async def watch() -> None:
        counts = [0] * pairs
        while True:
            for i, a in enumerate(agents):
                if a._conn.pings_sent != counts[i]:
                    counts[i] = a._conn.pings_sent
                    seen[i].append(time.monotonic())
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(pairs):
            agents.append((await stack.enter_async_context(
                socketpair_sessions(limits=limits))).agent)
        await asyncio.sleep(8 * interval)
    watcher.cancel()
    # the first ping goes at the handshake; the next, without the spread, one interval later
    # for every session
    offsets = sorted(times[1] - times[0] for times in seen)
    assert offsets[-1] - offsets[0] > 0.25 * interval, offsets
    gaps = [b - a for times in seen for a, b in itertools.pairwise(times[1:])]
    assert len(gaps) >= pairs * 3, gaps
    slack = 0.05  # this polling and a loaded machine's scheduling
    low, high = interval * (1 - KEEPALIVE_JITTER) - slack, interval + slack
    assert all(low <= g <= high for g in gaps), gaps
    assert max(gaps) - min(gaps) > 0.05 * interval, gaps  # jittered, not a fixed interval
