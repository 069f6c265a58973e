"""The asyncio session over a socketpair: streams, half-close, reset, flow control, messages."""

from __future__ import annotations

import asyncio
import gc
import os
import time
import weakref

import pytest

from rancher_tunnel.constants import Limits
from rancher_tunnel.errors import DialRefused, SessionClosed
from rancher_tunnel.messages import Health, Message
from rancher_tunnel.stream import IncomingStream

from .conftest import aiohttp_sessions, socketpair_sessions, tcp_server

pytestmark = pytest.mark.timeout(30)


async def test_open_connection_echo_both_ways(echo_server: tuple[str, int]) -> None:
    async with socketpair_sessions() as p:
        reader, writer = await p.server.open_connection(*echo_server)
        for size in (1, 1000, 300_000):
            payload = os.urandom(size)
            writer.write(payload)
            await writer.drain()
            assert await reader.readexactly(size) == payload
        writer.close()
        await writer.wait_closed()
        assert p.server.stats.bytes_out >= 301_001
        assert p.agent.stats.bytes_in == p.server.stats.bytes_out


async def test_refused_by_handler_with_reason() -> None:
    async def refuse_all(incoming: IncomingStream) -> None:
        await incoming.refuse(f"target {incoming.target} not allowed")

    async with socketpair_sessions(on_stream=refuse_all) as p:
        with pytest.raises(DialRefused, match=r"target tcp://10\.9\.9\.9:22 not allowed"):
            await p.server.open_connection("10.9.9.9", 22)
        # the session is unharmed
        with pytest.raises(DialRefused):
            await p.server.open_stream("tcp://x:1")
        assert not p.server.closed and p.server.stats.open_streams == 0


async def test_connect_failure_refuses_with_reason() -> None:
    with socket_closed_port() as port:
        async with socketpair_sessions() as p:
            with pytest.raises(DialRefused, match=r"connect to 127\.0\.0\.1:\d+ failed"):
                await p.server.open_connection("127.0.0.1", port)
            assert not p.server.closed


class socket_closed_port:
    """A loopback port with nothing listening."""

    def __enter__(self) -> int:
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port: int = s.getsockname()[1]
        s.close()
        return self.port

    def __exit__(self, *exc: object) -> None:
        return None


async def test_half_close_each_direction() -> None:
    async def upper_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client half-closes
        writer.write(data.upper())
        await writer.drain()
        writer.write_eof()  # then the server half-closes its side
        assert await reader.read() == b""

    async with tcp_server(upper_after_eof) as addr, socketpair_sessions() as p:
        reader, writer = await p.server.open_connection(*addr)
        writer.write(b"hello ")
        writer.write(b"tunnel")
        writer.write_eof()
        assert await reader.read() == b"HELLO TUNNEL"  # EOF arrives after the data
        writer.close()
        await writer.wait_closed()
    # and the other direction: the agent side ends first, we keep writing
    got_eof = asyncio.Event()

    async def early_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"banner")
        writer.write_eof()
        data = await reader.read()
        writer.transport.abort() if data != b"after" else got_eof.set()

    async with tcp_server(early_eof) as addr, socketpair_sessions() as p:
        reader, writer = await p.server.open_connection(*addr)
        assert await reader.read() == b"banner"
        writer.write(b"after")
        writer.write_eof()
        async with asyncio.timeout(5):
            await got_eof.wait()
        writer.close()
        await writer.wait_closed()


async def test_reset_from_either_side() -> None:
    target_lost = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"x")
        try:
            await reader.read()
        finally:
            target_lost.set()

    async with tcp_server(hold) as addr, socketpair_sessions() as p:
        stream = await p.server.open_stream(f"tcp://{addr[0]}:{addr[1]}")
        assert await stream.readexactly(1) == b"x"
        stream.reset("client gave up")
        async with asyncio.timeout(5):
            await target_lost.wait()  # the agent aborted its TCP connection
        await asyncio.sleep(0.05)
        assert p.agent.stats.open_streams == 0 and p.server.stats.open_streams == 0

    async def abort_soon(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"y")
        await writer.drain()
        writer.transport.abort()  # RST: the agent resets the stream

    async with tcp_server(abort_soon) as addr, socketpair_sessions() as p:
        reader, writer = await p.server.open_connection(*addr)
        with pytest.raises(ConnectionError):
            async with asyncio.timeout(5):
                while await reader.read(100):
                    pass
                raise ConnectionResetError("clean EOF: treated like a reset here")
        writer.close()
        await asyncio.sleep(0.05)
        assert p.server.stats.open_streams == 0


