"""Replicas on etcd (issue 14): the cost of a forwarded request, token revocation across
replicas, how agents spread over replicas, and their failover after kill -9 of a replica.

    python -m bench.ha_bench [--quick]

Processes (``tests/ha/cluster.py``'s ``Deployment``): one etcd member, the stand-in (kubesim,
RBAC on), three ``rancher-server`` replicas with ``--store etcd://``, ``--replica-name`` and
``--peer-listen``, HAProxy in TCP mode in front of them (round robin, a shared serving
certificate), one real cluster agent imported from the stand-in through the front, and
``bench.sim_agents`` (the real agent connection loop, many agents in one process, every dial
refused) connected through the front.

- ``forward_*``: small proxied GETs (``/k8s/clusters/<id>/api/v1/namespaces/default``) on one
  keep-alive connection straight to the replica that holds the agent's tunnel (baseline) and on
  one to a replica that forwards them one hop to it, interleaved in rounds; p50 and p99 of each
  path over every request, and the p50 added by the hop (target <= 0.3 ms). Then wrk on one
  connection, interleaved, for each replica's CPU per request on either path
  (``forward_cpu_us_per_request``) and the requests/s ratio; ``--profile DIR`` adds 10 s of
  forwarded GETs under py-spy on both replicas (summaries in DIR, the top on stderr).
- ``revoke_all_replicas_ms``: an API token deleted through one replica (from the DELETE being
  sent) until every other replica answers 401 to it (each polled every 5 ms on its own
  keep-alive connection); median over the trials, the deleting replica taking turns (target
  <= 1,000 ms).
- ``sessions_per_replica``: clusters registered through the REST API, then that many simulated
  agents started through the front; each replica's count of agent sessions in the etcd
  directory once all are connected, and ``balance`` = max / min (target <= 1.2).
- ``failover_1000_s``: then kill -9 of the replica holding the most of these agents (with
  3,000 agents it holds about 1,000, the issue's case; with ``--quick``'s 1,000, about 334);
  seconds until (1) every agent's session is in the directory under a live replica, (2) every
  one of these clusters is owned by a live replica, and (3) 20 sampled clusters answer
  ``GET /v3/clusters/<id>`` through the front (fresh connections, so round robin over the live
  replicas) as connected, from a live replica (``X-Rancher-Replica``) (target <= 15 s).
  Simulated agents refuse every dial, so the proxy's answer for a cluster is its state, not a
  downstream GET, and that state is ``unavailable`` (connected, API server unreachable) rather
  than ``active``: the check is ``connected: true`` from a live replica. Each condition's own
  time is reported beside.
- ``cpu_s``: CPU seconds (``/proc/<pid>/stat``) of each process class in each phase.

The last line printed is one JSON object. ``--quick`` (about a minute on 2 cores) runs 1,000
agents instead of 3,000 (``agents`` says which) and fewer rounds and trials.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import cpu_s, machine
from bench.profile_hotpath import pyspy, summarise
from bench.proxy_bench import kubectl_get
from rancher_server.ha.directory import DEFAULT_HA_PREFIX
from rancher_server.store.etcd_conn import EtcdConnection
from tests.ha.cluster import Deployment, Replica
from tests.procs import wait_until

REPLICAS = 3
FAILOVER_AGENTS = 1000
BALANCE_AGENTS = 3000
SAMPLED_CLUSTERS = 20
REGISTER_CONCURRENCY = 12
# The etcd store draws a cluster id ("c-" and 5 of 27 letters) once per creation: among
# thousands of clusters a drawn id is sometimes taken, answered 409 "already has a project".
ID_COLLISION_RETRIES = 3
# 3,000 agents connect in about half a minute, but on a loaded machine a replica's directory
# registrations (one etcd transaction each, in order) fall behind its repair loop, which queues
# the pending ones again every 5 s (rancher_server/ha/runtime.py): minutes, not seconds.
CONNECT_WITHIN_S = 400.0
FAILOVER_GIVE_UP_S = 120.0
POLL_S = 0.1
REVOKE_POLL_S = 0.005
# The agent's session is on the answering replica; a simulated agent refuses the controller's
# dials to its API server, so its cluster is "unavailable" (Rancher's word for that), not "active".
AGENT_HERE_STATES = ("active", "unavailable")
GET_PATH = "/k8s/clusters/{cid}/api/v1/namespaces/default"
TARGETS = {"forward_p50_added_ms": 0.3, "failover_1000_s": 15.0,
           "revoke_all_replicas_ms": 1000.0, "balance": 1.2}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * q))]


class CpuMeter:
    """CPU seconds per process class between two marks (processes alive at both)."""

    def __init__(self, classes: dict[str, list[int]]) -> None:
        self.classes = classes
        self._last = self._read()
        self.phases: dict[str, dict[str, float]] = {}

    def _read(self) -> dict[tuple[str, int], float]:
        out = {}
        for cls, pids in self.classes.items():
            for pid in pids:
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    out[(cls, pid)] = cpu_s(pid)
        return out

    def add(self, cls: str, pid: int) -> None:
        """A process started since: counted from now."""
        self.classes[cls].append(pid)
        self._last[(cls, pid)] = cpu_s(pid)

    def mark(self, phase: str) -> None:
        now = self._read()
        spent: dict[str, float] = dict.fromkeys(self.classes, 0.0)
        for key, value in now.items():
            if key in self._last:
                spent[key[0]] += value - self._last[key]
        self.phases[phase] = {cls: round(spent[cls], 2) for cls in self.classes}
        self._last = now


class Directory:
    """The etcd directory read directly: sessions and owners of the simulated clusters."""

    def __init__(self, d: Deployment) -> None:
        self.conn = EtcdConnection([d.etcd.endpoint])

    def _kind(self, kind: str) -> dict[str, bytes]:
        prefix = DEFAULT_HA_PREFIX + kind.encode() + b"/"
        return {bytes(kv.key)[len(prefix):].decode(): bytes(kv.value)
                for kv in self.conn.range_prefix(prefix).kvs}

    def holders(self, cluster_ids: set[str]) -> dict[str, str]:
        """cluster -> replica holding its cluster agent's session."""
        out = {}
        for key, value in self._kind("sessions").items():
            cid, session = key.split("/", 1)
            if cid == session and cid in cluster_ids:
                out[cid] = str(json.loads(value)["replica"])
        return out

    def owners(self, cluster_ids: set[str]) -> dict[str, str]:
        return {cid: v.decode() for cid, v in self._kind("owners").items() if cid in cluster_ids}

    def close(self) -> None:
        self.conn.close()


