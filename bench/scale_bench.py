"""Scale benchmark (issue 17 item 4): how one server process's memory, keepalive CPU and proxy
latency grow with the agent sessions it holds.

    python -m bench.scale_bench [--quick] [--counts 100,1000,10000] [--plot docs/scale.png]
                                [--profile DIR] [--replot RESULT.json]

Processes: kubesim (RBAC on, a static admin token for the direct path), one ``rancher-server``
(its own process, SQLite store), one real ``cluster-agent`` imported from kubesim (the cluster
whose GETs are timed), and simulator processes holding the other sessions: ``bench.sim_agents``
(the real agent connection loop: registration, credential, keepalive pings every 5 s both ways,
real websockets over TLS), at most ``SIM_MAX_PER_PROCESS`` sessions per process. The simulated
clusters are written straight into the server's store (as ``bench.tunnel_bench`` does), as many
as there are sessions.

Per session count (cumulative: sessions are added, never dropped; 100, 1,000, 10,000 or with
``--quick`` 100, 1,000, 2,000), and once before any simulated session (``baseline``):

- ``rss_mib``: the server's VmRSS (/proc) after every session is connected and 2-3 s of quiet;
  ``rss_kib_per_session``: (rss - baseline) / sessions.
- ``keepalive_cpu_pct``: the server's user+system CPU (/proc/<pid>/stat) over a quiet window
  (15 s; 10 s with ``--quick``) with every session held and nothing else asked of it, in percent
  of one core. It is all the server does when idle (pings, pongs, timers, its supervision
  loops), so ``keepalive_cpu_pct_above_idle`` subtracts the baseline's.
- ``proxy_p50_ms`` / ``proxy_p99_ms``: wrk on one connection (kubectl's headers) for
  ``GET /k8s/clusters/<id>/api/v1/namespaces/default`` through the server's proxy, the tunnel
  and the real agent to kubesim, right after the quiet window and 1 s of untimed warm-up GETs
  (the pooled connection to the cluster has gone idle during the ramp), in rounds (5 of 2 s;
  ``--quick`` 3 of 1 s): the medians of the rounds' p50 and p99 (each round's p99 is kept
  beside), so that a burst of other work on a shared machine spoils a round, not the figure.
  ``direct_*``: the same GET straight to kubesim between the rounds (what the machine and
  kubesim give by themselves); ``proxy_cpu_us_per_request``: the server's CPU per proxied GET
  over the rounds, and ``..._above_idle`` with the quiet window's rate taken out
  (``proxy_server_cpu_pct``: the server's CPU during the rounds).
- ``connect_s``: from starting the phase's simulators until the server counts every session.

``streams``: a second, fresh server (same set-up) with 100 simulated sessions whose agents
accept and hold every dial (``--hold-agents``: the same connection loop, a stream handler that
accepts and keeps the stream); the server gets one ``--tcp-forward`` listener per simulated
cluster and the benchmark opens 100 TCP connections to each, so the server holds 100 open
tunnel streams per session (10,000), each spliced to its accepted TCP connection. The same
figures are taken with them held (``kib_per_stream`` includes that local TCP connection). A
fresh server, because memory freed by closed streams would stay in the process and blur the
session counts' RSS.

``--profile DIR``: after the largest count's figures, 10 s of py-spy on the server while it is
idle, then 10 s during proxied GETs (summaries on stderr and in DIR). ``--plot`` draws the
figures against the session count (matplotlib, imported only then); the full run writes
``docs/scale.png`` unless told otherwise; ``--replot`` draws from a saved result line without
running anything.

The last line printed is one JSON object: ``rss_mib_<N>_sessions``, ``keepalive_cpu_pct_<N>``,
``proxy_p99_ms_at_<N>`` for the largest count N (``sessions_max``; 10,000 in the full run),
``per_count``, ``baseline``, ``streams``, ``machine`` (cores, load before), ``targets``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import resource
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.common import WrkResult, cpu_s, machine, median, rss_kib
from bench.proxy_bench import ADMIN_PASSWORD, kubectl_get
from bench.tunnel_bench import sessions as session_count
from rancher_server.store import SQLiteStore
from rancher_server.tunnel.agent_auth import hash_token
from rancher_tunnel.process import install_uvloop
from tests.kube import KubeSimProc
from tests.procs import AgentProc, ServerProc, free_port, metrics, wait_until
from tests.rest import Rest

COUNTS_FULL = (100, 1_000, 10_000)
COUNTS_QUICK = (100, 1_000, 2_000)
SIM_MAX_PER_PROCESS = 4_500  # sessions one simulator process holds at most
STREAM_SESSIONS = 100
STREAMS_PER_SESSION = 100
PROFILE_S = 10
WARMUP_S = 1  # seconds of untimed proxied GETs before the rounds (wrk -d: whole seconds)
FD_SLACK = 10  # the server's other sockets come and go (kubesim, the agent's streams)
GET_PATH = "/api/v1/namespaces/default"
MIB = 1024
TARGETS = {"rss_mib_10000_sessions": 1024, "keepalive_cpu_pct_10000": 20.0,
           "proxy_p99_ms_at_10000": 5.0}
DOCS_PLOT = Path(__file__).resolve().parent.parent / "docs" / "scale.png"


@dataclass(frozen=True)
class Plan:
    """How long each phase measures."""

    settle_s: float  # after the last session connected, before RSS and the quiet window
    quiet_s: float  # the keepalive CPU window
    rounds: int  # wrk rounds of proxied GETs; p50 / p99 are the medians of the rounds'
    proxy_s: int  # seconds of each (whole seconds: wrk -d)
    direct_rounds: int  # of those rounds, how many also time the direct GET (1 s)


FULL = Plan(settle_s=3.0, quiet_s=15.0, rounds=5, proxy_s=2, direct_rounds=5)
QUICK = Plan(settle_s=2.0, quiet_s=10.0, rounds=3, proxy_s=1, direct_rounds=1)


def log(msg: str) -> None:
    print(f"[scale] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- simulators
async def hold_agents(server: str, ca: str, tokens_path: str) -> None:
    """``bench.sim_agents``' connection loop, but every dial is accepted and held open (the
    stream is kept, nothing is read or written): the server's streams stay open."""
    from cluster_agent.config import AgentConfig
    from cluster_agent.connection import AgentConnection
    from cluster_agent.credential import AgentCredential, MemoryCredentialStore
    from rancher_tunnel.stream import IncomingStream, TunnelStream

    held: list[TunnelStream] = []

    async def hold(incoming: IncomingStream) -> None:
        held.append(await incoming.accept())

    tokens = json.loads(Path(tokens_path).read_text())
    ctx = ssl.create_default_context(cafile=ca)
    conns = [AgentConnection(AgentConfig(server=server, token=t), {"role": "cluster",
                                                                     "cluster": {}},
                             hold, ctx, name=f"hold-{i}",
                             credential=AgentCredential(MemoryCredentialStore()))
             for i, t in enumerate(tokens)]
    print(json.dumps({"ready": True, "agents": len(conns)}), flush=True)
    await asyncio.gather(*(c.run() for c in conns))


