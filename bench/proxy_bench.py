"""Authentication-proxy benchmark (issue 4): kubectl-style GETs through the server's proxy, the
tunnel and the agent, against the same GETs sent straight to the Kubernetes stand-in, in one run.

    python -m bench.proxy_bench [--quick]

Processes: kubesim (RBAC on, a static admin token for the direct path), rancher-server, a real
cluster agent imported from kubesim's kubeconfig, wrk (load) and curl (big list). The last line
of output is one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import WrkResult, cpu_s, machine, median, wrk
from tests.kube import KubeSimProc
from tests.procs import AgentProc, ServerProc, free_port, wait_until
from tests.rest import Rest

ADMIN_PASSWORD = "bench-admin-password-1"
BIG_LIST_ITEMS = 5000
CREATE_CONCURRENCY = 32


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def kubectl_get(url: str, token: str, connections: int, seconds: float) -> WrkResult:
    """wrk sending the headers kubectl sends on a GET."""
    return wrk(
        url,
        connections,
        seconds,
        (
            f"Authorization: Bearer {token}",
            "Accept: application/json",
            "User-Agent: kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07",
        ),
    )


async def create_configmaps(base: str, token: str, ns: str, n: int, ca: str) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=ca)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(
            f"{base}/api/v1/namespaces",
            ssl=ctx,
            json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        ) as r:
            assert r.status in (201, 409), await r.text()
        sem = asyncio.Semaphore(CREATE_CONCURRENCY)

        async def one(i: int) -> None:
            async with (
                sem,
                http.post(
                    f"{base}/api/v1/namespaces/{ns}/configmaps",
                    ssl=ctx,
                    json={
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": f"cm-{i:05d}", "labels": {"bench": "yes"}},
                        "data": {"key": "value-" + "x" * 64},
                    },
                ) as r,
            ):
                assert r.status == 201, await r.text()

        await asyncio.gather(*(one(i) for i in range(n)))


def curl_time(url: str, token: str, cacert: str) -> float:
    out = subprocess.run(
        [
            "curl",
            "-s",
            "--cacert",
            cacert,
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            "Accept: application/json",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{time_total}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out[0] == "200", out
    return float(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rounds = 2 if args.quick else 5
    secs = 3 if args.quick else 8
    work = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    direct_token = secrets.token_urlsafe(24)
    (work / "tokens.csv").write_text(f'{direct_token},bench-admin,bench-admin,"system:masters"\n')
    sim = KubeSimProc(
        work / "sim",
        [
            "--authorization-mode",
            "RBAC",
            "--nodes",
            "2",
            "--token-auth-file",
            str(work / "tokens.csv"),
        ],
    ).start()
    server = ServerProc(
        work / "data",
        work / "server.log",
        port=free_port(),
        env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD, "LOG_LEVEL": "WARNING"},
    )
    agent: AgentProc | None = None
    result: dict[str, Any] = {}
    try:
        server.start()
        admin = Rest(server.url, server.ca_path)
        admin.token = admin.login("admin", ADMIN_PASSWORD)
        reg = admin.call("POST", "/v3/clusters", {"name": "bench"})
        cid = reg["id"]
        agent = AgentProc(
            {
                "CATTLE_SERVER": server.url,
                "CATTLE_TOKEN": reg["registrationToken"],
                "CATTLE_CA_CHECKSUM": server.ca_checksum,
                "LOG_LEVEL": "WARNING",
            },
            work / "agent.log",
            args=["import", "--kubeconfig", str(sim.kubeconfig)],
        )
        agent.start()
        wait_until(
            lambda: admin.call("GET", f"/v3/clusters/{cid}")["state"] == "active",
            30,
            what="agent connected",
        )
        sim_ca = str(work / "sim" / "ca.crt")
        if not Path(sim_ca).exists():
            import base64

            import yaml

            doc = yaml.safe_load(sim.kubeconfig.read_text())
            Path(sim_ca).write_bytes(
                base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"])
            )
        log(f"creating {BIG_LIST_ITEMS} configmaps")
        asyncio.run(create_configmaps(sim.url, direct_token, "bench", BIG_LIST_ITEMS, sim_ca))
        direct = f"{sim.url}/api/v1/namespaces/bench/configmaps/cm-00001"
        through = f"{server.url}/k8s/clusters/{cid}/api/v1/namespaces/bench/configmaps/cm-00001"
        kubectl_get(through, admin.token, 2, 1)  # warm up: impersonation account, pools
        kubectl_get(direct, direct_token, 2, 1)
        r: dict[str, list[float]] = {k: [] for k in ("p50", "p99", "rps16", "list",
                                                     "cpu_server_us", "cpu_agent_us")}
        assert server.proc is not None and agent.proc is not None
        pids = (server.proc.pid, agent.proc.pid)
        load_before = machine()
        for i in range(rounds):
            log(f"round {i + 1}/{rounds}")
            d1 = kubectl_get(direct, direct_token, 1, secs)
            t1 = kubectl_get(through, admin.token, 1, secs)
            d16 = kubectl_get(direct, direct_token, 16, secs)
            before = [cpu_s(pid) for pid in pids]
            t16 = kubectl_get(through, admin.token, 16, secs)
            used = [cpu_s(pid) - b for pid, b in zip(pids, before, strict=True)]
            r["cpu_server_us"].append(used[0] / (t16.rps * secs) * 1e6)
            r["cpu_agent_us"].append(used[1] / (t16.rps * secs) * 1e6)
            r["p50"].append(t1.p50_ms - d1.p50_ms)
            r["p99"].append(t1.p99_ms - d1.p99_ms)
            r["rps16"].append(t16.rps / d16.rps)
            dl = curl_time(f"{sim.url}/api/v1/namespaces/bench/configmaps", direct_token, sim_ca)
            tl = curl_time(
                f"{server.url}/k8s/clusters/{cid}/api/v1/namespaces/bench/configmaps",
                admin.token,
                str(server.ca_path),
            )
            r["list"].append(dl / tl)
            log(f"  direct rps16 {d16.rps:.0f}, through {t16.rps:.0f}; list {dl:.3f}s vs {tl:.3f}s")
        result = {
            "machine": load_before,
            "proxy_p50_added_ms": round(median(r["p50"]), 3),
            "proxy_p99_added_ms": round(median(r["p99"]), 3),
            "proxy_rps16_ratio": round(median(r["rps16"]), 3),
            "big_list_ratio": round(median(r["list"]), 3),
            # server plus agent CPU per proxied GET at 16 connections (issue 17)
            "proxy_cpu_us_per_request_c16": round(
                median(r["cpu_server_us"]) + median(r["cpu_agent_us"]), 1),
            "proxy_cpu_us_per_request_c16_server": round(median(r["cpu_server_us"]), 1),
            "proxy_cpu_us_per_request_c16_agent": round(median(r["cpu_agent_us"]), 1),
            "quick": args.quick,
        }
    finally:
        if agent is not None:
            agent.stop()
        server.stop()
        sim.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
