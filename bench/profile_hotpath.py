"""Where one small GET's CPU goes (issue 17 item 1): the 16-connection small-GET path through
the tunnel (``tunnel``) or through the authenticating proxy (``proxy``), profiled with py-spy.

    python -m bench.profile_hotpath tunnel|proxy [--seconds 10] [--rounds 1] [--native]
                                     [--out DIR] [--no-profile]

Starts the same processes as ``bench.tunnel_bench`` / ``bench.proxy_bench``, then per round:
one wrk run (16 connections) measuring requests/s and each process's own CPU time
(``/proc/PID/stat``) per request, and (unless ``--no-profile``) a second wrk run of the same
length with ``py-spy record -f raw`` attached to the server and to the agent. The raw samples
are written to ``--out`` and summarised on stderr: own and inclusive share per function, and
own time per source file. The last line is one JSON object (medians over the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import WrkResult, cpu_s, median, start_nginx, wrk
from bench.proxy_bench import ADMIN_PASSWORD, create_configmaps, kubectl_get
from tests.kube import KubeSimProc
from tests.procs import AgentProc, ServerProc, agent_env, free_port, metrics, wait_until

TOP_N = 25
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:)]*)(?::\d+)?\)$")


def log(msg: str) -> None:
    print(f"[profile] {msg}", file=sys.stderr, flush=True)


@dataclass
class Target:
    """A running path to load: its URL, the wrk runner and the processes to profile."""

    url: str
    run: Any  # (connections, seconds) -> WrkResult
    pids: dict[str, int]


# Where a sample's time goes: the innermost frame that matches a rule names its category (a
# sample in a worker thread is the audit writer's, whatever it calls). Samples whose innermost
# Python frame is the loop itself are uvloop's C code: epoll, recv, callbacks' dispatch.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TLS in Python's ssl.SSLObject (tunnel websocket)", ("/ssl.py",)),
    ("websocket write: header, mask, transport.write", ("rancher_tunnel/wsadapter.py",)),
    ("websocket read: frame parse", ("rancher_tunnel/wsreader.py",)),
    ("tunnel framing, stream table, credit windows", (
        "rancher_tunnel/frames.py", "rancher_tunnel/protocol.py", "rancher_tunnel/windows.py",
        "rancher_tunnel/session.py", "rancher_tunnel/stream.py", "rancher_tunnel/messages.py")),
    ("stream transport and splice to the TCP socket", (
        "rancher_tunnel/transport.py", "rancher_tunnel/splice.py")),
    ("auth: token, user, principal, roles (store reads)", (
        "rancher_server/auth/", "kube_api_auth/", "rancher_server/store/",
        "rancher_server/access/")),
    ("impersonation headers and request head", ("rancher_server/proxy/headers.py",)),
    ("proxy: upstream response parse", ("rancher_server/proxy/lean.py",
                                        "rancher_server/proxy/upstream.py")),
    ("proxy handler, other", ("rancher_server/proxy/",)),
    ("HTTP response write to the client (aiohttp writer, uvloop TLS, send)", (
        "aiohttp/http_writer.py",)),
    ("aiohttp server: HTTP parse, routing, middleware, request objects", (
        "aiohttp/", "rancher_server/api/")),
)  # fmt: skip
LOOP = "event loop (uvloop C: epoll, recv, dispatch) and runnable waits"
THREAD = "worker threads (audit writer: SQLite)"


def categorise(frames: list[str]) -> str:
    if any("concurrent/futures/thread.py" in f for f in frames):
        return THREAD
    for frame in reversed(frames):
        for name, marks in CATEGORIES:
            if any(m in frame for m in marks):
                return name
    return LOOP


def _short(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame)
    if m is None:
        return frame, frame
    path = m.group("file")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})", path


def summarise(raw: Path) -> dict[str, Any]:
    """Own and inclusive sample shares per function, own share per file, from py-spy raw output."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    cats: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        cats[categorise(stack.split(";"))] += count
        frames = [_short(f) for f in stack.split(";")]
        total += count
        own[frames[-1][0]] += count
        by_file[frames[-1][1]] += count
        for name in {f[0] for f in frames}:
            incl[name] += count

    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in c.most_common(TOP_N)]

    return {
        "samples": total,
        "categories": pct(cats),
        "own": pct(own),
        "inclusive": pct(incl),
        "own_by_file": pct(by_file),
    }