@dataclass
class Sim:
    """One simulator process holding ``len(tokens)`` sessions."""

    proc: subprocess.Popen[str]
    sessions: int
    log_file: IO[str]

    @classmethod
    def start(cls, server: ServerProc, tokens: list[str], work: Path, tag: str,
              hold: bool = False) -> Sim:
        path = work / f"{tag}.tokens.json"
        path.write_text(json.dumps(tokens))
        args = ["--server", server.url, "--ca", str(server.ca_path)]
        cmd = ([sys.executable, "-m", "bench.scale_bench", "--hold-agents", str(path), *args]
               if hold else
               [sys.executable, "-m", "bench.sim_agents", "--tokens", str(path), *args])
        log_file = (work / f"{tag}.log").open("w")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file, text=True,
                                env={**os.environ, "LOG_LEVEL": "WARNING"})
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())  # its ready line: every connection loop started
        return cls(proc, len(tokens), log_file)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(20)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log_file.close()


# --------------------------------------------------------------------------- the deployment
def distinct_ports(n: int, taken: int) -> list[int]:
    """``n`` free loopback ports, distinct from each other and from ``taken`` (free_port() one
    at a time may hand the same port out twice)."""
    socks: list[socket.socket] = []
    try:
        while len(socks) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            if s.getsockname()[1] == taken:
                s.close()
                continue
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Env:
    """kubesim, one server, one real agent imported from kubesim; simulators added later."""

    work: Path
    hold_clusters: int = 0  # simulated clusters with a --tcp-forward listener each (streams)
    server_env: dict[str, str] = field(default_factory=dict)  # e.g. PYTHONTRACEMALLOC
    kube: KubeSimProc | None = None
    server: ServerProc | None = None
    agent: AgentProc | None = None
    sims: list[Sim] = field(default_factory=list)
    store: SQLiteStore | None = None
    admin_token: str = ""
    direct_token: str = ""
    proxy_url: str = ""
    direct_url: str = ""
    held_tokens: list[str] = field(default_factory=list)
    forward_ports: list[int] = field(default_factory=list)
    simulated: int = 0
    base_fds: int = 0

    def __enter__(self) -> Env:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.direct_token = secrets.token_urlsafe(24)
        (self.work / "tokens.csv").write_text(
            f'{self.direct_token},bench-admin,bench-admin,"system:masters"\n')
        self.kube = KubeSimProc(self.work / "kubesim", [
            "--authorization-mode", "RBAC", "--nodes", "2",
            "--token-auth-file", str(self.work / "tokens.csv")]).start()
        server = self.server = ServerProc(
            self.work / "data", self.work / "server.log", port=free_port(),
            env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD, "LOG_LEVEL": "WARNING",
                 **self.server_env})
        reg = server.create_cluster("real")  # also initialises the data directory
        self.store = SQLiteStore(server.data_dir / "rancher.db")
        # The benchmark's own writes (its simulated clusters) need not wait for a disk flush
        # each: per connection, the server's stay synchronous=FULL.
        self.store._db.execute("PRAGMA synchronous=NORMAL")
        if self.hold_clusters:
            ports = distinct_ports(self.hold_clusters, server.port)
            for port, (cid, token) in zip(ports, self._new_clusters(self.hold_clusters, "hold"),
                                          strict=True):
                self.forward_ports.append(port)
                self.held_tokens.append(token)
                server.extra_args += ["--tcp-forward", f"127.0.0.1:{port}={cid}/held.invalid:1"]
        server.start()
        admin = Rest(server.url, server.ca_path)
        admin.token = self.admin_token = admin.login("admin", ADMIN_PASSWORD)
        self.agent = AgentProc(
            {"CATTLE_SERVER": server.url, "CATTLE_TOKEN": reg["registrationToken"],
             "CATTLE_CA_CHECKSUM": server.ca_checksum, "LOG_LEVEL": "WARNING"},
            self.work / "agent.log", args=["import", "--kubeconfig", str(self.kube.kubeconfig)],
        ).start()
        wait_until(lambda: admin.call("GET", f"/v3/clusters/{reg['id']}")["state"] == "active",
                   60, 0.2, what="the real agent active")
        self.proxy_url = f"{server.url}/k8s/clusters/{reg['id']}{GET_PATH}"
        self.direct_url = self.kube.url + GET_PATH
        kubectl_get(self.proxy_url, self.admin_token, 2, 1)  # warm: impersonation, pools
        kubectl_get(self.direct_url, self.direct_token, 2, 1)
        self.base_fds = self.fds() - 1  # the real agent's session is counted in ``want``

    def _new_clusters(self, n: int, tag: str) -> list[tuple[str, str]]:
        assert self.store is not None
        out = []
        for _ in range(n):
            token = f"sim-{secrets.token_hex(16)}"
            cluster = self.store.create_cluster(f"{tag}-{secrets.token_hex(6)}", hash_token(token))
            out.append((cluster.id, token))
        return out

    @property
    def pid(self) -> int:
        assert self.server is not None and self.server.proc is not None
        return self.server.proc.pid

    def sessions(self) -> int:
        """Cluster sessions the server counts (the real agent's too); -1 when its /metrics did
        not answer in time (a server busy with a storm of TLS handshakes)."""
        assert self.server is not None
        try:
            return int(session_count(self.server))
        except OSError as e:
            log(f"  /metrics did not answer: {e}")
            return -1

    def add_sessions(self, n: int, hold: bool = False) -> float:
        """``n`` more simulated sessions, in processes of at most ``SIM_MAX_PER_PROCESS``, each
        started once the previous one's sessions are all counted; the seconds from each start
        until its sessions were counted, summed."""
        assert self.server is not None
        took = 0.0
        left = n
        while left:
            chunk = min(left, SIM_MAX_PER_PROCESS)
            if hold:
                tokens = self.held_tokens[:chunk]
            else:
                tokens = [t for _, t in self._new_clusters(chunk, "sim")]
            t1 = time.monotonic()
            self.sims.append(Sim.start(self.server, tokens, self.work, f"sim{len(self.sims)}",
                                       hold))
            self.simulated += chunk
            # 4,500 took 221 s on top of 5,500 on 2 shared cores: generous
            self.wait_sessions(self.simulated + 1, 120 + chunk / 10)  # and the real agent
            took += time.monotonic() - t1
            log(f"  +{chunk} sessions ({self.simulated} simulated) in "
                f"{time.monotonic() - t1:.1f} s")
            left -= chunk
        return took

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def wait_sessions(self, want: int, timeout_s: float) -> None:
        """Until the server counts ``want`` cluster sessions. Its open sockets (/proc: nothing
        asked of the server) are watched first, so that /metrics, which itself costs the server a
        TLS handshake and a scrape, is asked only once they are about all there."""
        deadline = time.monotonic() + timeout_s
        while self.fds() < self.base_fds + want - FD_SLACK and time.monotonic() < deadline:
            time.sleep(0.25)
        while (have := self.sessions()) < want:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{have - 1} of {want - 1} simulated sessions connected "
                                   f"after {timeout_s:.0f} s")
            time.sleep(0.5)

    def sim_pids(self) -> list[int]:
        return [s.proc.pid for s in self.sims if s.proc.poll() is None]

    def stop(self) -> None:
        for sim in self.sims:
            sim.stop()
        if self.agent is not None:
            self.agent.stop()
        if self.server is not None:
            self.server.stop()
        if self.kube is not None:
            self.kube.stop()
        if self.store is not None:
            self.store.close()


