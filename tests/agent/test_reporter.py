"""The picture protocol without I/O between the agent's sender and the server's receiver: a
snapshot then changes, rounds acknowledged, coalescing while the server does not acknowledge, a
lost message answered by a new generation, and a reconnect that ends in exactly the cluster's
state."""

from __future__ import annotations

import asyncio
from typing import Any

from cluster_agent.picture import AgentPicture
from cluster_agent.sender import ROUND_MAX_MESSAGES, PictureSender
from rancher_server.api.resources import cluster_state
from rancher_server.clusters.reports import AgentReport
from rancher_server.clusters.resync import PictureReceiver
from rancher_server.store import Cluster
from rancher_tunnel.messages import Message, NodeInfo, PictureMark, decode, encode


class Wire:
    """The agent's end of a session: what it sends is decoded by the receiver (or held)."""

    def __init__(self, receiver: PictureReceiver, hold: bool = False) -> None:
        self.receiver = receiver
        self.hold = hold
        self.held: list[Message] = []
        self.closed = False
        self.sender: PictureSender | None = None
        self.drop_next_node = False
        self.sent = 0
        self.node_infos: list[str] = []

    async def wait_ready(self) -> None:
        return None

    async def send_message(self, msg: Message) -> None:
        self.sent += 1
        msg = decode(encode(msg))  # through msgpack, as on the wire
        if isinstance(msg, NodeInfo):
            self.node_infos.append(msg.name)
        if self.drop_next_node and isinstance(msg, NodeInfo):
            self.drop_next_node = False
            return
        if self.hold:
            self.held.append(msg)
            return
        self.deliver(msg)

    def deliver(self, msg: Message) -> None:
        out = self.receiver.receive(msg)
        if out.reply is not None and self.sender is not None:
            asyncio.get_running_loop().create_task(self.sender.on_message(out.reply))

    def release(self) -> None:
        held, self.held, self.hold = self.held, [], False
        for msg in held:
            self.deliver(msg)


def node(name: str, ready: str = "True", **extra: Any) -> dict[str, Any]:
    return {"name": name, "conditions": [{"type": "Ready", "status": ready}], **extra}


async def run_sender(picture: AgentPicture, wire: Wire) -> asyncio.Task[None]:
    sender = PictureSender(picture, wire, "test")  # type: ignore[arg-type]
    wire.sender = sender
    return asyncio.create_task(sender.run())


async def settle(pred: Any) -> None:
    async with asyncio.timeout(5):
        while not pred():
            await asyncio.sleep(0.001)


async def test_snapshot_then_changes_and_a_reconnect_converges() -> None:
    p = AgentPicture(max_events=100)
    for i in range(3):
        p.on_node(f"n{i}", None, node(f"n{i}"))
    p.on_event("d/e1", None, {"namespace": "d", "name": "e1", "reason": "R", "message": "m"})
    receiver = PictureReceiver()
    wire = Wire(receiver)
    task = await run_sender(p, wire)
    try:
        await settle(lambda: receiver.synced and set(receiver.live.nodes) == {"n0", "n1", "n2"})
        assert set(receiver.live.events) == {"d/e1"} and receiver.live.stats["nodes"] == 3
        p.on_node("n1", None, node("n1", "Unknown"))
        await settle(lambda: receiver.live.nodes["n1"].conditions[0]["status"] == "Unknown")
    finally:
        task.cancel()
    # Disconnected: the cluster changes meanwhile; a new session resynchronises exactly.
    receiver.disconnected()
    p.on_node("n2", None, None)
    p.on_event("d/e1", None, None)
    p.on_event("d/e2", None, {"namespace": "d", "name": "e2", "reason": "R", "message": "m",
                              "count": 4})
    wire2 = Wire(receiver)
    task = await run_sender(p, wire2)
    try:
        await settle(lambda: receiver.synced and set(receiver.live.nodes) == {"n0", "n1"})
        assert set(receiver.live.events) == {"d/e2"} and receiver.live.events["d/e2"].count == 4
    finally:
        task.cancel()


async def test_unacknowledged_rounds_stop_the_sender_and_changes_coalesce() -> None:
    p = AgentPicture(max_events=100)
    receiver = PictureReceiver()
    wire = Wire(receiver, hold=True)
    task = await run_sender(p, wire)
    try:
        for i in range(3 * ROUND_MAX_MESSAGES):  # enough for more than two rounds
            p.on_node(f"n{i}", None, node(f"n{i}"))
        await asyncio.sleep(0.05)
        marks = [m for m in wire.held if isinstance(m, PictureMark)]
        assert len(marks) == 2  # ROUNDS_IN_FLIGHT, then the sender waits
        for gen in range(50):  # one node changes many times while the server is silent
            p.on_node("n0", None, node("n0", labels={"v": str(gen)}))
        n0_before = wire.node_infos.count("n0")
        wire.release()
        await settle(lambda: not p.dirty and receiver.synced and len(receiver.live.nodes)
                     == 3 * ROUND_MAX_MESSAGES)
        assert receiver.live.nodes["n0"].labels == {"v": "49"}
        assert wire.node_infos.count("n0") - n0_before <= 1  # its latest state, not 50
    finally:
        task.cancel()


async def test_a_lost_message_makes_the_server_ask_for_a_new_generation() -> None:
    p = AgentPicture(max_events=100)
    p.on_node("a", None, node("a"))
    receiver = PictureReceiver()
    wire = Wire(receiver)
    task = await run_sender(p, wire)
    try:
        await settle(lambda: receiver.synced)
        first = p.generation
        wire.drop_next_node = True
        p.on_node("b", None, node("b"))
        await settle(lambda: receiver.resyncs_requested == 1 and p.generation != first
                     and receiver.synced and set(receiver.live.nodes) == {"a", "b"})
    finally:
        task.cancel()


def test_cluster_state_without_a_controller_view() -> None:
    c = Cluster(id="c-x", name="x", created_at=0.0, registered_at=1.0)
    assert cluster_state(c, True, AgentReport(healthy=False)) == "unavailable"
    assert cluster_state(c, False, AgentReport(healthy=False)) == "disconnected"