@contextmanager
def perf(pids: dict[str, int], seconds: int, out: Path) -> Iterator[None]:
    """``perf record`` per process: the CPU split between kernel, libpython, uvloop, OpenSSL."""
    procs = {
        name: subprocess.Popen(
            ["perf", "record", "-q", "-F", "999", "-p", str(pid), "-o",
             str(out / f"{name}.perf.data"), "--", "sleep", str(seconds)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    }  # fmt: skip
    try:
        yield
    finally:
        for p in procs.values():
            p.wait(seconds + 60)


def perf_dsos(data: Path) -> list[tuple[str, float]]:
    """Share of CPU samples per shared object ([kernel.kallsyms] is the kernel)."""
    rep = subprocess.run(
        ["perf", "report", "-i", str(data), "--sort", "dso", "--stdio", "-q"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rows = []
    for line in rep.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith("%"):
            rows.append((parts[1], float(parts[0][:-1])))
    return rows[:TOP_N]


@contextmanager
def pyspy(pids: dict[str, int], seconds: int, out: Path, native: bool) -> Iterator[None]:
    procs = {}
    for name, pid in pids.items():
        cmd = ["py-spy", "record", "-p", str(pid), "-d", str(int(seconds)), "-f", "raw"]
        cmd += ["-r", "250", "-o", str(out / f"{name}.raw")]
        # --native must pause the process to unwind C frames; without it, sample without pausing.
        cmd.append("--native" if native else "--nonblocking")
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        for name, p in procs.items():
            _, err = p.communicate(timeout=seconds + 60)
            if p.returncode != 0:
                log(f"py-spy {name} failed: {err.decode()[-500:]}")


def measure(t: Target, seconds: int) -> dict[str, float]:
    before = {k: cpu_s(p) for k, p in t.pids.items()}
    res: WrkResult = t.run(16, seconds)
    n = res.rps * seconds
    out = {"rps16": res.rps, "p50_ms": res.p50_ms}
    for k, p in t.pids.items():
        out[f"{k}_cpu_us_per_req"] = (cpu_s(p) - before[k]) / n * 1e6
    return out


@contextmanager
def tunnel_target(work: Path) -> Iterator[Target]:
    nginx = start_nginx(free_port(), 1)
    server = ServerProc(work / "data", work / "server.log", port=free_port())
    reg = server.create_cluster("bench")
    fwd = free_port()
    server.extra_args = ["--tcp-forward", f"127.0.0.1:{fwd}={reg['id']}/127.0.0.1:{nginx.port}"]
    server.start()
    agent = AgentProc(
        agent_env(server, reg, CATTLE_K8S_API=f"127.0.0.1:{nginx.port}"), work / "agent.log"
    ).start()
    try:
        wait_until(
            lambda: (
                metrics(server.url + "/metrics", server.ca_path).get(
                    'rancher_tunnel_sessions{role="cluster"}', 0.0
                )
                == 1
            ),
            15,
            what="agent session",
        )
        url = f"http://127.0.0.1:{fwd}/1k"
        assert server.proc is not None and agent.proc is not None
        yield Target(
            url,
            lambda c, s: wrk(url, c, s),
            {"server": server.proc.pid, "agent": agent.proc.pid},
        )
    finally:
        agent.stop()
        server.stop()
        nginx.stop()


@contextmanager
def proxy_target(work: Path) -> Iterator[Target]:
    from tests.rest import Rest

    direct_token = secrets.token_urlsafe(24)
    (work / "tokens.csv").write_text(f'{direct_token},bench-admin,bench-admin,"system:masters"\n')
    sim = KubeSimProc(
        work / "sim",
        ["--authorization-mode", "RBAC", "--nodes", "2", "--token-auth-file",
         str(work / "tokens.csv")],
    ).start()  # fmt: skip
    server = ServerProc(
        work / "data",
        work / "server.log",
        port=free_port(),
        env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD, "LOG_LEVEL": "WARNING"},
    )
    agent: AgentProc | None = None
    try:
        server.start()
        admin = Rest(server.url, server.ca_path)
        admin.token = admin.login("admin", ADMIN_PASSWORD)
        cid = (reg := admin.call("POST", "/v3/clusters", {"name": "bench"}))["id"]
        agent = AgentProc(
            {
                "CATTLE_SERVER": server.url,
                "CATTLE_TOKEN": reg["registrationToken"],
                "CATTLE_CA_CHECKSUM": server.ca_checksum,
                "LOG_LEVEL": "WARNING",
            },
            work / "agent.log",
            args=["import", "--kubeconfig", str(sim.kubeconfig)],
        ).start()
        wait_until(
            lambda: admin.call("GET", f"/v3/clusters/{cid}")["state"] == "active",
            30,
            what="agent connected",
        )
        sim_ca = work / "sim" / "ca.crt"
        if not sim_ca.exists():
            import base64

            import yaml

            doc = yaml.safe_load(sim.kubeconfig.read_text())
            sim_ca.write_bytes(
                base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"])
            )
        asyncio.run(create_configmaps(sim.url, direct_token, "bench", 2, str(sim_ca)))
        url = f"{server.url}/k8s/clusters/{cid}/api/v1/namespaces/bench/configmaps/cm-00001"
        token = admin.token
        assert server.proc is not None and agent.proc is not None and sim.proc is not None
        kubectl_get(url, token, 2, 1)  # warm up: impersonation account, pools
        yield Target(
            url,
            lambda c, s: kubectl_get(url, token, c, s),
            {"server": server.proc.pid, "agent": agent.proc.pid, "kubesim": sim.proc.pid},
        )
    finally:
        if agent is not None:
            agent.stop()
        server.stop()
        sim.stop()


def print_summary(name: str, s: dict[str, Any]) -> None:
    log(f"== {name}: {s['samples']} samples")
    for title in ("categories", "own", "inclusive", "own_by_file"):
        log(f"-- {title} (% of samples)")
        for k, v in s[title]:
            log(f"  {v:5.1f}  {k}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path", choices=("tunnel", "proxy"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    ap.add_argument("--no-profile", action="store_true", help="measure only")
    ap.add_argument("--perf", action="store_true", help="also a perf run: CPU per shared object")
    ap.add_argument("--out", type=Path, default=None, help="where the raw samples go")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix=f"profile-{args.path}-"))
    out = args.out or work / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    target = tunnel_target if args.path == "tunnel" else proxy_target
    runs: list[dict[str, float]] = []
    with target(work) as t:
        t.run(16, 2)  # warm up
        for i in range(args.rounds):
            runs.append(measure(t, args.seconds))
            log(f"round {i + 1}: {json.dumps({k: round(v, 2) for k, v in runs[-1].items()})}")
        if not args.no_profile:
            profiled = {k: v for k, v in t.pids.items() if k != "kubesim"}
            with pyspy(profiled, args.seconds, out, args.native):
                t.run(16, args.seconds)
            for name in profiled:
                raw = out / f"{name}.raw"
                if raw.exists():
                    summary = summarise(raw)
                    (out / f"{name}.summary.json").write_text(json.dumps(summary, indent=1))
                    print_summary(name, summary)
            if args.perf:
                with perf(profiled, args.seconds, out):
                    t.run(16, args.seconds)
                for name in profiled:
                    log(f"== {name}: perf, % of CPU samples per shared object")
                    for dso, share in perf_dsos(out / f"{name}.perf.data"):
                        log(f"  {share:5.1f}  {dso}")
            log(f"raw samples in {out}")
    result: dict[str, Any] = {k: round(median([r[k] for r in runs]), 2) for k in runs[0]}
    result["path"] = args.path
    print(json.dumps(result))


if __name__ == "__main__":
    main()