# --------------------------------------------------------------------------- measuring
def kernel_drops() -> tuple[int, int]:
    """(TCP retransmission timeouts, packets the kernel's input backlog dropped) so far, machine
    wide: on loopback a dropped packet costs its connection a 200 ms retransmission timeout, which
    wrk's latency correction turns into a round's p99 however fast the server was."""
    timeouts = 0
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        if head.startswith("TcpExt:"):
            timeouts = int(dict(zip(head.split()[1:], values.split()[1:],
                                    strict=True)).get("TCPTimeouts", 0))
    drops = sum(int(line.split()[1], 16)
                for line in Path("/proc/net/softnet_stat").read_text().splitlines())
    return timeouts, drops


def quiet_cpu(env: Env, seconds: float) -> dict[str, float]:
    """Percent of one core each side used over ``seconds`` of nothing asked of the server."""
    sims = env.sim_pids()
    t0 = time.monotonic()
    server0 = cpu_s(env.pid)
    sims0 = sum(cpu_s(p) for p in sims)
    time.sleep(seconds)
    server1 = cpu_s(env.pid)
    sims1 = sum(cpu_s(p) for p in sims)
    dt = time.monotonic() - t0
    return {"server": 100 * (server1 - server0) / dt, "sims": 100 * (sims1 - sims0) / dt}