# -- forwarded GETs ---------------------------------------------------------------------------

async def timed_gets(http: aiohttp.ClientSession, url: str, n: int, want_replica: str,
                     ctx: ssl.SSLContext) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with http.get(url, ssl=ctx) as r:
            await r.read()
            assert r.status == 200, r.status
            assert r.headers.get("X-Rancher-Replica", want_replica) == want_replica
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def forward_latency(d: Deployment, cid: str, holder: Replica, forwarder: Replica,
                          rounds: int, per_round: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {d.token}", "Accept": "application/json"}
    ctx = ssl.create_default_context(cafile=str(holder.ca_path))
    path = GET_PATH.format(cid=cid)
    direct: list[float] = []
    forwarded: list[float] = []
    round_added: list[float] = []
    async with (
        aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=1)) as h1,
        aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=1)) as h2,
    ):
        await timed_gets(h1, holder.url + path, 50, holder.name, ctx)  # warm: pools, peer tunnel
        await timed_gets(h2, forwarder.url + path, 50, holder.name, ctx)
        for i in range(rounds):
            pair = [(h1, holder, direct), (h2, forwarder, forwarded)]
            if i % 2:
                pair.reverse()
            got = {}
            for http, replica, into in pair:
                got[replica.name] = await timed_gets(http, replica.url + path, per_round,
                                                     holder.name, ctx)
                into.extend(got[replica.name])
            round_added.append(pct(got[forwarder.name], 0.5) - pct(got[holder.name], 0.5))
    return {
        "forward_p50_added_ms": round(pct(forwarded, 0.5) - pct(direct, 0.5), 3),
        "forward_p50_ms": round(pct(forwarded, 0.5), 3),
        "local_p50_ms": round(pct(direct, 0.5), 3),
        "forward_p99_ms": round(pct(forwarded, 0.99), 3),
        "local_p99_ms": round(pct(direct, 0.99), 3),
        "forward_p50_added_ms_per_round": [round(x, 3) for x in round_added],
        "forward_requests": len(forwarded),
    }