async def test_many_concurrent_streams(echo_server: tuple[str, int]) -> None:
    async def one(i: int) -> None:
        reader, writer = await p.server.open_connection(*echo_server)
        payload = os.urandom(1000 + 997 * i)
        writer.write(payload)
        writer.write_eof()
        assert await reader.read() == payload
        writer.close()
        await writer.wait_closed()

    async with socketpair_sessions() as p:
        await asyncio.gather(*(one(i) for i in range(100)))
        assert p.server.stats.streams_opened == 100


async def test_stalled_stream_does_not_block_others_or_pings(
    echo_server: tuple[str, int],
) -> None:
    async def firehose(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chunk = b"f" * 65536
        while True:
            writer.write(chunk)
            await writer.drain()

    limits = Limits(ping_interval_s=0.05, pong_timeout_s=2.0)
    async with tcp_server(firehose) as addr, socketpair_sessions(limits=limits) as p:
        stalled_reader, stalled_writer = await p.server.open_connection(*addr)
        await stalled_reader.readexactly(1)  # then never read again
        await asyncio.sleep(0.3)  # let the stalled stream fill its window
        conn = p.server.connection
        (stalled_id,) = conn.stream_ids
        assert conn.stream_buffered(stalled_id) <= limits.stream_window_bytes
        reader, writer = await p.server.open_connection(*echo_server)
        worst = 0.0
        for _ in range(50):
            t0 = time.perf_counter()
            writer.write(b"ping")
            await writer.drain()
            assert await reader.readexactly(4) == b"ping"
            worst = max(worst, time.perf_counter() - t0)
        assert worst < 0.5, f"a small echo took {worst:.3f} s next to a stalled stream"
        rtt_before = p.server.rtt_s
        await asyncio.sleep(0.2)
        assert p.server.rtt_s is not None and rtt_before is not None
        assert conn.stream_buffered(stalled_id) <= limits.stream_window_bytes
        assert conn.buffered_bytes <= limits.max_session_buffer_bytes
        # the agent's side of the stalled stream is bounded too (credit exhausted)
        assert p.agent.connection.send_credit(stalled_id) < limits.stream_window_bytes
        for w in (writer, stalled_writer):
            w.close()
            await w.wait_closed()


async def test_messages_reach_the_handler_in_order() -> None:
    got: list[Message] = []
    done = asyncio.Event()

    async def on_message(msg: Message) -> None:
        got.append(msg)
        if len(got) == 20:
            done.set()

    async with socketpair_sessions(on_message=on_message) as p:
        for i in range(20):
            await p.agent.send_message(Health(healthy=i % 2 == 0, detail=str(i)))
        async with asyncio.timeout(5):
            await done.wait()
    assert [m.detail for m in got] == [str(i) for i in range(20)]  # type: ignore[attr-defined]


async def test_agent_can_open_streams_to_the_server(echo_server: tuple[str, int]) -> None:
    async def server_side(incoming: IncomingStream) -> None:
        stream = await incoming.accept()
        data = await stream.read()
        await stream.write(data[::-1])
        stream.write_eof()
        await stream.aclose()

    async with socketpair_sessions(server_on_stream=server_side) as p:
        stream = await p.agent.open_stream("internal://reverse")
        assert stream.stream_id % 2 == 1
        await stream.write(b"abc")
        stream.write_eof()
        assert await stream.read() == b"cba"
        await stream.aclose()


async def test_close_ends_both_sides_and_later_calls_fail() -> None:
    async with socketpair_sessions() as p:
        await p.server.close(reason="server shutting down")
        async with asyncio.timeout(5):
            await p.agent.wait_closed()
        assert p.agent.close_reason == "server shutting down"
        with pytest.raises(SessionClosed):
            await p.server.open_stream("tcp://x:1")
        with pytest.raises(SessionClosed):
            await p.agent.send_message(Health(healthy=True))


async def test_pending_streams_fail_when_the_session_ends() -> None:
    entered = asyncio.Event()

    async def never_answer(incoming: IncomingStream) -> None:
        entered.set()
        await asyncio.sleep(3600)

    async with socketpair_sessions(on_stream=never_answer) as p:
        opening = asyncio.create_task(p.server.open_stream("tcp://x:1"))
        await entered.wait()
        await p.agent.close()
        with pytest.raises((SessionClosed, DialRefused)):
            async with asyncio.timeout(5):
                await opening


async def test_closed_stream_lingers_then_resets_if_peer_never_ends() -> None:
    target_lost = asyncio.Event()

    async def never_ends(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # gets our EOF, never closes its side, keeps talking
            while True:
                writer.write(b".")
                await writer.drain()
                await asyncio.sleep(0.02)
        finally:
            target_lost.set()

    limits = Limits(stream_linger_s=0.3)
    async with tcp_server(never_ends) as addr, socketpair_sessions(limits=limits) as p:
        _reader, writer = await p.server.open_connection(*addr)
        writer.close()  # our side done; connection_lost follows at once
        await writer.wait_closed()
        await asyncio.sleep(0.05)
        assert p.server.stats.open_streams == 1  # lingering for the peer's END
        async with asyncio.timeout(5):
            while p.server.stats.open_streams or p.agent.stats.open_streams:
                await asyncio.sleep(0.05)
        async with asyncio.timeout(5):
            await target_lost.wait()  # the reset reached the agent, which dropped the target


async def test_cancelling_run_tears_down_streams(echo_server: tuple[str, int]) -> None:
    async with socketpair_sessions() as p:
        reader, writer = await p.server.open_connection(*echo_server)
        server_task = p.tasks[0]
        server_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server_task
        assert p.server.closed
        with pytest.raises(SessionClosed):
            await reader.read()  # the stream learnt the session is gone
        async with asyncio.timeout(5):
            await p.agent.wait_closed()  # the peer saw the websocket go
        writer.close()
        p.tasks.remove(server_task)


async def test_stalled_small_frames_do_not_pin_large_messages(
    echo_server: tuple[str, int],
) -> None:
    """A paused reader of a chatty stream (kubectl logs -f) next to bulk traffic: its queued
    frames must not keep the big websocket messages they arrived in alive."""

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(b"log line " * 10 + b"\n")
            await writer.drain()
            await asyncio.sleep(0.001)

    async with tcp_server(chatty) as addr, socketpair_sessions() as p:
        stream = await p.server.open_stream(f"tcp://{addr[0]}:{addr[1]}")
        transport = stream.transport  # never read: no protocol, reading stays paused
        reader, writer = await p.server.open_connection(*echo_server)
        payload = os.urandom(4_000_000)
        writer.write(payload)
        await writer.drain()
        assert await reader.readexactly(len(payload)) == payload
        await asyncio.sleep(0.2)
        queued = list(transport._in)
        assert len(queued) > 10
        held = sum(
            memoryview(x.obj).nbytes if isinstance(x, memoryview) else len(x) for x in queued
        )
        assert held <= 4 * sum(len(x) for x in queued)
        writer.close()
        await writer.wait_closed()
        stream.reset()


async def test_close_callbacks_run_once_when_the_session_ends() -> None:
    """A close callback runs after the session ended (a peer's close included), once; one added
    after the end runs too; a failing one does not stop the others."""
    calls: list[str] = []

    def failing() -> None:
        calls.append("failing")
        raise RuntimeError("boom")

    async with socketpair_sessions() as p:
        p.server.add_close_callback(failing)
        p.server.add_close_callback(lambda: calls.append("server"))
        p.agent.add_close_callback(lambda: calls.append("agent"))
        await asyncio.sleep(0.05)
        assert calls == []
        await p.agent.close()
        await asyncio.wait_for(p.server.wait_closed(), 5)
        assert sorted(calls) == ["agent", "failing", "server"]
        p.server.add_close_callback(lambda: calls.append("late"))
        await asyncio.sleep(0)
        assert calls.count("late") == 1 and calls.count("server") == 1


@pytest.mark.parametrize("over", ["socketpair", "aiohttp"])
async def test_a_closed_session_is_freed_by_reference_counting(over: str) -> None:
    """Once a session has ended nothing of it waits for the cyclic garbage collector: with
    10,000 sessions a full collection stops the server's loop for about a second, and closed
    sessions kept in reference cycles (TaskGroup's exception group holds the frame that holds
    it) made that pass come sooner and freed them only then."""
    limits = Limits(ping_interval_s=0.05, pong_timeout_s=1.0, close_timeout_s=0.5)
    gc.collect()
    gc.disable()
    try:
        sessions = socketpair_sessions if over == "socketpair" else aiohttp_sessions
        async with sessions(limits=limits) as pair:
            refs = [weakref.ref(pair.server), weakref.ref(pair.agent)]
            await asyncio.sleep(0.2)  # pings and pongs both ways
            assert not pair.server.closed
        del pair
        for _ in range(100):  # the loop's callbacks of the closed connections run
            if all(r() is None for r in refs):
                break
            await asyncio.sleep(0.02)
        alive = [s for r in refs if (s := r()) is not None]
        assert not alive, [type(r).__name__ for s in alive for r in gc.get_referrers(s)]
    finally:
        gc.enable()