def measure(env: Env, plan: Plan, base: dict[str, Any] | None,
            sessions: int) -> dict[str, Any]:
    time.sleep(plan.settle_s)
    rss = rss_kib(env.pid)
    cpu = quiet_cpu(env, plan.quiet_s)
    # Rounds, so that a burst of other work on the shared machine spoils one round's p99, not
    # the figure; the direct GETs in between show what the machine gives by itself.
    proxy: list[WrkResult] = []
    direct: list[WrkResult] = []
    proxy_cpu = proxy_wall = 0.0
    timeouts: list[int] = []
    drops: list[int] = []
    # Warm-up, not timed: the server's pooled connection to the cluster (through the tunnel, the
    # agent and its TLS to the API server) closes after 30 s idle, and the ramp to this count
    # took longer; its first GET redials, a one-off 50-110 ms that was every run's first round.
    kubectl_get(env.proxy_url, env.admin_token, 1, WARMUP_S)
    for i in range(plan.rounds):
        k0 = kernel_drops()
        before, t0 = cpu_s(env.pid), time.monotonic()
        t_round = time.time()
        proxy.append(kubectl_get(env.proxy_url, env.admin_token, 1, plan.proxy_s))
        log(f"round {i + 1} at {t_round:.3f}: p99 {proxy[-1].p99_ms:.2f} ms")
        proxy_cpu += cpu_s(env.pid) - before
        proxy_wall += time.monotonic() - t0
        k1 = kernel_drops()
        timeouts.append(k1[0] - k0[0])
        drops.append(k1[1] - k0[1])
        if i < plan.direct_rounds:
            direct.append(kubectl_get(env.direct_url, env.direct_token, 1, 1))
    proxied = max(1.0, sum(r.rps for r in proxy) * plan.proxy_s)
    # the server's idle work (the quiet window's rate) goes on during the rounds
    above_idle = proxy_cpu - cpu["server"] / 100 * proxy_wall
    out: dict[str, Any] = {
        "sessions": sessions,
        "rss_mib": round(rss / MIB, 1),
        "rss_kib": rss,
        "keepalive_cpu_pct": round(cpu["server"], 2),
        "proxy_p50_ms": round(median([r.p50_ms for r in proxy]), 3),
        "proxy_p99_ms": round(median([r.p99_ms for r in proxy]), 3),
        "proxy_p99_ms_rounds": [round(r.p99_ms, 2) for r in proxy],
        "tcp_timeouts_rounds": timeouts,
        "backlog_drops_rounds": drops,
        "proxy_requests": round(proxied),
        "proxy_server_cpu_pct": round(100 * proxy_cpu / proxy_wall, 1),
        "proxy_cpu_us_per_request": round(proxy_cpu * 1e6 / proxied, 1),
        "proxy_cpu_us_per_request_above_idle": round(above_idle * 1e6 / proxied, 1),
        "direct_p50_ms": round(median([r.p50_ms for r in direct]), 3),
        "direct_p99_ms": round(median([r.p99_ms for r in direct]), 3),
        "server_fds": env.fds(),
        "sims_cpu_pct": round(cpu["sims"], 1),
        "sims_rss_mib": round(sum(rss_kib(p) for p in env.sim_pids()) / MIB, 1),
        "sim_processes": len(env.sim_pids()),
        "load_1m": round(os.getloadavg()[0], 2),
    }
    if base is not None and sessions:
        out["rss_kib_per_session"] = round((rss - base["rss_kib"]) / sessions, 1)
        out["keepalive_cpu_pct_above_idle"] = round(cpu["server"] - base["keepalive_cpu_pct"], 2)
    log("  " + json.dumps(out))
    return out