def forward_cpu(d: Deployment, cid: str, holder: Replica, forwarder: Replica, rounds: int,
                seconds: float) -> dict[str, Any]:
    """CPU per request of each replica on either path, and requests/s on one connection, from
    interleaved wrk runs (enough requests for /proc's 10 ms ticks)."""
    path = GET_PATH.format(cid=cid)
    pids = {name: r.proc.proc.pid for name, r in (("holder", holder), ("forwarder", forwarder))
            if r.proc.proc is not None}
    spent = {kind: dict.fromkeys(pids, 0.0) for kind in ("local", "forwarded")}
    served: Counter[str] = Counter()
    for i in range(rounds):
        order = [("local", holder), ("forwarded", forwarder)]
        for kind, replica in (order if i % 2 == 0 else order[::-1]):
            before = {k: cpu_s(p) for k, p in pids.items()}
            res = kubectl_get(replica.url + path, d.token, 1, seconds)
            served[kind] += round(res.rps * seconds)
            for k, p in pids.items():
                spent[kind][k] += cpu_s(p) - before[k]

    def us(kind: str, who: str) -> float:
        return round(spent[kind][who] * 1e6 / served[kind], 1)

    return {
        "forward_rps1_ratio": round(served["forwarded"] / served["local"], 3),
        "forward_cpu_us_per_request": {
            "local_holder": us("local", "holder"), "forwarded_holder": us("forwarded", "holder"),
            "forwarded_forwarder": us("forwarded", "forwarder"),
            "local_forwarder_idle": us("local", "forwarder")},
    }


def profile_forwarder(d: Deployment, cid: str, holder: Replica, forwarder: Replica,
                      seconds: int, out: Path) -> None:
    """py-spy on both replicas during forwarded GETs; summaries in ``out``, the top on stderr."""
    out.mkdir(parents=True, exist_ok=True)
    pids = {r.name: r.proc.proc.pid for r in (holder, forwarder) if r.proc.proc is not None}
    with pyspy(pids, seconds, out, native=False):
        kubectl_get(forwarder.url + GET_PATH.format(cid=cid), d.token, 1, seconds)
    for name in pids:
        summary = summarise(out / f"{name}.raw")
        (out / f"{name}.summary.json").write_text(json.dumps(summary, indent=1))
        role = "forwarder" if name == forwarder.name else "holder"
        log(f"{role} {name}: {summary['samples']} samples; inclusive "
            + ", ".join(f"{k} {v}%" for k, v in summary["inclusive"][:25]))


# -- revocation -------------------------------------------------------------------------------

