"""What replicas cost in connections and memory (issue 14's simulation of 10,000 clusters on 5
replicas, against a full mesh of peer connections), from figures measured here and the design's
connection counts.

    python -m bench.ha_sim [--quick]

Measured, with the real tunnel code (``rancher_tunnel.session.Session`` over aiohttp websockets on
TLS, loopback):

- ``agent_session_kib``: the resident memory one more idle agent session costs the replica that
  holds it. A child process plays the replica (server-side sessions behind an aiohttp TLS
  websocket endpoint, as ``/v3/connect``); this process dials ``--sessions`` of them; the figure
  is the child's VmRSS after them, minus before, divided by their number.
- ``peer_tunnel_kib``: one more idle tunnel between replicas (the same session object: a peer
  tunnel is a tunnel session; counted once per end).
- ``peer_stream_in_kib`` / ``peer_stream_out_kib``: one forwarded request in flight on a peer
  tunnel, on the replica that answers it (the stream served as one more HTTP connection of an
  aiohttp ``web.Server``, as ``rancher_server.ha.peer.PeerServer`` does) and on the replica that
  forwards it (a pooled connection of aiohttp's client over ``TunnelConnector``, as
  ``PeerPool.http``), with ``--streams`` long requests held open at once.
- ``directory_kib_per_cluster``: ``rancher_server.ha.directory.Directory``'s in-memory mirror
  (every replica keeps the whole deployment's: a session entry and an owner entry per cluster),
  by tracemalloc; and the same for a full mesh's routing map (each replica keeps, per peer, the
  clients that peer announced: Rancher's remotedialer AddClient/RemoveClient) as a dict of
  client keys per peer.

Modelled (``model``): for 10,000 clusters (one cluster agent each) on 3, 5 and 10 replicas,
agents spread evenly: connections each replica holds (agents, peers) and the memory of agent
sessions, peer tunnels and routing state, ours against a full mesh. Ours opens a peer tunnel
only from a replica that forwards to the one holding the cluster (at most R-1 opened and R-1
accepted per replica); a full mesh has every replica dial every other from its start:
R*(R-1) websockets in the deployment, 2*(R-1) per replica, whether anything is forwarded or not.
The process itself (interpreter, server, per-cluster controllers on their owner) is the same in
both designs and left out.

The last line printed is one JSON object. ``--quick`` (under 60 s on 2 cores) dials 300 sessions
and holds 128 forwarded requests; the default 2,000 (one replica's share at 10,000 / 5) and 256
(``PEER_POOL_PER_REPLICA``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import machine, rss_kib
from rancher_server.ha.directory import DEFAULT_HA_PREFIX, Directory
from rancher_server.ha.peer import PEER_POOL_PER_REPLICA
from rancher_tunnel import logs
from rancher_tunnel.connector import TunnelConnector
from rancher_tunnel.constants import WS_MAX_MESSAGE_BYTES
from rancher_tunnel.frames import Role
from rancher_tunnel.process import install_uvloop
from rancher_tunnel.session import Session
from rancher_tunnel.stream import IncomingStream
from tests.tlsutil import self_signed

CLUSTERS = 10_000
REPLICA_COUNTS = (3, 5, 10)
DIAL_CONCURRENCY = 20
SETTLE_S = 1.0
KIB = 1024


def log(msg: str) -> None:
    print(f"[ha_sim] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the child: a replica
async def serve(cert: str, key: str) -> None:
    """Server-side sessions, as a replica holds them; streams served by an aiohttp web.Server."""
    release = asyncio.Event()
    sessions: set[Session] = set()

    async def held(_request: web.BaseRequest) -> web.Response:  # a forwarded long request
        await release.wait()
        return web.Response(text="done")

    http_server = web.Server(held)

    async def on_stream(incoming: IncomingStream) -> None:
        stream = await incoming.accept()
        stream.attach(http_server())

    async def connect(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_MESSAGE_BYTES, compress=False)
        await ws.prepare(request)
        session = Session(ws, Role.SERVER, name="sim", on_stream=on_stream)
        sessions.add(session)
        try:
            await session.run()
        finally:
            sessions.discard(session)
        return ws

    app = web.Application()
    app.router.add_get("/connect", connect)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx, backlog=1024)
    await site.start()
    print(json.dumps({"port": runner.addresses[0][1]}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # the parent closes stdin to stop us
    release.set()
    await runner.cleanup()


# --------------------------------------------------------------------------- the parent: agents
class Agents:
    def __init__(self, port: int, ca: Path) -> None:
        self.url = f"https://127.0.0.1:{port}/connect"
        self.ctx = ssl.create_default_context(cafile=str(ca))
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=self.ctx))
        self.sessions: list[Session] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def dial(self) -> Session:
        ws = await self.http.ws_connect(self.url, max_msg_size=WS_MAX_MESSAGE_BYTES, compress=0)
        session = Session(ws, Role.AGENT, name=f"agent-{len(self.sessions)}")
        self.tasks.append(asyncio.create_task(session.run()))
        await session.wait_ready()
        self.sessions.append(session)
        return session

    async def dial_many(self, n: int) -> None:
        sem = asyncio.Semaphore(DIAL_CONCURRENCY)

        async def one() -> None:
            async with sem:
                await self.dial()

        await asyncio.gather(*(one() for _ in range(n)))

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sessions), return_exceptions=True)
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.http.close()


async def settled_rss(pid: int) -> int:
    await asyncio.sleep(SETTLE_S)
    gc.collect()
    return rss_kib(pid)


async def measure_tunnels(port: int, ca: Path, child: int, n_sessions: int,
                          n_streams: int) -> dict[str, float]:
    me = os.getpid()
    agents = Agents(port, ca)
    try:
        await agents.dial_many(2)  # warm both sides (imports, TLS contexts, first buffers)
        child0 = await settled_rss(child)
        t0 = time.monotonic()
        await agents.dial_many(n_sessions)
        dial_s = time.monotonic() - t0
        child1 = await settled_rss(child)
        log(f"{n_sessions} sessions in {dial_s:.1f} s; replica +{child1 - child0} KiB")

        # One more tunnel carries n_streams forwarded requests held open (a pool at its cap).
        peer = await agents.dial()

        async def current() -> Session:
            return peer

        pool = aiohttp.ClientSession(
            connector=TunnelConnector(current, limit=0, limit_per_host=PEER_POOL_PER_REPLICA),
            timeout=aiohttp.ClientTimeout(total=None))
        parent1, child2 = await settled_rss(me), rss_kib(child)
        requests = [asyncio.create_task(pool.get("http://forwarded.request:1/watch"))
                    for _ in range(n_streams)]
        await asyncio.sleep(SETTLE_S)
        while len(peer._transports) < n_streams:  # every request's stream is open
            await asyncio.sleep(0.1)
        parent2, child3 = await settled_rss(me), rss_kib(child)
        for r in requests:
            r.cancel()
        await asyncio.gather(*requests, return_exceptions=True)
        await pool.close()
        return {
            "sessions": n_sessions,
            "dial_s": round(dial_s, 2),
            "agent_session_kib": round((child1 - child0) / n_sessions, 1),
            "streams": n_streams,
            "peer_stream_in_kib": round((child3 - child2) / n_streams, 1),
            "peer_stream_out_kib": round((parent2 - parent1) / n_streams, 1),
        }
    finally:
        await agents.close()


# --------------------------------------------------------------------------- routing state
def directory_kib_per_cluster(clusters: int, replicas: int) -> float:
    """The HA directory's mirror, as every replica keeps it (sessions and owners)."""
    names = [f"replica-{i}" for i in range(replicas)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    d = Directory(None, names[0])  # type: ignore[arg-type]  # no etcd: entries applied directly
    for i, name in enumerate(names):
        d._apply(DEFAULT_HA_PREFIX + f"replicas/{name}".encode(),
                 json.dumps({"peer_address": f"10.0.0.{i}:8444"}).encode())
    for i in range(clusters):
        cid = f"c-{i:05x}{i:08x}"[:12]
        holder = names[i % replicas]
        d._apply(DEFAULT_HA_PREFIX + f"sessions/{cid}/{cid}".encode(),
                 json.dumps({"replica": holder, "role": "cluster"}).encode())
        d._apply(DEFAULT_HA_PREFIX + f"owners/{cid}".encode(), holder.encode())
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(d.sessions) == clusters and len(d.owners) == clusters
    return used / KIB / clusters


def mesh_map_kib_per_remote_client(clusters: int, replicas: int) -> float:
    """A full mesh's routing map on one replica: per peer, the client keys it announced."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    peers: dict[str, dict[str, bool]] = {f"replica-{p}": {} for p in range(1, replicas)}
    remote = 0
    for i in range(clusters):
        owner = i % replicas
        if owner:
            peers[f"replica-{owner}"][f"c-{i:05x}{i:08x}"[:12]] = True
            remote += 1
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / KIB / remote


# --------------------------------------------------------------------------- the model
def model(m: dict[str, float], clusters: int) -> list[dict[str, Any]]:
    rows = []
    session = m["agent_session_kib"]
    stream_both = m["peer_stream_in_kib"] + m["peer_stream_out_kib"]
    for r in REPLICA_COUNTS:
        agents = clusters / r
        peers_max = 2 * (r - 1)  # ours: R-1 opened + R-1 accepted, at most; the mesh: always
        # Memory of one replica's peer tunnels: idle, or each carrying a full pool of requests
        # (a replica's streams are split between its ends: count each stream once per end).
        tunnels_idle = peers_max * session
        tunnels_busy = tunnels_idle + (r - 1) * PEER_POOL_PER_REPLICA * stream_both
        agents_mib = agents * session / KIB
        ours_dir_mib = clusters * m["directory_kib_per_cluster"] / KIB
        mesh_map_mib = clusters * (r - 1) / r * m["mesh_map_kib_per_remote_client"] / KIB
        rows.append({
            "replicas": r,
            "agent_sessions_per_replica": round(agents),
            "peer_connections_per_replica": {"ours_min": 0, "ours_max": peers_max,
                                             "mesh": peers_max},
            "peer_connections_deployment": {"ours_min": 0, "ours_max": r * (r - 1),
                                            "mesh": r * (r - 1)},
            "agent_sessions_mib": round(agents_mib, 1),
            "peer_tunnels_idle_mib": {"ours_min": 0.0, "ours_max": round(tunnels_idle / KIB, 2),
                                      "mesh": round(tunnels_idle / KIB, 2)},
            "peer_tunnels_busy_mib": round(tunnels_busy / KIB, 1),
            "routing_state_mib": {"ours": round(ours_dir_mib, 1), "mesh": round(mesh_map_mib, 1)},
            "total_mib": {
                "ours_min": round(agents_mib + ours_dir_mib, 1),
                "ours_max_idle": round(agents_mib + tunnels_idle / KIB + ours_dir_mib, 1),
                "mesh_idle": round(agents_mib + tunnels_idle / KIB + mesh_map_mib, 1),
            },
        })
    return rows


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ha-sim-"))
    cert, key = self_signed(work, "ha-sim")
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.ha_sim", "--serve", str(cert), str(key)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(json.loads(child.stdout.readline())["port"])
        m = await measure_tunnels(port, cert, child.pid, args.sessions, args.streams)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
    m["peer_tunnel_kib"] = m["agent_session_kib"]
    m["directory_kib_per_cluster"] = round(directory_kib_per_cluster(CLUSTERS, 5), 3)
    m["mesh_map_kib_per_remote_client"] = round(mesh_map_kib_per_remote_client(CLUSTERS, 5), 3)
    return {"bench": "ha_sim", "quick": args.quick, "clusters": CLUSTERS, "measured": m,
            "model": model(m, CLUSTERS), "machine": machine()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 sessions, 128 streams (< 60 s)")
    ap.add_argument("--sessions", type=int, default=0)
    ap.add_argument("--streams", type=int, default=0)
    ap.add_argument("--serve", nargs=2, metavar=("CERT", "KEY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.environ.setdefault("LOG_LEVEL", "warning")  # a line per session ended is noise here
    logs.configure("ha-sim")
    install_uvloop()  # as the server runs
    if args.serve:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(*args.serve))
        return
    args.sessions = args.sessions or (300 if args.quick else CLUSTERS // 5)
    args.streams = args.streams or (128 if args.quick else PEER_POOL_PER_REPLICA)
    t0 = time.monotonic()
    out = asyncio.run(amain(args))
    out["elapsed_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
