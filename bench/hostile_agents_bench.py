"""Hostile agents benchmark (issue 11): the server's memory under agents that flood and never
read, against a baseline of well-behaved agents on the same server in the same run.

    python -m bench.hostile_agents_bench [--quick]

One ``rancher-server`` process. Baseline: 10 agents running the real agent connection loop
(``bench.sim_agents``) for the measured time; then 10 hostile agents (``tests/security/hostile.py``:
tunnel and websocket ping floods, forged pongs, streams opened and reports sent without reading
anything) for the same time. Each phase's figure is the growth of the server's RSS from just
before its agents start to the highest value seen while they run. The last line is one JSON
object: ``hostile_rss_growth_mib`` (target <= 20), ``baseline_rss_growth_mib``, what the hostile
agents sent and how many were cut off for which bound.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import rss_kib
from rancher_server.store import SQLiteStore
from rancher_server.tunnel.agent_auth import hash_token
from tests.procs import ServerProc, free_port, metrics, wait_until
from tests.security.hostile import HostileAgent

AGENTS = 10
HOSTILE_MODES = ("ping", "ping", "ping", "ping", "pong", "pong", "open", "open", "report", "report")
FULL_S = 60.0
QUICK_S = 15.0
SAMPLE_S = 0.25
SETTLE_S = 2.0
CONNECT_WITHIN_S = 30.0
TARGET_MIB = 20.0


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def scrape(server: ServerProc) -> dict[str, float]:
    return metrics(server.url + "/metrics", server.ca_path)


def peak_growth_mib(pid: int, seconds: float, before_kib: int) -> float:
    peak = before_kib
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(SAMPLE_S)
        peak = max(peak, rss_kib(pid))
    return round((peak - before_kib) / 1024, 1)


def new_clusters(work: Path, prefix: str, n: int) -> list[str]:
    store = SQLiteStore(work / "data" / "rancher.db")
    tokens = []
    try:
        for i in range(n):
            tok = f"{prefix}-token-{i}-{os.urandom(8).hex()}"
            store.create_cluster(f"{prefix}-{i}", hash_token(tok))
            tokens.append(tok)
    finally:
        store.close()
    return tokens


def baseline(server: ServerProc, work: Path, seconds: float) -> float:
    """RSS growth with well-behaved agents (the real connection loop, keepalive and all)."""
    assert server.proc is not None
    (work / "tokens.json").write_text(json.dumps(new_clusters(work, "good", AGENTS)))
    time.sleep(SETTLE_S)
    before = rss_kib(server.proc.pid)
    with open(work / "sim.log", "w") as sim_log:
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.sim_agents",
                "--server",
                server.url,
                "--ca",
                str(server.ca_path),
                "--tokens",
                str(work / "tokens.json"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=sim_log,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
        )
        try:
            growth = peak_growth_mib(server.proc.pid, seconds, before)
            connected = scrape(server).get('rancher_tunnel_sessions{role="cluster"}', 0.0)
            if connected < AGENTS:
                raise RuntimeError(f"only {connected:.0f} well-behaved agents connected")
        finally:
            sim.terminate()
            sim.wait(20)
    wait_until(
        lambda: scrape(server).get('rancher_tunnel_sessions{role="cluster"}', 0.0) == 0,
        CONNECT_WITHIN_S,
        what="baseline agents gone",
    )
    return growth


def hostile(server: ServerProc, work: Path, seconds: float) -> dict[str, Any]:
    assert server.proc is not None
    tokens = new_clusters(work, "hostile", AGENTS)
    time.sleep(SETTLE_S)
    before = rss_kib(server.proc.pid)
    agents = [
        HostileAgent(server.port, server.ca_path, tok, mode).start()
        for tok, mode in zip(tokens, HOSTILE_MODES, strict=True)
    ]
    try:
        growth = peak_growth_mib(server.proc.pid, seconds, before)
    finally:
        for agent in agents:
            agent.stop()
    m = scrape(server)
    cut = {
        k.split('"')[1]: int(v)
        for k, v in m.items()
        if k.startswith("rancher_tunnel_bound_disconnects_total{")
    }
    return {
        "hostile_rss_growth_mib": growth,
        "hostile_sent_mib": round(sum(a.sent_bytes for a in agents) / 2**20, 1),
        "hostile_connections": sum(a.connections for a in agents),
        "bound_disconnects": cut,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_S:g} s per phase (< 1 minute)")
    args = ap.parse_args()
    seconds = QUICK_S if args.quick else FULL_S
    work = Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    server = ServerProc(work / "data", work / "server.log", port=free_port())
    server.create_cluster("bench")  # creates the database
    server.start()
    try:
        log(f"baseline: {AGENTS} well-behaved agents for {seconds:g} s")
        base = baseline(server, work, seconds)
        log(f"hostile: {AGENTS} flooding, non-reading agents for {seconds:g} s")
        result: dict[str, Any] = hostile(server, work, seconds)
    finally:
        server.stop()
    result = {
        "hostile_rss_growth_mib": result["hostile_rss_growth_mib"],
        "baseline_rss_growth_mib": base,
        "target_hostile_rss_growth_mib": TARGET_MIB,
        **{k: v for k, v in result.items() if k != "hostile_rss_growth_mib"},
        "agents": AGENTS,
        "seconds": seconds,
        "quick": args.quick,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