async def revoke_trials(d: Deployment, trials: int) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=str(d.replicas[0].ca_path))
    admin = {"Authorization": f"Bearer {d.token}"}
    probe = "/v3/users?me=true"
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
                for _ in d.replicas]
    total_ms: list[float] = []
    delete_ms: list[float] = []
    try:
        async def status(i: int, token: str) -> int:
            async with sessions[i].get(d.replicas[i].url + probe, ssl=ctx,
                                       headers={"Authorization": f"Bearer {token}"}) as r:
                await r.read()
                return r.status

        async def until(i: int, token: str, want: int, t0: float) -> float:
            while await status(i, token) != want:
                if time.monotonic() - t0 > 30:
                    raise SystemExit(f"{d.replicas[i].name} never answered {want}")
                await asyncio.sleep(REVOKE_POLL_S)
            return time.monotonic() - t0

        for trial in range(trials):
            at = trial % len(d.replicas)
            base = d.replicas[at].url
            async with sessions[at].post(base + "/v3/tokens", ssl=ctx, headers=admin,
                                         json={"description": "bench", "ttl": 3600000}) as r:
                assert r.status == 201, await r.text()
                tok = await r.json()
            t0 = time.monotonic()
            await asyncio.gather(*(until(i, tok["token"], 200, t0)
                                   for i in range(len(d.replicas))))
            others = [i for i in range(len(d.replicas)) if i != at]
            t0 = time.monotonic()
            async with sessions[at].delete(f"{base}/v3/tokens/{tok['id']}", ssl=ctx,
                                           headers=admin) as r:
                await r.read()
                assert r.status in (200, 204), r.status
            delete_ms.append((time.monotonic() - t0) * 1000)
            waited = await asyncio.gather(*(until(i, tok["token"], 401, t0) for i in others))
            total_ms.append(max(waited) * 1000)
    finally:
        for s in sessions:
            await s.close()
    return {"revoke_all_replicas_ms": round(pct(total_ms, 0.5), 1),
            "revoke_all_replicas_max_ms": round(max(total_ms), 1),
            "revoke_delete_answer_ms": round(pct(delete_ms, 0.5), 1),
            "revoke_trials": trials}


# -- simulated agents -------------------------------------------------------------------------

async def register_clusters(d: Deployment, n: int) -> tuple[list[dict[str, str]], int]:
    """``n`` clusters created through the REST API, spread over the replicas; and how many
    creations were refused because the random id drawn was taken (409, asked again)."""
    ctx = ssl.create_default_context(cafile=str(d.replicas[0].ca_path))
    headers = {"Authorization": f"Bearer {d.token}"}
    sem = asyncio.Semaphore(REGISTER_CONCURRENCY)
    out: list[dict[str, str]] = []
    collisions = 0
    async with aiohttp.ClientSession(headers=headers) as http:
        async def one(i: int) -> None:
            nonlocal collisions
            url = d.replicas[i % len(d.replicas)].url + "/v3/clusters"
            for _ in range(ID_COLLISION_RETRIES):
                async with sem, http.post(url, ssl=ctx, json={"name": f"sim-{i}"}) as r:
                    if r.status == 201:
                        reg = await r.json()
                        out.append({"id": reg["id"], "token": reg["registrationToken"]})
                        return
                    text = await r.text()
                    if r.status != 409 or "already has a project" not in text:
                        raise SystemExit(f"cluster creation: {r.status} {text}")
                    collisions += 1
            raise SystemExit(f"sim-{i}: {ID_COLLISION_RETRIES} id collisions in a row")

        await asyncio.gather(*(one(i) for i in range(n)))
    return out, collisions


class Sim:
    """``bench.sim_agents`` through the front."""

    def __init__(self, d: Deployment, work: Path, tokens: list[str], tag: str) -> None:
        assert d.front is not None
        (work / f"{tag}.tokens.json").write_text(json.dumps(tokens))
        self.log = (work / f"{tag}.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sim_agents", "--server", d.front.url,
             "--ca", str(d.replicas[0].ca_path), "--tokens", str(work / f"{tag}.tokens.json")],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, "LOG_LEVEL": "WARNING"})
        assert self.proc.stdout is not None
        json.loads(self.proc.stdout.readline())  # ready

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # like a fleet of agents cut off at once; the replicas see it
            self.proc.wait(20)
        self.log.close()


def wait_connected(directory: Directory, ids: set[str], what: str,
                   t0: float) -> tuple[dict[str, str], float]:
    """Every agent's session in the directory; and the seconds since ``t0`` until then."""
    holders: dict[str, str] = wait_until(
        lambda: (h := directory.holders(ids)) and len(h) == len(ids) and h, CONNECT_WITHIN_S,
        0.25, what=what)
    took = time.monotonic() - t0
    log(f"{what}: {len(ids)} in {took:.1f} s")
    return holders, round(took, 1)