def profile(env: Env, out: Path, under_load: bool) -> dict[str, Any]:
    """py-spy on the server holding every session, idle (where its keepalive CPU goes) or
    during proxied GETs on one connection."""
    from bench.profile_hotpath import pyspy, summarise

    out.mkdir(parents=True, exist_ok=True)
    name = "proxy" if under_load else "idle"
    with pyspy({name: env.pid}, PROFILE_S, out, native=False):
        if under_load:
            kubectl_get(env.proxy_url, env.admin_token, 1, PROFILE_S)
        else:
            time.sleep(PROFILE_S)
    summary = summarise(out / f"{name}.raw")
    (out / f"{name}.summary.json").write_text(json.dumps(summary, indent=1))
    for title in ("categories", "own", "inclusive", "own_by_file"):
        log(f"-- profile {name}: {title} (% of samples)")
        for k, v in summary[title][:20]:
            log(f"  {v:5.1f}  {k}")
    return {"samples": summary["samples"], "inclusive_top": summary["inclusive"][:12],
            "own_by_file_top": summary["own_by_file"][:8]}


def streams_phase(work: Path, plan: Plan) -> dict[str, Any]:
    """A fresh server; 100 sessions whose agents hold every dial; 100 streams on each."""
    n_streams = STREAM_SESSIONS * STREAMS_PER_SESSION
    with Env(work, hold_clusters=STREAM_SESSIONS) as env:
        server = env.server
        assert server is not None
        log(f"streams: {STREAM_SESSIONS} holding sessions")
        env.add_sessions(STREAM_SESSIONS, hold=True)
        time.sleep(plan.settle_s)
        rss0 = rss_kib(env.pid)

        def open_streams() -> int:
            return int(metrics(server.url + "/metrics", server.ca_path).get(
                "rancher_tunnel_streams", 0.0))

        streams0 = open_streams()
        t0 = time.monotonic()
        clients: list[socket.socket] = []
        try:
            for _ in range(STREAMS_PER_SESSION):
                for port in env.forward_ports:
                    clients.append(socket.create_connection(("127.0.0.1", port)))
            wait_until(lambda: open_streams() >= streams0 + n_streams, 120, 0.5,
                       what=f"{n_streams} streams")
            open_s = time.monotonic() - t0
            log(f"  {n_streams} streams open in {open_s:.1f} s")
            m = measure(env, plan, None, STREAM_SESSIONS)
            m.update(streams=n_streams, streams_per_session=STREAMS_PER_SESSION,
                     open_s=round(open_s, 1), rss_mib_before_streams=round(rss0 / MIB, 1),
                     kib_per_stream=round((m["rss_kib"] - rss0) / n_streams, 2),
                     streams_still_open=open_streams() - streams0)
        finally:
            for c in clients:
                c.close()
    return m


