"""The node agent earns its place, end to end (the stand-in's simulated cluster, a real server, a
real cluster agent and a real node agent): its host's facts and stats from /proc and /sys show on
its node in the REST picture; with the cluster agent killed, kubectl through the server's proxy
goes on through the node agent within 10 s; the node agent dials nothing but the API server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.picture_stack import PictureStack
from tests.kube import kubectl
from tests.procs import AgentProc, free_port, metrics, wait_until

pytestmark = pytest.mark.simcluster
REPORT_WITHIN_S = 10.0
FALLBACK_WITHIN_S = 10.0
KUBECTL_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PictureStack, AgentProc]]:
    s = PictureStack(tmp_path_factory.mktemp("nodeagent")).start()
    node: AgentProc | None = None
    try:
        assert s.server is not None and s.sim is not None
        node_name = sorted(s.nodes_ready())[0]
        api = s.sim.url.split("://", 1)[1].rstrip("/")
        node = AgentProc(
            {"CATTLE_SERVER": s.server.url, "CATTLE_TOKEN": s._reg["registrationToken"],
             "CATTLE_CA_CHECKSUM": s.server.ca_checksum, "CATTLE_K8S_API": api,
             "CATTLE_NODE_NAME": node_name, "CATTLE_HEALTH_INTERVAL_S": "1",
             "CATTLE_HEALTH_LISTEN": f"127.0.0.1:{free_port()}",
             # wider than the API server: a node agent ignores it
             "CATTLE_ALLOWED_TARGETS": "*:*"},
            s.work / "node-agent.log", module="node_agent").start()
        yield s, node
    finally:
        if node is not None:
            node.stop()
        s.stop()


def _nodes(s: PictureStack) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in s.api(f"/v3/clusters/{s.cluster_id}/nodes")["data"]}


def test_host_facts_and_stats_show_on_the_node(
    stack: tuple[PictureStack, AgentProc],
) -> None:
    s, node = stack
    name = node.env["CATTLE_NODE_NAME"]
    wait_until(lambda: _nodes(s)[name]["host"] is not None, REPORT_WITHIN_S,
               what="the node agent's host report")
    host = _nodes(s)[name]["host"]
    facts, stats = host["facts"], host["stats"]
    assert facts["kernel"] and int(facts["cpus"]) >= 1 and int(facts["memory_bytes"]) > 0
    assert stats["memory_available_bytes"] > 0 and stats["disk_total_bytes"] > 0
    assert stats["uptime_s"] > 0 and "load_1m" in stats
    assert isinstance(host["runtimeSockets"], list)
    others = [n for n in _nodes(s).values() if n["name"] != name]
    assert others and all(n["host"] is None for n in others)  # no node agent there
    first = host["receivedAt"]  # reported periodically: CPU busy appears from the 2nd report
    wait_until(lambda: _nodes(s)[name]["host"]["receivedAt"] > first, REPORT_WITHIN_S,
               what="a second report")
    assert "cpu_busy_percent" in _nodes(s)[name]["host"]["stats"]


def test_kubectl_goes_on_through_the_node_agent_when_the_cluster_agent_dies(
    stack: tuple[PictureStack, AgentProc],
) -> None:
    s, node = stack
    assert s.admin is not None
    name = node.env["CATTLE_NODE_NAME"]
    wait_until(lambda: _nodes(s)[name]["host"] is not None, REPORT_WITHIN_S,
               what="the node agent connected")
    out = s.admin.call("POST", f"/v3/clusters/{s.cluster_id}?action=generateKubeconfig")
    kc: Path = s.work / "admin.kubeconfig"
    kc.write_text(out["config"])
    before = json.loads(kubectl(kc, "get", "nodes", "-o", "json").stdout)
    node_metrics = f"http://{node.env['CATTLE_HEALTH_LISTEN']}/metrics"
    assert metrics(node_metrics)['cattle_agent_dials_total{result="served"}'] == 0
    s.kill_agent()
    killed_at = time.monotonic()

    def through_the_node_agent() -> bool:
        got = kubectl(kc, "get", "nodes", "-o", "json", f"--request-timeout={KUBECTL_TIMEOUT_S}s",
                      check=False, timeout=KUBECTL_TIMEOUT_S + 2)
        return got.returncode == 0 and len(json.loads(got.stdout)["items"]) == len(
            before["items"])

    wait_until(through_the_node_agent, FALLBACK_WITHIN_S, interval_s=0.2,
               what="kubectl through the node agent")
    took = time.monotonic() - killed_at
    assert took < FALLBACK_WITHIN_S
    assert metrics(node_metrics)['cattle_agent_dials_total{result="served"}'] >= 1
    assert s.cluster()["state"] == "unavailable"  # no cluster agent: the picture is stale
    agents = s.cluster()["nodeAgents"]
    assert [a["name"] for a in agents] == [name]
    # a namespaced call with a body, too
    kubectl(kc, "create", "configmap", "through-node-agent", "--from-literal=a=b")
    got = kubectl(kc, "get", "configmap", "through-node-agent", "-o", "jsonpath={.data.a}")
    assert got.stdout == "b"
    s.start_agent()  # the cluster agent back: the tunnel is its again


def test_the_node_agent_dials_only_the_api_server(
    stack: tuple[PictureStack, AgentProc],
) -> None:
    s, _ = stack
    log = (s.work / "node-agent.log").read_text()
    assert "CATTLE_ALLOWED_TARGETS is ignored" in log
