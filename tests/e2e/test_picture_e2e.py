"""The server's live picture of a cluster, end to end: the stand-in's simulated cluster, a real
server and a real cluster agent. Nodes added, NotReady and removed show within 2 s; a
Deployment's rollout produces its events; an agent killed in a burst of events and restarted
leaves the server with exactly the stand-in's events; a 410 on the agent's watches is recovered
by relisting; the feed and the summary follow."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.picture_stack import PictureStack, feed
from tests.kube import kubectl
from tests.procs import free_port, metrics, wait_until

pytestmark = pytest.mark.simcluster
FOLLOW_WITHIN_S = 2.0
CONVERGE_WITHIN_S = 15.0
BURST_EVENTS = 400


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PictureStack]:
    s = PictureStack(tmp_path_factory.mktemp("picture"),
                     agent_env={"CATTLE_WATCH_TIMEOUT_S": "3",
                                "CATTLE_HEALTH_LISTEN": f"127.0.0.1:{free_port()}"})
    try:
        yield s.start()
    finally:
        s.stop()


def test_cluster_resource_has_state_conditions_and_figures(stack: PictureStack) -> None:
    c = stack.cluster()
    assert c["state"] == "active" and c["nodeCount"] == 2 and c["nodesReady"] == 2
    assert {x["type"]: x["status"] for x in c["conditions"]} == {
        "Connected": "True", "Synced": "True", "Ready": "True"}
    assert c["capacity"]["cpu"] > 0 and c["allocatable"]["memory"] > 0
    assert c["requested"]["pods"] >= 0 and c["health"]["healthy"] is True
    summary = stack.api("/v3/clustersummary")
    assert [x["id"] for x in summary["data"]] == [stack.cluster_id]
    assert summary["totals"]["nodes"] == 2 and summary["totals"]["active"] == 1


def test_nodes_added_notready_removed_follow_within_2s(stack: PictureStack) -> None:
    def within(pred: Any, what: str) -> float:
        t0 = time.monotonic()
        wait_until(pred, FOLLOW_WITHIN_S, interval_s=0.02, what=what)
        return time.monotonic() - t0

    stack.sim_admin("node", "add", "node-7")
    within(lambda: stack.nodes_ready().get("node-7") is True, "node added")
    node = next(n for n in stack.api(f"/v3/clusters/{stack.cluster_id}/nodes")["data"]
                if n["name"] == "node-7")
    assert node["kubeletVersion"].startswith("v1.") and node["allocatable"]["cpu"]
    assert node["addresses"] and "cpu_allocatable" in node["stats"]
    with feed(stack.admin, f"/v3/clusters/{stack.cluster_id}/feed") as f:  # type: ignore[arg-type]
        kind, snap = f.items.get(timeout=5)
        assert kind == "snapshot" and "node-7" in {n["name"] for n in snap["nodes"]}
        stack.sim_admin("node", "notready", "node-7")
        within(lambda: stack.nodes_ready().get("node-7") is False, "node NotReady")
        deadline = time.monotonic() + FOLLOW_WITHIN_S
        while True:
            kind, item = f.items.get(timeout=max(0.01, deadline - time.monotonic()))
            if kind == "change" and item["kind"] == "node" and item["key"] == "node-7" \
                    and item["data"]["ready"] is False:
                break
    stack.sim_admin("node", "remove", "node-7")
    within(lambda: "node-7" not in stack.nodes_ready(), "node removed")
    wait_until(lambda: stack.cluster()["nodeCount"] == 2, FOLLOW_WITHIN_S, what="count")


def test_deployment_rollout_events_reach_the_server(stack: PictureStack) -> None:
    assert stack.sim is not None
    manifest = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{
                                  "name": "c", "image": "nginx",
                                  "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}},
                              }]}}},
    }
    kubectl(stack.sim.kubeconfig, "apply", "-f", "-", input=json.dumps(manifest))
    wait_until(lambda: any(e["reason"] == "ScalingReplicaSet" for e in stack.server_events(
        **{"involvedObject.kind": "Deployment", "involvedObject.name": "web"})),
        CONVERGE_WITHIN_S, what="the deployment's event")
    wait_until(lambda: {"Scheduled", "Started"} <= {
        e["reason"] for e in stack.server_events(namespace="default",
                                                 **{"involvedObject.kind": "Pod"})},
        CONVERGE_WITHIN_S, what="its pods' events")
    wait_until(lambda: stack.cluster()["requested"]["cpu"] >= 0.2, CONVERGE_WITHIN_S,
               what="requests from the pod specs")
    assert not stack.server_events(type="Warning", namespace="default")


def _burst(stack: PictureStack, start: int, n: int, done: threading.Event) -> None:
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for i in range(start, start + n):
        ev = {"apiVersion": "v1", "kind": "Event",
              "metadata": {"name": f"burst.{i:05d}", "namespace": "default"},
              "involvedObject": {"kind": "Pod", "name": f"p{i % 7}", "namespace": "default"},
              "reason": "Burst", "message": f"event {i}", "type": "Normal", "count": 1,
              "firstTimestamp": ts, "lastTimestamp": ts, "source": {"component": "test"}}
        created = stack.kube("POST", "/api/v1/namespaces/default/events", ev)
        if i % 5 == 0:  # a repeat: the same event, counted
            created["count"] = 2
            stack.kube("PUT", f"/api/v1/namespaces/default/events/burst.{i:05d}", created)
        if i % 50 == 0:
            stack.kube("DELETE", f"/api/v1/namespaces/default/events/burst.{i:05d}")
    done.set()


def _equal(stack: PictureStack) -> bool:
    mine = {e["id"]: e["count"] for e in stack.server_events()}
    return mine == stack.sim_events()


def test_agent_killed_mid_burst_then_restarted_no_loss_no_duplicate(stack: PictureStack) -> None:
    done = threading.Event()
    t = threading.Thread(target=_burst, args=(stack, 0, BURST_EVENTS, done))
    t.start()
    try:
        wait_until(lambda: len([e for e in stack.server_events() if e["reason"] == "Burst"]) > 50,
                   CONVERGE_WITHIN_S, what="the burst reaching the server")
        assert not done.is_set()  # killed mid-burst
        stack.kill_agent()
    finally:
        t.join(60)
    assert done.is_set()
    stack.start_agent()
    wait_until(lambda: _equal(stack), CONVERGE_WITHIN_S, interval_s=0.2,
               what="the server's events equal the stand-in's")
    ids = [e["id"] for e in stack.server_events()]
    assert len(ids) == len(set(ids))


def test_a_410_on_the_agents_watches_is_recovered_by_relisting(stack: PictureStack) -> None:
    stack.kube("POST", "/api/v1/namespaces/default/configmaps",
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bump"}})
    stack.sim_admin("compact")
    log_path: Path = stack.work / "agent.log"
    wait_until(lambda: "relisting" in log_path.read_text(), CONVERGE_WITHIN_S,
               what="a relist after 410")
    stack.sim_admin("node", "add", "node-8")
    wait_until(lambda: stack.nodes_ready().get("node-8") is True, FOLLOW_WITHIN_S,
               what="a node added after the relist")
    stack.sim_admin("node", "remove", "node-8")
    wait_until(lambda: _equal(stack), CONVERGE_WITHIN_S, what="events still equal")


def _scrape(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_metrics_of_the_picture_on_the_server_and_the_agent(stack: PictureStack) -> None:
    """The server's per-cluster gauges and counters, and the agent's prometheus_client
    exposition (tunnel, informers, picture)."""
    assert stack.admin is not None
    cid = stack.cluster_id
    wait_until(lambda: _scrape(stack.admin.call_text("GET", "/metrics")).get(  # type: ignore
        f'rancher_cluster_nodes_ready{{cluster="{cid}"}}') == stack.cluster()["nodesReady"],
        CONVERGE_WITHIN_S, what="nodes ready on /metrics")
    m = _scrape(stack.admin.call_text("GET", "/metrics"))
    assert m[f'rancher_cluster_state{{cluster="{cid}",state="active"}}'] == 1
    assert m[f'rancher_cluster_capacity{{cluster="{cid}",resource="cpu"}}'] > 0
    assert f'rancher_cluster_requested{{cluster="{cid}",resource="memory"}}' in m
    assert m[f'rancher_cluster_picture_messages_total{{cluster="{cid}"}}'] > 0
    assert m[f'rancher_cluster_events_received_total{{cluster="{cid}"}}'] > 0
    assert f'rancher_cluster_events_per_second{{cluster="{cid}"}}' in m
    assert f'rancher_cluster_picture_dropped_total{{cluster="{cid}",reason="stale"}}' in m
    assert f'rancher_cluster_picture_coalesced_total{{cluster="{cid}"}}' in m
    listen = stack.agent_env["CATTLE_HEALTH_LISTEN"]
    a = metrics(f"http://{listen}/metrics")
    assert a["cattle_agent_connected"] == 1 and a["cattle_agent_sessions_started_total"] >= 1
    assert a['cattle_agent_state{state="connected"}'] == 1
    assert a['cattle_agent_informer_objects{resource="nodes"}'] == stack.cluster()["nodeCount"]
    assert "cattle_agent_picture_pending" in a