def per_replica(holders: dict[str, str], names: list[str]) -> dict[str, Any]:
    counts = Counter(holders.values())
    per = {name: counts.get(name, 0) for name in names}
    low = min(per.values())
    return {"per_replica": per,
            "balance": round(max(per.values()) / low, 3) if low else None}


def sample_answers(d: Deployment, ids: list[str], live: set[str]) -> str:
    """Empty when every sampled cluster answers through the front as connected, from a live
    replica; else what the first other answer was."""
    api = d.front_rest()
    for cid in ids:
        try:
            a = api.raw("GET", f"/v3/clusters/{cid}")
        except OSError as e:
            return f"{cid}: {e}"
        doc = json.loads(a.body) if a.status == 200 else {"state": a.body[:200].decode()}
        state, by = doc.get("state"), a.headers.get("X-Rancher-Replica")
        if a.status != 200 or by not in live or not doc.get("connected") \
                or state not in AGENT_HERE_STATES:
            return f"{cid}: {a.status} from {by}: {state}"
    return ""


def failover(d: Deployment, directory: Directory, ids: set[str], holders: dict[str, str],
             cpu: CpuMeter) -> dict[str, Any]:
    counts = Counter(holders.values())
    victim_name = counts.most_common(1)[0][0]
    victim = next(r for r in d.replicas if r.name == victim_name)
    live = {r.name for r in d.replicas if r is not victim and r.alive}
    sample = random.Random(14).sample(sorted(ids), SAMPLED_CLUSTERS)
    moved = counts[victim_name]
    why = sample_answers(d, sample, {r.name for r in d.replicas})
    if why:
        raise SystemExit(f"the sample does not answer before the kill: {why}")
    log(f"kill -9 {victim_name} holding {moved} of {len(ids)} agents")
    cpu.mark("before_kill")
    t0 = time.monotonic()
    victim.proc.kill9()
    times: dict[str, float] = {}
    last_why = ""
    while True:
        now = time.monotonic() - t0
        if now > FAILOVER_GIVE_UP_S:
            log(f"no failover within {FAILOVER_GIVE_UP_S} s: {times}")
            total = float("nan")
            break
        h = directory.holders(ids)
        on_live = sum(1 for r in h.values() if r in live)
        if on_live == len(ids):
            times.setdefault("sessions_s", now)
        o = directory.owners(ids)
        if len(o) == len(ids) and all(r in live for r in o.values()):
            times.setdefault("owners_s", now)
        if "sample_s" not in times:
            why = sample_answers(d, sample, live)
            if not why:
                times["sample_s"] = time.monotonic() - t0
            elif why != last_why:
                log(f"  {now:.1f} s: {why}")
                last_why = why
        if {"sessions_s", "owners_s", "sample_s"} <= times.keys() and (
                on_live == len(ids) and all(r in live for r in o.values())):
            total = time.monotonic() - t0
            break
        time.sleep(POLL_S)
    cpu.mark("failover")
    after = per_replica(directory.holders(ids), sorted(live))

    def at(key: str) -> float | None:  # None: not within FAILOVER_GIVE_UP_S
        return round(times[key], 2) if key in times else None

    return {
        "failover_1000_s": None if total != total else round(total, 2),
        "failover_sessions_back_s": at("sessions_s"),
        "failover_owners_back_s": at("owners_s"),
        "failover_sample_active_s": at("sample_s"),
        "failover_sessions_on_live_at_end": on_live,
        "failover_give_up_s": FAILOVER_GIVE_UP_S,
        "failover_agents": len(ids), "failover_moved": moved, "failover_killed": victim_name,
        "failover_after": after["per_replica"],
        "failover_check": f"directory sessions and owners on live replicas; {SAMPLED_CLUSTERS} "
                          "sampled clusters connected (state active or unavailable: simulated "
                          "agents refuse dials) in GET /v3/clusters/<id> through the front, "
                          "answered by a live replica",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--agents", type=int, default=0,
                    help=f"agents for the balance ({BALANCE_AGENTS}; --quick: {FAILOVER_AGENTS})")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR",
                    help="py-spy the forwarder and the holder during 10 s of forwarded GETs")
    ap.add_argument("--forward-only", action="store_true",
                    help="only the forwarded GETs (forward_*): to work on the hop")
    args = ap.parse_args()
    n_balance = args.agents or (FAILOVER_AGENTS if args.quick else BALANCE_AGENTS)
    rounds, per_round, trials, wrk_s = (4, 150, 5, 2) if args.quick else (8, 400, 15, 4)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result: dict[str, Any] = {"bench": "ha", "quick": args.quick, "machine": machine()}
    work = Path(tempfile.mkdtemp(prefix="ha-bench-"))
    started = time.monotonic()
    sims: list[Sim] = []
    with Deployment(work, replicas=REPLICAS, front=True) as d:
        assert d.front is not None and d.front.proc is not None and d.etcd.proc is not None
        assert d.sim.proc is not None
        cid = d.import_cluster()
        holder = next(r for r in d.replicas if r.name == d.holder(cid))
        forwarder = next(r for r in d.replicas if r is not holder)
        agent = d.agents[0].proc
        assert agent is not None
        classes = {"replicas": [r.proc.proc.pid for r in d.replicas if r.proc.proc],
                   "etcd": [d.etcd.proc.pid], "haproxy": [d.front.proc.pid],
                   "kubesim": [d.sim.proc.pid], "agent": [agent.pid], "sim_agents": []}
        cpu = CpuMeter(classes)
        log(f"forwarded GETs: {forwarder.name} -> {holder.name}, {rounds} rounds")
        result.update(asyncio.run(forward_latency(d, cid, holder, forwarder, rounds, per_round)))
        result.update(forward_cpu(d, cid, holder, forwarder, rounds // 2, wrk_s))
        cpu.mark("forward")
        if args.profile is not None:
            profile_forwarder(d, cid, holder, forwarder, 10, args.profile)
            cpu.mark("profile")
        if args.forward_only:
            print(json.dumps(result), flush=True)
            return
        log(f"revocation: {trials} trials")
        result.update(asyncio.run(revoke_trials(d, trials)))
        cpu.mark("revoke")
        # The failover's agents are the balance's (a fresh process of simulated agents would
        # need fresh clusters, and the old sessions' removal waits behind the directory's
        # registration queue: minutes at 3,000).
        n_clusters = n_balance
        t0 = time.monotonic()
        regs, result["register_id_collisions"] = asyncio.run(register_clusters(d, n_clusters))
        result["register_per_s"] = round(n_clusters / (time.monotonic() - t0), 1)
        log(f"{n_clusters} clusters registered in {time.monotonic() - t0:.1f} s")
        cpu.mark("register")
        directory = Directory(d)
        try:
            names = [r.name for r in d.replicas]
            ids = {r["id"] for r in regs[:n_balance]}
            t0 = time.monotonic()
            sims.append(Sim(d, work, [r["token"] for r in regs[:n_balance]], "balance"))
            cpu.add("sim_agents", sims[-1].proc.pid)
            holders, result["balance_connect_s"] = wait_connected(
                directory, ids, "balance agents connected", t0)
            cpu.mark("balance_connect")
            spread = per_replica(holders, names)
            result["sessions_per_replica"] = spread["per_replica"]
            result["balance"] = spread["balance"]
            result["agents"] = n_balance
            wait_until(lambda: directory.owners(ids) == directory.holders(ids), CONNECT_WITHIN_S,
                       0.25, what="every cluster owned by its agent's replica")
            holders = directory.holders(ids)
            result.update(failover(d, directory, ids, holders, cpu))
        finally:
            directory.close()
            for sim in sims:
                sim.stop()
    result["cpu_s"] = cpu.phases
    result["targets"] = TARGETS
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
