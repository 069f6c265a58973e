from __future__ import annotations

import socket

import aiohttp

from cluster_agent.config import AgentConfig
from cluster_agent.reporter import Reporter, node_messages
from rancher_server.api.resources import cluster_state
from rancher_server.clusters.reports import AgentReport
from rancher_server.store import Cluster
from rancher_tunnel.messages import Health, NodeInfo, Stats


def node(name: str, ready: str, cpu: str, memory: str) -> dict[str, object]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": cpu, "memory": memory},
            "nodeInfo": {"kubeletVersion": "v1.32.0"},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def test_node_messages_and_the_report_they_build() -> None:
    msgs = node_messages([node("a", "True", "4", "8Gi"), node("b", "Unknown", "500m", "512Mi")])
    infos = [m for m in msgs if isinstance(m, NodeInfo)]
    assert [n.name for n in infos] == ["a", "b"] and infos[0].kubelet_version == "v1.32.0"
    stats = msgs[-1]
    assert isinstance(stats, Stats)
    assert stats.values == {
        "nodes": 2.0,
        "nodes_ready": 1.0,
        "cpu_capacity": 4.5,
        "memory_capacity_bytes": 8 * 2**30 + 512 * 2**20,
    }
    report = AgentReport()
    for m in [Health(healthy=True), *msgs]:
        report.apply(m)
    assert report.to_json()["stats"]["nodes_ready"] == 1.0
    assert {n["name"] for n in report.to_json()["nodes"]} == {"a", "b"}
    # A node removed: the next stats shrink what is kept.
    for m in node_messages([node("a", "True", "4", "8Gi")]):
        report.apply(m)
    assert report.to_json()["stats"]["nodes"] == 1.0 and len(report.nodes) == 1


def test_connected_agent_whose_api_server_is_down_makes_the_cluster_unavailable() -> None:
    c = Cluster(id="c-x", name="x", created_at=0.0, registered_at=1.0)
    assert cluster_state(c, True, None) == "active"
    assert cluster_state(c, True, AgentReport(healthy=True)) == "active"
    assert cluster_state(c, True, AgentReport(healthy=False)) == "unavailable"
    assert cluster_state(c, False, AgentReport(healthy=False)) == "disconnected"


async def test_unreachable_api_server_is_reported_unhealthy() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    reporter = Reporter(
        AgentConfig(server="https://s", token="t", api_address=f"127.0.0.1:{port}"), 1.0
    )
    async with aiohttp.ClientSession() as http:
        msgs = await reporter._collect(http)
    assert len(msgs) == 1 and isinstance(msgs[0], Health)
    assert msgs[0].healthy is False and "unreachable" in msgs[0].detail