def run(args: argparse.Namespace) -> dict[str, Any]:
    counts = sorted(args.counts)
    plan = QUICK if args.quick else FULL
    result: dict[str, Any] = {"bench": "scale", "quick": args.quick, "machine": machine(),
                              "counts": counts, "plan": dataclasses.asdict(plan)}
    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    started = time.monotonic()
    per_count: list[dict[str, Any]] = []
    with Env(work / "main") as env:
        log("baseline: no simulated session")
        base = measure(env, plan, None, 0)
        result["baseline"] = base
        for n in counts:
            log(f"{n} sessions")
            try:
                connect_s = env.add_sessions(n - env.simulated)
            except TimeoutError as e:  # the largest count this machine holds is reported
                held = env.sessions() - 1
                log(f"  stopped at {held} sessions: {e}")
                result["stopped"] = {"wanted": n, "held": held, "why": str(e)}
                if held > (per_count[-1]["sessions"] if per_count else 0):
                    per_count.append(measure(env, plan, base, held))
                break
            m = measure(env, plan, base, n)
            m["connect_s"] = round(connect_s, 1)
            per_count.append(m)
        if args.profile is not None and per_count:
            log(f"profile: {PROFILE_S} s of py-spy on the idle server, then under proxied GETs")
            result["profile_idle"] = profile(env, args.profile, under_load=False)
            result["profile_proxy"] = profile(env, args.profile, under_load=True)
    result["per_count"] = per_count
    if not args.no_streams:
        result["streams"] = streams_phase(work / "streams", plan)
    if per_count:
        top = per_count[-1]
        n = top["sessions"]
        result["sessions_max"] = n
        result[f"rss_mib_{n}_sessions"] = top["rss_mib"]
        result[f"keepalive_cpu_pct_{n}"] = top["keepalive_cpu_pct"]
        result[f"proxy_p99_ms_at_{n}"] = top["proxy_p99_ms"]
        result[f"proxy_p50_ms_at_{n}"] = top["proxy_p50_ms"]
    result["targets"] = TARGETS
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    return result


