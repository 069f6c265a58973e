"""Many simulated cluster agents in one process that report a picture: each runs the real agent
connection loop (``AgentConnection``) and the real picture code (``AgentPicture`` fed as the
informers feed it, one ``PictureSender`` per session), for a cluster of ``--nodes`` nodes.

    python -m bench.sim_picture_agents --server URL --ca CA.pem --tokens tokens.json --nodes 10

Each agent refreshes its health every ``HEALTH_INTERVAL_S`` (as the real agent's 15 s poll does).
Commands on stdin, one per line, each answered by one JSON line on stdout:

- ``burst N``: every agent adds N new events to its picture (its sender sends them in rounds);
- ``stale N``: every agent sends N event messages of no generation straight on its session (the
  server decodes and drops them: the baseline of the message path without the picture);
- ``synced``: how many agents have their snapshot acknowledged;
- ``no-picture`` as an argument (``--no-picture``): plain tunnels, no picture (a baseline).

Each agent keeps ``--events-kept`` events (the oldest go, as a real cluster's events expire), so
the server's memory reaches a steady state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import sys
import time
from typing import Any

from cluster_agent.config import AgentConfig
from cluster_agent.connection import AgentConnection
from cluster_agent.credential import AgentCredential, MemoryCredentialStore
from cluster_agent.picture import AgentPicture
from cluster_agent.sender import PictureSender
from rancher_tunnel import logs
from rancher_tunnel.errors import SessionClosed
from rancher_tunnel.messages import Event, Message
from rancher_tunnel.session import Session
from rancher_tunnel.stream import IncomingStream

HEALTH_INTERVAL_S = 15.0
DEFAULT_EVENTS_KEPT = 200
STALE_GENERATION = -1  # no generation the server ever opens


async def refuse_all(incoming: IncomingStream) -> None:
    await incoming.refuse("simulated agent: no targets")


def node(i: int) -> dict[str, Any]:
    cond = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}
    return {"name": f"node-{i}", "labels": {"kubernetes.io/hostname": f"node-{i}"},
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "15Gi", "pods": "110"},
            "conditions": [cond], "kubelet_version": "v1.32.0",
            "container_runtime_version": "containerd://1.7.0", "os_image": "Linux",
            "kernel_version": "6.1.0", "operating_system": "linux", "architecture": "amd64",
            "addresses": [{"type": "InternalIP", "address": f"10.0.0.{i + 1}"}],
            "taints": [], "unschedulable": False}


def event(name: str, i: int) -> dict[str, Any]:
    ts = "2026-01-01T00:00:00Z"
    return {"namespace": "default", "name": name, "uid": name, "type": "Normal",
            "reason": "Bench", "message": f"event {i}",
            "object": {"kind": "Pod", "name": f"p{i % 50}", "namespace": "default"},
            "count": 1, "first_seen": ts, "last_seen": ts, "source": "bench"}


def health() -> dict[str, Any]:
    return {"healthy": True, "detail": "ok", "agent_version": "sim", "heartbeat_at": time.time()}


class SimCluster:
    def __init__(self, nodes: int, events_kept: int) -> None:
        self.picture = AgentPicture(events_kept)
        for i in range(nodes):
            self.picture.on_node(f"node-{i}", None, node(i))
        self.picture.set_health(health())
        self.sender: PictureSender | None = None
        self.session: Session | None = None
        self.bursts = 0

    async def on_message(self, msg: Message) -> None:
        if self.sender is not None:
            await self.sender.on_message(msg)

    async def on_session(self, session: Session) -> None:
        sender = PictureSender(self.picture, session, "sim")
        self.sender, self.session = sender, session
        try:
            await sender.run()
        finally:
            self.sender = self.session = None

    def synced(self) -> bool:
        return self.sender is not None and self.sender.rounds_sent > 0 and \
            not self.picture.dirty

    def burst(self, n: int) -> None:
        b = self.bursts
        self.bursts += 1
        for i in range(n):
            name = f"burst{b}.{i:06d}"
            self.picture.on_event(f"default/{name}", None, event(name, i))

    async def stale(self, n: int) -> None:
        session = self.session
        if session is None:
            return
        with_gen = event("stale", 0)
        try:
            for _ in range(n):
                await session.send_message(Event(**with_gen, generation=STALE_GENERATION))
        except SessionClosed:
            return


async def health_loop(clusters: list[SimCluster]) -> None:
    while True:
        await asyncio.sleep(HEALTH_INTERVAL_S)
        for c in clusters:
            c.picture.set_health(health())


async def commands(clusters: list[SimCluster]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        cmd, _, arg = line.partition(" ")
        if cmd == "burst":
            for c in clusters:
                c.burst(int(arg))
            out: dict[str, Any] = {"burst": int(arg)}
        elif cmd == "stale":
            await asyncio.gather(*(c.stale(int(arg)) for c in clusters))
            out = {"stale": int(arg)}
        elif cmd == "synced":
            out = {"synced": sum(c.synced() for c in clusters)}
        else:
            out = {"error": f"unknown command {cmd!r}"}
        print(json.dumps(out), flush=True)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--nodes", type=int, default=10)
    p.add_argument("--events-kept", type=int, default=DEFAULT_EVENTS_KEPT)
    p.add_argument("--no-picture", action="store_true")
    args = p.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.tokens) as f:
        tokens = json.load(f)
    ctx = ssl.create_default_context(cafile=args.ca)
    clusters = [SimCluster(args.nodes, args.events_kept) for _ in tokens]
    conns = []
    for i, (token, c) in enumerate(zip(tokens, clusters, strict=True)):
        cfg = AgentConfig(server=args.server, token=token)
        picture = not args.no_picture
        conns.append(AgentConnection(
            cfg, {"role": "cluster", "cluster": {}}, refuse_all, ctx, name=f"sim-{i}",
            on_session=c.on_session if picture else None,
            on_message=c.on_message if picture else None,
            credential=AgentCredential(MemoryCredentialStore())))  # presented on reconnects
    tasks = [asyncio.create_task(c.run(), name=f"sim-{i}") for i, c in enumerate(conns)]
    tasks.append(asyncio.create_task(health_loop(clusters), name="health"))
    print(json.dumps({"ready": True, "agents": len(conns)}), flush=True)
    await commands(clusters)
    for conn in conns:
        await conn.stop()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    logs.configure("sim-picture-agents")
    import uvloop

    uvloop.install()
    asyncio.run(main())
