"""The fleet half of the picture benchmark (``bench/picture_bench.py`` runs it): one server, 100
simulated clusters (``bench.sim_picture_agents``: the real agent connection, picture and sender
code), and one real cluster agent on the stand-in with 5,000 pods. Each figure has its baseline
measured in the same run:

- ``server_cpu_pct_idle_1000_nodes``: the server's CPU (percent of one core, from
  ``/proc/<pid>/stat``) over ``idle_s`` with 100 clusters of 10 nodes connected and synced, in
  steady state (keepalive every 5 s, a health report per cluster every 15 s); baseline
  ``server_cpu_pct_idle_100_tunnels``: 100 plain tunnels of other clusters, no picture.
- ``events_per_s``: event messages applied by the server (its
  ``rancher_cluster_events_received_total``) per second while every simulated cluster adds its
  share of new events, after a warm-up burst that fills each cluster's kept events (the oldest
  then go, one removal per event, as a real cluster's events expire); baseline
  ``stale_messages_per_s``: the same number of event messages that the server decodes and drops
  (no generation): the message path without the picture. ``server_rss_mib_before``,
  ``_per_burst`` and ``_after`` (five measured bursts; ``events_per_s`` is their median) show
  whether the server's memory stays flat.
- ``agent_rss_mib_5000_pods``: the real cluster agent's RSS with 5,000 pods (a Deployment of
  5,000 replicas on a 10-node stand-in) in its informers and picture; baseline
  ``agent_rss_mib_empty``: the same agent before the pods exist.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from bench.common import cpu_s, rss_kib
from rancher_server.store import SQLiteStore
from rancher_server.tunnel.agent_auth import hash_token
from tests.kube import KubeSimProc, kubectl
from tests.procs import AgentProc, ServerProc, free_port, metrics, wait_until

CLUSTERS = 100
NODES = 10
PODS = 5000
STAND_IN_NODES = 10
CONNECT_WITHIN_S = 60.0
BURST_WITHIN_S = 60.0
SETTLE_S = 2.0
BURSTS = 5  # measured bursts; the server's RSS after each shows whether it stays flat
POLL_S = 0.25
MIB_KIB = 1024


def cpu_pct(pid: int, seconds: float) -> float:
    c0, t0 = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return round(100 * (cpu_s(pid) - c0) / (time.monotonic() - t0), 2)


def rss_mib(pid: int) -> float:
    return round(rss_kib(pid) / MIB_KIB, 1)


class Fleet:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.server = ServerProc(work / "data", work / "server.log", port=free_port())
        self.sims: list[subprocess.Popen[str]] = []
        self.logs: list[IO[str]] = []
        self.agent_cluster = ""  # the id of the real agent's cluster

    def create_clusters(self, sizes: dict[str, int] | None = None) -> dict[str, list[str]]:
        """Clusters in the store before the server starts, per group; their tokens, also in
        ``<group>.tokens.json``."""
        (self.work / "data").mkdir(parents=True, exist_ok=True)
        store = SQLiteStore(self.work / "data" / "rancher.db")
        sizes = sizes or {"base": CLUSTERS, "picture": CLUSTERS, "agent": 1}
        groups: dict[str, list[str]] = {group: [] for group in sizes}
        for group, n in sizes.items():
            for i in range(n):
                tok = f"fleet-{group}-{i}-{os.urandom(8).hex()}"
                cluster = store.create_cluster(f"{group}-{i}", hash_token(tok))
                groups[group].append(tok)
                if group == "agent":
                    self.agent_cluster = cluster.id
        store.close()
        for group, toks in groups.items():
            (self.work / f"{group}.tokens.json").write_text(json.dumps(toks))
        return groups

    def scrape(self) -> dict[str, float]:
        return metrics(self.server.url + "/metrics", self.server.ca_path)

    def total(self, name: str, m: dict[str, float] | None = None) -> float:
        m = self.scrape() if m is None else m
        return sum(v for k, v in m.items() if k.startswith(name + "{"))

    def sessions(self) -> float:
        return self.scrape().get('rancher_tunnel_sessions{role="cluster"}', 0.0)

    def start_sims(self, group: str, *args: str) -> subprocess.Popen[str]:
        log = open(self.work / f"sim-{group}.log", "w")  # noqa: SIM115
        self.logs.append(log)
        sim = subprocess.Popen(
            [sys.executable, "-m", "bench.sim_picture_agents", "--server", self.server.url,
             "--ca", str(self.server.ca_path), "--tokens", str(self.work / f"{group}.tokens.json"),
             *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
            env={**os.environ, "LOG_LEVEL": "WARNING"})
        self.sims.append(sim)
        assert sim.stdout is not None
        json.loads(sim.stdout.readline())  # ready
        return sim

    @staticmethod
    def command(sim: subprocess.Popen[str], line: str) -> dict[str, Any]:
        assert sim.stdin is not None and sim.stdout is not None
        sim.stdin.write(line + "\n")
        sim.stdin.flush()
        out: dict[str, Any] = json.loads(sim.stdout.readline())
        return out

    @staticmethod
    def stop_sim(sim: subprocess.Popen[str]) -> None:
        if sim.poll() is None:
            assert sim.stdin is not None
            sim.stdin.close()
            try:
                sim.wait(20)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait()
        if sim.stdout is not None:
            sim.stdout.close()

    def until_total(self, name: str, target: float, within_s: float) -> float:
        """The time at which the sum of ``name`` over clusters reached ``target``."""
        deadline = time.monotonic() + within_s
        while True:
            if self.total(name) >= target:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not reach {target}")
            time.sleep(POLL_S / 5)

    def stop(self) -> None:
        for sim in self.sims:
            self.stop_sim(sim)
        self.server.stop()
        for log in self.logs:
            log.close()


def measure_fleet(work: Path, idle_s: float, burst: int, log: Callable[[str], None]
                  ) -> dict[str, Any]:
    fleet = Fleet(work)
    out: dict[str, Any] = {}
    groups = fleet.create_clusters()
    try:
        fleet.server.start()
        assert fleet.server.proc is not None
        pid = fleet.server.proc.pid

        base = fleet.start_sims("base", "--no-picture")
        wait_until(lambda: fleet.sessions() >= CLUSTERS, CONNECT_WITHIN_S, POLL_S,
                   what="100 plain tunnels")
        time.sleep(SETTLE_S)
        out["server_cpu_pct_idle_100_tunnels"] = cpu_pct(pid, idle_s)
        fleet.stop_sim(base)
        wait_until(lambda: fleet.sessions() == 0, CONNECT_WITHIN_S, POLL_S, what="tunnels gone")

        t0 = time.monotonic()
        sims = fleet.start_sims("picture", "--nodes", str(NODES))
        wait_until(lambda: fleet.total("rancher_cluster_nodes_ready") >= CLUSTERS * NODES,
                   CONNECT_WITHIN_S, POLL_S, what="1,000 nodes ready on the server")
        wait_until(lambda: fleet.command(sims, "synced")["synced"] >= CLUSTERS,
                   CONNECT_WITHIN_S, POLL_S, what="100 pictures synced")
        log(f"100 clusters of 10 nodes synced in {time.monotonic() - t0:.1f} s")
        time.sleep(SETTLE_S)
        out["server_cpu_pct_idle_1000_nodes"] = cpu_pct(pid, idle_s)
        out["server_rss_mib_1000_nodes"] = rss_mib(pid)

        # warm-up: every cluster's kept events fill up (the oldest go from then on)
        kept = 200
        start = fleet.total("rancher_cluster_events_received_total")
        fleet.command(sims, f"burst {kept}")
        fleet.until_total("rancher_cluster_events_received_total", start + CLUSTERS * kept,
                          BURST_WITHIN_S)
        time.sleep(SETTLE_S)
        out["server_rss_mib_before"] = rss_mib(pid)

        n = CLUSTERS * burst
        stale0 = fleet.total("rancher_cluster_picture_dropped_total",
                             {k: v for k, v in fleet.scrape().items() if 'reason="stale"' in k})
        t0 = time.monotonic()
        fleet.command(sims, f"stale {burst}")

        def stale_total() -> float:
            return sum(v for k, v in fleet.scrape().items()
                       if k.startswith("rancher_cluster_picture_dropped_total{")
                       and 'reason="stale"' in k)

        wait_until(lambda: stale_total() >= stale0 + n, BURST_WITHIN_S, POLL_S / 5,
                   what="stale messages dropped")
        out["stale_messages_per_s"] = round(n / (time.monotonic() - t0))

        rates, rss = [], []
        for _ in range(BURSTS):
            start = fleet.total("rancher_cluster_events_received_total")
            t0 = time.monotonic()
            fleet.command(sims, f"burst {burst}")
            t1 = fleet.until_total("rancher_cluster_events_received_total", start + n,
                                   BURST_WITHIN_S)
            rates.append(n / (t1 - t0))
            rss.append(rss_mib(pid))
        time.sleep(SETTLE_S)
        out["events_per_s"] = round(statistics.median(rates))
        out["events_per_s_runs"] = [round(r) for r in rates]
        out["events_per_burst"] = n
        out["server_rss_mib_per_burst"] = rss
        out["server_rss_mib_after"] = rss_mib(pid)
        fleet.stop_sim(sims)

        out.update(measure_agent_rss(work, fleet, groups["agent"][0], log))
    finally:
        fleet.stop()
    return out


def start_agent(work: Path, fleet: Fleet, token: str, kubeconfig: Path, health: str
                ) -> AgentProc:
    return AgentProc(
        {"CATTLE_SERVER": fleet.server.url, "CATTLE_TOKEN": token,
         "CATTLE_HEALTH_LISTEN": health, "CATTLE_CA_CHECKSUM": fleet.server.ca_checksum,
         "CATTLE_CREDENTIAL_FILE": str(work / "agent.credential"), "LOG_LEVEL": "WARNING"},
        work / "agent.log", module="cluster_agent",
        args=["import", "--kubeconfig", str(kubeconfig)]).start()


def agent_rss_when_synced(work: Path, fleet: Fleet, token: str, kubeconfig: Path, pods: int
                          ) -> float:
    """Start the real agent, wait until its informers hold ``pods`` pods and the server shows
    its nodes, let it settle, take its RSS, stop it."""
    health = f"127.0.0.1:{free_port()}"
    agent = start_agent(work, fleet, token, kubeconfig, health)
    try:
        assert agent.proc is not None
        nodes = f'rancher_cluster_nodes{{cluster="{fleet.agent_cluster}"}}'
        pods_held = 'cattle_agent_informer_objects{resource="pods"}'

        def held() -> float:
            try:
                return metrics(f"http://{health}/metrics").get(pods_held, -1)
            except OSError:  # not listening yet
                return -1

        wait_until(lambda: held() >= pods and fleet.scrape().get(nodes, 0) >= STAND_IN_NODES,
                   CONNECT_WITHIN_S,
                   POLL_S, what=f"{pods} pods in the agent and its picture on the server")
        time.sleep(SETTLE_S)
        return rss_mib(agent.proc.pid)
    finally:
        agent.stop()


def measure_agent_rss(work: Path, fleet: Fleet, token: str, log: Callable[[str], None]
                      ) -> dict[str, Any]:
    """The agent on the empty stand-in (baseline), then a fresh agent once the stand-in has
    5,000 pods (it lists them at start, as an agent restarted in a busy cluster does)."""
    sim = KubeSimProc(work / "sim", ["--nodes", str(STAND_IN_NODES)]).start()
    try:
        empty = agent_rss_when_synced(work, fleet, token, sim.kubeconfig, 0)
        manifest = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "big", "namespace": "default"},
            "spec": {"replicas": PODS, "selector": {"matchLabels": {"app": "big"}},
                     "template": {"metadata": {"labels": {"app": "big"}}, "spec": {
                         "containers": [{"name": "c", "image": "nginx", "resources": {
                             "requests": {"cpu": "1m", "memory": "1Mi"}}}]}}},
        }
        t0 = time.monotonic()
        kubectl(sim.kubeconfig, "apply", "-f", "-", input=json.dumps(manifest))
        wait_until(lambda: len(kubectl(sim.kubeconfig, "get", "pods", "-o", "name").stdout
                               .split()) >= PODS, CONNECT_WITHIN_S, 0.5, what="5,000 pods")
        log(f"{PODS} pods in the stand-in after {time.monotonic() - t0:.1f} s")
        full = agent_rss_when_synced(work, fleet, token, sim.kubeconfig, PODS)
        return {"agent_rss_mib_5000_pods": full, "agent_rss_mib_empty": empty}
    finally:
        sim.stop()
