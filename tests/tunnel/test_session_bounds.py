"""Session-level bounds over a socketpair: messages a peer sends faster than the handler takes
them, and our own dials waiting for the peer."""

from __future__ import annotations

import asyncio

import pytest

from rancher_tunnel.constants import MAX_MESSAGE_BYTES, Limits
from rancher_tunnel.errors import DialRefused
from rancher_tunnel.messages import Message, NodeInfo
from tests.tunnel.conftest import socketpair_sessions

pytestmark = pytest.mark.timeout(20)

CUT_OFF_WITHIN_S = 5.0


async def test_messages_faster_than_the_handler_cut_the_peer_off() -> None:
    stuck = asyncio.Event()

    async def slow(_: Message) -> None:
        await stuck.wait()  # the handler never finishes its first message

    limits = Limits(max_pending_message_bytes=MAX_MESSAGE_BYTES)
    async with socketpair_sessions(limits=limits, on_message=slow) as pair:
        big = NodeInfo(name="n", labels={f"l{i}": "v" * 100 for i in range(100)})
        for _ in range(20):
            if pair.agent.closed:
                break
            await pair.agent.send_message(big)
        async with asyncio.timeout(CUT_OFF_WITHIN_S):
            await pair.server.wait_closed()
        assert pair.server.bound_exceeded == "messages"
        stuck.set()


async def test_dials_waiting_for_the_peer_are_bounded() -> None:
    never = asyncio.Event()

    async def no_answer(_: object) -> None:
        await never.wait()  # the agent never accepts nor refuses

    limits = Limits(max_pending_opens=2)
    async with socketpair_sessions(limits=limits, on_stream=no_answer) as pair:
        waiting = [asyncio.create_task(pair.server.open_stream("tcp://x:1")) for _ in range(2)]
        await asyncio.sleep(0.1)
        with pytest.raises(DialRefused, match="too many dials"):
            await pair.server.open_stream("tcp://x:1")
        assert pair.server.stats.dials_over_limit == 1
        for t in waiting:
            t.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        never.set()
