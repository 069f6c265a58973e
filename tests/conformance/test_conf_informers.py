"""The cluster agent's informers (kubernetes_asyncio list+watch, ``cluster_agent/informer.py``)
against the server under test: the stand-in, or a real kube-apiserver with
CONFORMANCE_KUBECONFIG, since agents meet real ones. Lists match kubectl's; an event's creation,
repeat and deletion arrive; a watch the API server ends (timeoutSeconds) resumes from the last
resourceVersion without a relist."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from cluster_agent import slim
from cluster_agent.informer import Informer
from cluster_agent.kube import AgentKube
from cluster_agent.picture import AgentPicture

from .conftest import Kubectl, get_json

pytestmark = pytest.mark.timeout(90)
WITHIN_S = 20.0
POLL_S = 0.05
WATCH_TIMEOUT_S = 2  # the API server ends each watch after this; the informer resumes
MAX_EVENTS = 10_000
TLS_CLOSE_GRACE_S = 0.25


@dataclass
class Informers:
    picture: AgentPicture
    namespaces: Informer
    nodes: Informer
    pods: Informer
    events: Informer


async def until(pred: Callable[[], object], what: str) -> None:
    try:
        async with asyncio.timeout(WITHIN_S):
            while not pred():
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
async def informers(kubeconfig: str) -> AsyncIterator[Informers]:
    p = AgentPicture(MAX_EVENTS)
    async with AgentKube.from_kubeconfig(kubeconfig, watch_timeout_s=WATCH_TIMEOUT_S) as kube:
        inf = Informers(
            p,
            Informer(kube, "/api/v1/namespaces", slim.namespace, p.on_namespace),
            Informer(kube, "/api/v1/nodes", slim.node, p.on_node),
            Informer(kube, "/api/v1/pods", slim.pod, p.on_pod),
            Informer(kube, "/api/v1/events", slim.event, p.on_event),
        )
        every = (inf.namespaces, inf.nodes, inf.pods, inf.events)
        tasks = [asyncio.create_task(i.run()) for i in every]
        try:
            await until(lambda: all(i.synced.is_set() for i in every), "informers synced")
            yield inf
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(TLS_CLOSE_GRACE_S)  # aiohttp: TLS transports close a moment later


def event_manifest(ns: str, name: str, count: int) -> str:
    ts = "2026-01-01T00:00:00Z"
    return json.dumps({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": "ConfigMap", "name": "subject", "namespace": ns},
        "reason": "Conformance", "message": "informer test", "type": "Normal", "count": count,
        "firstTimestamp": ts, "lastTimestamp": ts, "source": {"component": "conformance"}})


async def test_lists_match_kubectl(informers: Informers, kubectl: Kubectl,
                                   namespace: str) -> None:
    nodes = {n["metadata"]["name"] for n in get_json(kubectl, "nodes")["items"]}
    assert set(informers.nodes.items) == nodes
    assert all(informers.picture.nodes[n]["kubelet_version"] for n in nodes)
    await until(lambda: namespace in informers.namespaces.items, "the test's namespace")
    pods = {f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            for p in get_json(kubectl, "pods", "-A")["items"]}
    await until(lambda: pods <= set(informers.pods.items), "every pod kubectl lists")


async def test_event_created_repeated_deleted(informers: Informers, kubectl: Kubectl,
                                              namespace: str) -> None:
    key = f"{namespace}/conf-informer.1"
    kubectl("create", "-f", "-", input=event_manifest(namespace, "conf-informer.1", 1))
    await until(lambda: key in informers.picture.events, "the event")
    ev = informers.picture.events[key]
    assert ev["reason"] == "Conformance" and ev["object"]["kind"] == "ConfigMap"
    await asyncio.sleep(WATCH_TIMEOUT_S + 1)  # the API server ends the watch meanwhile
    kubectl("replace", "-f", "-", input=event_manifest(namespace, "conf-informer.1", 2))
    await until(lambda: informers.picture.events.get(key, {}).get("count") == 2, "the repeat")
    kubectl("delete", "event", "conf-informer.1", "-n", namespace)
    await until(lambda: key not in informers.picture.events, "the deletion")
    assert informers.events.relists == 0  # a watch the server ended resumed, no relist
