"""The agent's informers (kubernetes_asyncio list+watch) against the stand-in as a process: the
picture follows nodes, pods and events; a 410 on resume is recovered by relisting; the sender's
rounds coalesce while the server does not acknowledge."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest

from cluster_agent import slim
from cluster_agent.informer import Informer
from cluster_agent.kube import AgentKube
from cluster_agent.picture import AgentPicture
from tests.kube import KubeSimProc

WITHIN_S = 5.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProc]:
    proc = KubeSimProc(tmp_path_factory.mktemp("informers"), ["--nodes", "2"]).start()
    try:
        yield proc
    finally:
        proc.stop()


def admin(sim: KubeSimProc, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "kubesim.sim.admin", "--kubeconfig",
                    str(sim.kubeconfig), *args], check=True, capture_output=True, timeout=30)


async def until(pred: object, what: str) -> None:
    async with asyncio.timeout(WITHIN_S):
        while not pred():  # type: ignore[operator]
            await asyncio.sleep(0.02)


def ready(p: AgentPicture, name: str) -> str:
    node = p.nodes.get(name) or {}
    return next((c["status"] for c in node.get("conditions", []) if c["type"] == "Ready"), "")


async def test_picture_follows_nodes_and_a_410_relists(sim: KubeSimProc) -> None:
    p = AgentPicture(max_events=1000)
    async with AgentKube.from_kubeconfig(str(sim.kubeconfig), watch_timeout_s=2) as kube:
        nodes = Informer(kube, "/api/v1/nodes", slim.node, p.on_node)
        pods = Informer(kube, "/api/v1/pods", slim.pod, p.on_pod)
        events = Informer(kube, "/api/v1/events", slim.event, p.on_event)
        tasks = [asyncio.create_task(i.run()) for i in (nodes, pods, events)]
        try:
            await until(lambda: nodes.synced.is_set() and events.synced.is_set(), "synced")
            assert set(p.nodes) == {"node-0", "node-1"} and ready(p, "node-0") == "True"
            n0 = p.nodes["node-0"]
            assert n0["kubelet_version"].startswith("v1.") and n0["allocatable"]["cpu"]
            assert p.cluster_stats()["cpu_allocatable"] > 0
            await asyncio.to_thread(admin, sim, "node", "add", "node-9")
            await until(lambda: ready(p, "node-9") == "True", "node added")
            await asyncio.to_thread(admin, sim, "node", "notready", "node-9")
            await until(lambda: ready(p, "node-9") == "Unknown", "node NotReady")
            # Writes the node watch does not see, then compaction: its resume gets 410.
            await asyncio.to_thread(admin, sim, "compact")
            relists = nodes.relists
            await asyncio.to_thread(admin, sim, "node", "remove", "node-9")
            await until(lambda: "node-9" not in p.nodes, "node removed")
            await until(lambda: nodes.relists + pods.relists + events.relists > relists,
                        "a relist after 410")
            assert p.cluster_stats()["nodes"] == 2
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def test_dirty_set_coalesces_a_node_and_an_event() -> None:
    p = AgentPicture(max_events=2)
    node = {"name": "n", "conditions": [{"type": "Ready", "status": "True"}]}
    for i in range(100):
        p.on_node("n", None, {**node, "labels": {"i": str(i)}})
    for i in range(5):
        p.on_event(f"ns/e{i}", None, {"namespace": "ns", "name": f"e{i}", "reason": "R",
                                      "message": "m", "count": i + 1})
    msgs = p.take(100)
    kinds = [m.KIND for m in msgs]
    assert kinds.count("node_info") == 1 and msgs[0].labels == {"i": "99"}  # type: ignore[attr-defined]
    # bounded: the three oldest events are reported removed, the two newest kept
    assert kinds.count("picture.removed") == 3 and len(p.events) == 2
    assert not p.dirty


def test_pod_requests_add_up_per_node() -> None:
    p = AgentPicture(max_events=10)
    p.on_node("a", None, {"name": "a", "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}})
    spec = {"nodeName": "a", "containers": [
        {"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1"}}}]}
    for i in range(4):
        p.on_pod(f"d/p{i}", None, slim.pod({"spec": spec, "status": {"phase": "Running"}}))
    p.on_pod("d/p3", None, slim.pod({"spec": spec, "status": {"phase": "Succeeded"}}))
    st = p.node_stats("a")
    assert st["cpu_requested"] == 0.75 and st["cpu_limited"] == 3.0 and st["pods"] == 3
    assert st["memory_requested_bytes"] == 3 * 64 * 2**20 and st["cpu_allocatable"] == 4
    p.on_pod("d/p0", None, None)
    assert p.cluster_stats()["pods"] == 2


def test_slim_event_of_both_recorders() -> None:
    legacy = slim.event({"metadata": {"namespace": "d", "name": "x.1", "uid": "u"},
                         "involvedObject": {"kind": "Pod", "name": "x", "namespace": "d"},
                         "reason": "Started", "message": "ok", "count": 3,
                         "firstTimestamp": "t1", "lastTimestamp": "t2",
                         "source": {"component": "kubelet"}})
    assert legacy["count"] == 3 and legacy["last_seen"] == "t2" and legacy["source"] == "kubelet"
    new = slim.event({"metadata": {"namespace": "d", "name": "x.2"}, "eventTime": "t3",
                      "reason": "Scheduled", "reportingComponent": "default-scheduler"})
    assert new["first_seen"] == new["last_seen"] == "t3" and new["count"] == 1