# --------------------------------------------------------------------------- the plot
def plot(result: dict[str, Any], path: Path) -> None:
    """Each figure against the session count (log scale); targets dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["per_count"]
    base = result["baseline"]
    streams = result.get("streams")
    xs = [r["sessions"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels: list[tuple[str, list[tuple[str, str]], float, str]] = [
        ("server RSS (MiB)", [("rss_mib", "RSS")], 1024, "rss_mib"),
        ("server CPU while idle (% of one core)", [("keepalive_cpu_pct", "keepalive CPU")], 20,
         "keepalive_cpu_pct"),
        ("proxied GET latency (ms)", [("proxy_p50_ms", "proxy p50"), ("proxy_p99_ms", "proxy p99"),
                                      ("direct_p99_ms", "direct to kubesim p99")], 5,
         "proxy_p99_ms"),
    ]
    for ax, (title, series, target, stream_key) in zip(axes, panels, strict=True):
        for key, label in series:
            style = ":" if key.startswith("direct") else "-"
            ax.plot(xs, [r[key] for r in rows], style, marker="o", label=label)
            if key == stream_key:
                for x, r in zip(xs, rows, strict=True):
                    ax.annotate(f"{r[key]:g}", (x, r[key]), textcoords="offset points",
                                xytext=(0, 6), ha="center", fontsize=8)
        ax.axhline(base[stream_key], color="grey", lw=0.8,
                   label=f"no simulated session ({base[stream_key]:g})")
        ax.axhline(target, color="red", ls="--", lw=1, label=f"target {target:g}")
        if streams is not None:
            ax.plot([streams["sessions"]], [streams[stream_key]], marker="*", ms=12, ls="none",
                    color="purple", label=f"{streams['sessions']} sessions x "
                    f"{streams['streams_per_session']} streams ({streams[stream_key]:g})")
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:,}" for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("agent sessions held")
        ax.set_title(title, fontsize=10)
        if stream_key == "proxy_p99_ms":  # p50 and p99 differ by orders of magnitude
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    m = result["machine"]
    fig.suptitle(f"One rancher-server process: {m['cpus']} cores ({m['cpu_model']}), "
                 f"load {m['load_1m_before']} before", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    log(f"plot written to {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100, 1,000, 2,000 sessions (< 2 min)")
    ap.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="session counts, comma-separated")
    ap.add_argument("--no-streams", action="store_true", help="skip the 100 x 100 streams phase")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR",
                    help="py-spy the idle server at the largest count")
    ap.add_argument("--plot", type=Path, default=None, metavar="PNG",
                    help=f"where the plot goes (full run: {DOCS_PLOT})")
    ap.add_argument("--replot", type=Path, default=None, metavar="RESULT",
                    help="only draw the plot from a saved result line")
    ap.add_argument("--hold-agents", metavar="TOKENS", help=argparse.SUPPRESS)
    ap.add_argument("--server", help=argparse.SUPPRESS)
    ap.add_argument("--ca", help=argparse.SUPPRESS)
    args = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10,000 sockets; children inherit
    if args.hold_agents:
        from rancher_tunnel import logs

        logs.configure("hold-agents")
        install_uvloop()  # as bench.sim_agents runs
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(hold_agents(args.server, args.ca, args.hold_agents))
        return
    if args.replot is not None:
        line = args.replot.read_text().strip().splitlines()[-1]
        plot(json.loads(line), args.plot or DOCS_PLOT)
        return
    args.counts = args.counts or list(COUNTS_QUICK if args.quick else COUNTS_FULL)
    result = run(args)
    out = args.plot or (None if args.quick else DOCS_PLOT)
    if out is not None and result["per_count"]:
        plot(result, out)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
