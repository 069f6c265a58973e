"""Benchmark of the live cluster picture: how soon a node's condition change in the cluster shows
on the server's feed, and how many events per second go end to end from the cluster to the feed.

Method
------
The stand-in (``--nodes`` nodes), the server and a real cluster agent (``cluster-agent import``)
run as processes on loopback; the benchmark follows the server's SSE feed
(``/v3/clusters/<id>/feed``) and, as the baseline measured in the same run, a watch straight on
the stand-in (the same change as the stand-in's own watchers see it).

1. ``picture_lag``: ``--toggles`` times, one node is made NotReady then Ready through the
   stand-in's admin endpoint; for each change, the time from the admin call to the node's
   ``ready`` flipping on the feed. ``picture_lag_p99_ms`` is the p99 (``_p50_``, too); the
   baseline ``direct_watch_lag_p99_ms`` is the same time to a node watch on the stand-in.
2. ``events``: ``--events`` Events are created in the stand-in, 16 writers at a time;
   ``events_per_s`` is the number of events divided by the time from the first write to the last
   event seen on the feed; the baseline ``direct_events_per_s`` is the same to a direct watch of
   events on the stand-in.

3. the fleet (``bench/picture_fleet.py``): ``events_per_s`` from 100 simulated clusters into
   one server (baseline ``stale_messages_per_s``; ``server_rss_mib_before``/``_after``),
   ``server_cpu_pct_idle_1000_nodes`` (baseline ``server_cpu_pct_idle_100_tunnels``) and
   ``agent_rss_mib_5000_pods`` (baseline ``agent_rss_mib_empty``). There ``events_per_s`` is the
   server's rate from 100 clusters; the single cluster's end-to-end rate (stand-in -> agent ->
   server -> feed) is ``events_per_s_one_cluster``.

The last line printed is one JSON object. ``--quick`` (10 toggles, 1,000 events, 5 s idle
windows, 100 events per cluster per burst) finishes in under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.picture_fleet import measure_fleet
from cluster_agent.kubeconfig import load as load_kubeconfig
from tests.e2e.picture_stack import PictureStack

WRITERS = 16
TIMEOUT_S = 60.0
NODE = "node-0"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def p(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


class Follower:
    """Reads a stream of JSON lines (watch) or SSE and calls ``on_item`` with each object."""

    def __init__(self, http: aiohttp.ClientSession, url: str, sse: bool, **kw: Any) -> None:
        self.http, self.url, self.sse, self.kw = http, url, sse, kw
        self.items: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self.http.get(self.url, timeout=timeout, **self.kw) as resp:
            resp.raise_for_status()
            event = ""
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if not self.sse:
                    if line:
                        self.items.put_nowait((time.perf_counter(), json.loads(line)))
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "change":
                    self.items.put_nowait((time.perf_counter(), json.loads(line[6:])))

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def node_ready_from_watch(ev: dict[str, Any]) -> bool | None:
    obj = ev.get("object") or {}
    if (obj.get("metadata") or {}).get("name") != NODE:
        return None
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def node_ready_from_feed(item: dict[str, Any]) -> bool | None:
    if item.get("kind") != "node" or item.get("key") != NODE or item.get("data") is None:
        return None
    return bool(item["data"]["ready"])


async def wait_for(f: Follower, pred: Any, deadline: float) -> float:
    while True:
        t, item = await asyncio.wait_for(f.items.get(), max(0.01, deadline - time.monotonic()))
        if pred(item):
            return t


async def measure(stack: PictureStack, toggles: int, events: int) -> dict[str, Any]:
    assert stack.sim is not None and stack.server is not None and stack.admin is not None
    target = load_kubeconfig(str(stack.sim.kubeconfig))
    kube = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=target.ssl),
                                 headers=target.headers)
    server_ssl = ssl.create_default_context(cafile=str(stack.server.ca_path))
    rest = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=server_ssl),
                                 headers={"Authorization": f"Bearer {stack.admin.token}"})
    feed = Follower(rest, f"{stack.server.url}/v3/clusters/{stack.cluster_id}/feed", sse=True)
    nodes = Follower(kube, f"{target.server}/api/v1/nodes?watch=true&resourceVersion=0", False)
    try:
        feed.start()
        nodes.start()
        await asyncio.sleep(1.0)
        lag: list[float] = []
        direct: list[float] = []
        for i in range(2 * toggles):
            ready = i % 2 == 1
            while not feed.items.empty():
                feed.items.get_nowait()
            while not nodes.items.empty():
                nodes.items.get_nowait()
            deadline = time.monotonic() + TIMEOUT_S
            t0 = time.perf_counter()
            async with kube.post(f"{target.server}/_kubesim/nodes/{NODE}/"
                                 f"{'ready' if ready else 'notready'}") as resp:
                resp.raise_for_status()
            t_direct = await wait_for(nodes, lambda e, r=ready: node_ready_from_watch(e) is r,
                                      deadline)
            t_feed = await wait_for(feed, lambda x, r=ready: node_ready_from_feed(x) is r,
                                    deadline)
            direct.append((t_direct - t0) * 1000)
            lag.append((t_feed - t0) * 1000)
        await nodes.stop()
        evs = Follower(kube, f"{target.server}/api/v1/events?watch=true&resourceVersion=0",
                       False)
        evs.start()
        await asyncio.sleep(0.5)
        while not feed.items.empty():
            feed.items.get_nowait()
        run_id = str(int(time.time()))
        names = asyncio.Queue[int]()
        for i in range(events):
            names.put_nowait(i)
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        async def writer() -> None:
            while not names.empty():
                i = names.get_nowait()
                body = {"apiVersion": "v1", "kind": "Event",
                        "metadata": {"name": f"bench-{run_id}.{i:06d}", "namespace": "default"},
                        "involvedObject": {"kind": "Pod", "name": "bench", "namespace": "default"},
                        "reason": "Bench", "message": f"event {i}", "type": "Normal",
                        "count": 1, "firstTimestamp": ts, "lastTimestamp": ts}
                async with kube.post(f"{target.server}/api/v1/namespaces/default/events",
                                     json=body) as resp:
                    resp.raise_for_status()

        prefix = f"default/bench-{run_id}."
        t0 = time.perf_counter()
        writers = [asyncio.create_task(writer()) for _ in range(WRITERS)]

        async def count(f: Follower, key: Any) -> float:
            seen: set[str] = set()
            deadline = time.monotonic() + TIMEOUT_S * 2
            t = t0
            while len(seen) < events:
                t, item = await asyncio.wait_for(f.items.get(),
                                                 max(0.01, deadline - time.monotonic()))
                k = key(item)
                if k is not None and k.startswith(prefix):
                    seen.add(k)
            return t

        def watch_key(e: dict[str, Any]) -> str | None:
            md = (e.get("object") or {}).get("metadata") or {}
            return f"{md.get('namespace')}/{md.get('name')}" if e.get("type") == "ADDED" else None

        def feed_key(x: dict[str, Any]) -> str | None:
            return str(x["key"]) if x.get("kind") == "event" and x.get("data") else None

        t_direct, t_feed = await asyncio.gather(count(evs, watch_key), count(feed, feed_key))
        await asyncio.gather(*writers)
        await evs.stop()
        return {
            "picture_lag_p50_ms": round(statistics.median(lag), 1),
            "picture_lag_p99_ms": round(p(lag, 0.99), 1),
            "direct_watch_lag_p50_ms": round(statistics.median(direct), 1),
            "direct_watch_lag_p99_ms": round(p(direct, 0.99), 1),
            "node_changes": len(lag),
            "events": events,
            "events_per_s_one_cluster": round(events / (t_feed - t0)),
            "direct_events_per_s": round(events / (t_direct - t0)),
        }
    finally:
        await feed.stop()
        await kube.close()
        await rest.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--toggles", type=int, default=0)
    ap.add_argument("--events", type=int, default=0)
    ap.add_argument("--no-fleet", action="store_true", help="skip the 100-cluster fleet part")
    args = ap.parse_args()
    toggles = args.toggles or (10 if args.quick else 100)
    events = args.events or (1000 if args.quick else 10_000)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="picture-bench-") as d:
        stack = PictureStack(Path(d), nodes=3)
        try:
            stack.start()
            result = asyncio.run(measure(stack, toggles, events))
        finally:
            stack.stop()
    if not args.no_fleet:
        with tempfile.TemporaryDirectory(prefix="picture-fleet-") as d:
            result.update(measure_fleet(Path(d), idle_s=5.0 if args.quick else 20.0,
                                        burst=100 if args.quick else 500, log=log))
    result.update({"bench": "picture", "quick": args.quick,
                   "took_s": round(time.monotonic() - started, 1)})
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
