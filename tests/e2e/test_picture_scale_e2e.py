"""The picture under pressure, with real processes: a server that stops reading (SIGSTOP) while
the cluster churns leaves the agent's memory bounded (changes coalesce in its dirty set instead
of queueing) and the server catches up exactly once it reads again; 100 clusters at once (100
simulated agents running the real connection, picture and sender code) into one server, all
active with all their nodes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import rss_kib
from bench.picture_fleet import Fleet
from tests.e2e.picture_stack import PictureStack
from tests.procs import free_port, metrics, wait_until
from tests.rest import Rest

pytestmark = pytest.mark.simcluster
EVENTS = 50
REPEATS = 12  # updates of each event while the server does not read
MAX_AGENT_GROWTH_KIB = 16 * 1024
CATCH_UP_WITHIN_S = 15.0
FLEET = 100
FLEET_NODES = 3
FLEET_WITHIN_S = 30.0
ADMIN_PASSWORD = "fleet-admin-password-1"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[PictureStack]:
    s = PictureStack(tmp_path, agent_env={"CATTLE_HEALTH_LISTEN": f"127.0.0.1:{free_port()}"})
    try:
        yield s.start()
    finally:
        s.stop()


def _event(stack: PictureStack, i: int, count: int) -> dict[str, object]:
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"churn.{i:03d}", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": f"p{i}", "namespace": "default"},
            "reason": "Churn", "message": f"churn {i}", "type": "Normal", "count": count,
            "firstTimestamp": ts, "lastTimestamp": ts, "source": {"component": "test"}}


def test_a_server_that_stops_reading_leaves_the_agent_bounded(stack: PictureStack) -> None:
    assert stack.server is not None and stack.server.proc is not None
    assert stack.agent is not None and stack.agent.proc is not None
    agent_metrics = f"http://{stack.agent_env['CATTLE_HEALTH_LISTEN']}/metrics"
    for i in range(EVENTS):
        stack.kube("POST", "/api/v1/namespaces/default/events", _event(stack, i, 1))
    wait_until(lambda: len([e for e in stack.server_events() if e["reason"] == "Churn"])
               == EVENTS, CATCH_UP_WITHIN_S, what="the events on the server")
    rss_before = rss_kib(stack.agent.proc.pid)
    evicted_before = metrics(agent_metrics).get("cattle_agent_picture_events_evicted_total", 0)
    os.kill(stack.server.proc.pid, signal.SIGSTOP)
    try:
        for count in range(2, REPEATS + 2):
            for i in range(EVENTS):
                path = f"/api/v1/namespaces/default/events/churn.{i:03d}"
                stack.kube("PUT", path, _event(stack, i, count))
        m = metrics(agent_metrics)
        rss_after = rss_kib(stack.agent.proc.pid)
    finally:
        os.kill(stack.server.proc.pid, signal.SIGCONT)
    # the agent holds each changed object once (its latest state), not a queue of changes
    assert m["cattle_agent_picture_pending"] <= EVENTS + 10, m["cattle_agent_picture_pending"]
    assert m["cattle_agent_picture_events_evicted_total"] == evicted_before
    assert rss_after - rss_before < MAX_AGENT_GROWTH_KIB, (rss_before, rss_after)
    want = {f"default/churn.{i:03d}": REPEATS + 1 for i in range(EVENTS)}
    wait_until(lambda: {e["id"]: e["count"] for e in stack.server_events()
                        if e["reason"] == "Churn"} == want, CATCH_UP_WITHIN_S,
               what="the server caught up with the latest counts")
    scraped = metrics(stack.server.url + "/metrics", stack.server.ca_path)
    assert scraped[f'rancher_cluster_picture_coalesced_total{{cluster="{stack.cluster_id}"}}'] > 0


def test_100_clusters_at_once(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    fleet.server.env = {"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD}
    fleet.create_clusters({"picture": FLEET})
    try:
        fleet.server.start()
        t0 = time.monotonic()
        fleet.start_sims("picture", "--nodes", str(FLEET_NODES))

        def active() -> float:
            m = fleet.scrape()
            return sum(v for k, v in m.items()
                       if k.startswith("rancher_cluster_state{") and 'state="active"' in k)

        wait_until(lambda: active() == FLEET, FLEET_WITHIN_S, 0.25, what="100 clusters active")
        wait_until(lambda: fleet.total("rancher_cluster_nodes_ready") == FLEET * FLEET_NODES,
                   FLEET_WITHIN_S, 0.25, what="every node ready")
        took = time.monotonic() - t0
        admin = Rest(fleet.server.url, fleet.server.ca_path)
        admin.token = admin.login("admin", ADMIN_PASSWORD)
        summary = admin.call("GET", "/v3/clustersummary")
        assert summary["totals"]["active"] == FLEET
        assert summary["totals"]["nodesReady"] == FLEET * FLEET_NODES
        some = summary["data"][FLEET // 2]["id"]
        nodes = admin.call("GET", f"/v3/clusters/{some}/nodes")["data"]
        assert sorted(n["name"] for n in nodes) == [f"node-{i}" for i in range(FLEET_NODES)]
        assert took < FLEET_WITHIN_S
    finally:
        fleet.stop()
