"""Deployment -> ReplicaSet -> Pods on Ready nodes, events, scaling, rollouts, DaemonSets and
NotReady/removed nodes, driven through the real store."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubesim.sim import SimContext
from kubesim.store import Store

from .conftest import deployment, wait_for

pytestmark = pytest.mark.timeout(30)


def pods_of(store: Store, app: str, ns: str = "default") -> list[dict[str, Any]]:
    return [
        p
        for p in store.list_items("", "pods", ns)
        if (p["metadata"].get("labels") or {}).get("app") == app
    ]


def running_ready(pods: list[dict[str, Any]]) -> bool:
    return all(
        p["status"].get("phase") == "Running"
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
        for p in pods
    )


def events_for(store: Store, name: str) -> list[tuple[str, str, str]]:
    return [
        (e["reason"], e["message"], e.get("reportingComponent", ""))
        for e in sorted(
            store.list_items("", "events"), key=lambda e: int(e["metadata"]["resourceVersion"])
        )
        if e["involvedObject"]["name"] == name
    ]


async def test_deployment_runs_pods_on_ready_nodes(store: Store, sim: SimContext) -> None:
    store.create_item("apps", "deployments", deployment("web", 3))
    d = await wait_for(
        lambda: (
            (x := store.get_item("apps", "deployments", "default", "web"))
            and x.get("status", {}).get("availableReplicas") == 3
            and x
        ),
        what="deployment available",
    )
    assert d["status"]["replicas"] == 3 and d["status"]["updatedReplicas"] == 3
    assert d["status"]["readyReplicas"] == 3 and d["status"]["observedGeneration"] == 1
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert (
        conds["Available"]["status"] == "True"
        and conds["Available"]["reason"] == "MinimumReplicasAvailable"
    )
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"

    [rs] = store.list_items("apps", "replicasets", "default")
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{h}" and len(h) == 10
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert rs["status"]["readyReplicas"] == 3

    pods = pods_of(store, "web")
    assert len(pods) == 3 and running_ready(pods)
    assert {p["spec"]["nodeName"] for p in pods} == {"node-0", "node-1"}
    for p in pods:
        assert p["metadata"]["generateName"] == f"web-{h}-"
        assert p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        assert p["status"]["podIP"].startswith("10.244.")
        assert [c["type"] for c in p["status"]["conditions"]] == [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ]
        [cs] = p["status"]["containerStatuses"]
        assert cs["ready"] and cs["state"]["running"]["startedAt"]
        assert cs["image"] == "docker.io/library/nginx:1.27"

    assert (
        "ScalingReplicaSet",
        f"Scaled up replica set web-{h} from 0 to 3",
        "deployment-controller",
    ) in events_for(store, "web")
    rs_events = events_for(store, f"web-{h}")
    assert (
        sum(1 for r, _, c in rs_events if r == "SuccessfulCreate" and c == "replicaset-controller")
        == 3
    )
    pod = pods[0]["metadata"]["name"]
    reasons = [r for r, _, _ in events_for(store, pod)]
    assert reasons == ["Scheduled", "Pulled", "Created", "Started"]
    scheduled = next(
        e
        for e in store.list_items("", "events")
        if e["involvedObject"]["name"] == pod and e["reason"] == "Scheduled"
    )
    assert (
        scheduled["reportingComponent"] == "default-scheduler" and scheduled["action"] == "Binding"
    )
    assert (
        scheduled["message"]
        == f"Successfully assigned default/{pod} to {pods[0]['spec']['nodeName']}"
    )


async def test_scale_and_rollout(store: Store, sim: SimContext) -> None:
    store.create_item("apps", "deployments", deployment("api", 2))
    await wait_for(lambda: len(pods_of(store, "api")) == 2 and running_ready(pods_of(store, "api")))
    d = copy.deepcopy(store.get_item("apps", "deployments", "default", "api"))
    assert d is not None
    d["spec"]["replicas"] = 4
    store.update_item("apps", "deployments", d)
    await wait_for(lambda: len(pods_of(store, "api")) == 4 and running_ready(pods_of(store, "api")))
    d = copy.deepcopy(store.get_item("apps", "deployments", "default", "api"))
    assert d is not None
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    store.update_item("apps", "deployments", d)

    def rolled() -> bool:
        x = store.get_item("apps", "deployments", "default", "api")
        pods = pods_of(store, "api")
        return bool(
            x
            and x["status"].get("updatedReplicas") == 4
            and x["status"].get("availableReplicas") == 4
            and x["status"].get("replicas") == 4
            and len(pods) == 4
            and all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in pods)
        )

    await wait_for(rolled, what="rollout")
    rss = sorted(
        store.list_items("apps", "replicasets", "default"),
        key=lambda r: r["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
    )
    assert [r["spec"]["replicas"] for r in rss] == [0, 4]
    assert rss[1]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    x = store.get_item("apps", "deployments", "default", "api")
    assert (
        x is not None and x["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    )
    msgs = [m for r, m, _ in events_for(store, "api") if r == "ScalingReplicaSet"]
    assert any(
        m.startswith(f"Scaled down replica set {rss[0]['metadata']['name']} from") for m in msgs
    )
    # scale down to 1
    d = copy.deepcopy(x)
    d["spec"]["replicas"] = 1
    store.update_item("apps", "deployments", d)
    await wait_for(lambda: len(pods_of(store, "api")) == 1)


async def test_notready_node_and_removal(store: Store, sim: SimContext) -> None:
    store.create_item("apps", "deployments", deployment("db", 2))
    await wait_for(lambda: len(pods_of(store, "db")) == 2 and running_ready(pods_of(store, "db")))
    sim.nodes.set_ready("node-1", False)
    node = store.get_item("", "nodes", None, "node-1")
    assert node is not None
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown" and ready["reason"] == "NodeStatusUnknown"
    assert {t["key"] for t in node["spec"]["taints"]} == {"node.kubernetes.io/unreachable"}
    on_1 = [p for p in pods_of(store, "db") if p["spec"]["nodeName"] == "node-1"]
    if on_1:
        await wait_for(
            lambda: (
                not running_ready(
                    [p for p in pods_of(store, "db") if p["spec"]["nodeName"] == "node-1"]
                )
            )
        )
    # new pods avoid the NotReady node
    store.create_item(
        "",
        "pods",
        {
            "metadata": {"name": "solo", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        },
    )
    solo = await wait_for(
        lambda: (
            (p := store.get_item("", "pods", "default", "solo")) and p["spec"].get("nodeName") and p
        )
    )
    assert solo["spec"]["nodeName"] == "node-0"
    # removing the node deletes its pods; the replica set replaces them on node-0
    sim.nodes.remove("node-1")
    assert store.get_item("coordination.k8s.io", "leases", "kube-node-lease", "node-1") is None
    await wait_for(
        lambda: (
            len(pods_of(store, "db")) == 2
            and running_ready(pods_of(store, "db"))
            and all(p["spec"]["nodeName"] == "node-0" for p in pods_of(store, "db"))
        ),
        what="rescheduled",
    )


async def test_unschedulable_without_ready_nodes(store: Store, sim: SimContext) -> None:
    sim.nodes.set_ready("node-0", False)
    sim.nodes.set_ready("node-1", False)
    store.create_item(
        "",
        "pods",
        {
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        },
    )
    pod = await wait_for(
        lambda: (
            (p := store.get_item("", "pods", "default", "p"))
            and p["status"].get("conditions")
            and p
        )
    )
    [cond] = pod["status"]["conditions"]
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert (
        "0/2 nodes are available: 2 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }" in cond["message"]
    )
    assert any(r == "FailedScheduling" for r, _, _ in events_for(store, "p"))
    sim.nodes.set_ready("node-1", True)
    await wait_for(
        lambda: (
            (p := store.get_item("", "pods", "default", "p"))
            and p["status"].get("phase") == "Running"
        )
    )


async def test_daemonset_one_pod_per_ready_node(store: Store, sim: SimContext) -> None:
    labels = {"app": "agent"}
    store.create_item(
        "apps",
        "daemonsets",
        {
            "metadata": {"name": "agent", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "a", "image": "agent:1"}]},
                },
            },
        },
    )
    await wait_for(
        lambda: (
            len(pods_of(store, "agent", "kube-system")) == 2
            and running_ready(pods_of(store, "agent", "kube-system"))
        )
    )
    assert {p["spec"]["nodeName"] for p in pods_of(store, "agent", "kube-system")} == {
        "node-0",
        "node-1",
    }
    sim.nodes.add("node-2")
    await wait_for(lambda: len(pods_of(store, "agent", "kube-system")) == 3)
    ds = await wait_for(
        lambda: (
            (d := store.get_item("apps", "daemonsets", "kube-system", "agent"))
            and d["status"].get("numberReady") == 3
            and d
        )
    )
    assert (
        ds["status"]["desiredNumberScheduled"] == 3 and ds["status"]["currentNumberScheduled"] == 3
    )
    sim.nodes.remove("node-2")
    await wait_for(lambda: len(pods_of(store, "agent", "kube-system")) == 2)
    # deleting the DaemonSet garbage-collects its pods
    store.delete_item("apps", "daemonsets", "kube-system", "agent")
    await wait_for(lambda: not pods_of(store, "agent", "kube-system"))


async def test_pods_leave_an_unreachable_node_after_their_toleration(
    store: Store, sim: SimContext
) -> None:
    d = deployment("ha", 2)
    d["spec"]["template"]["spec"]["tolerations"] = [
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 1,
        }
    ]
    store.create_item("apps", "deployments", d)
    await wait_for(lambda: len(pods_of(store, "ha")) == 2 and running_ready(pods_of(store, "ha")))
    victims = {
        p["metadata"]["name"] for p in pods_of(store, "ha") if p["spec"]["nodeName"] == "node-1"
    }
    sim.nodes.set_ready("node-1", False)
    await wait_for(
        lambda: (
            len(pods_of(store, "ha")) == 2
            and running_ready(pods_of(store, "ha"))
            and all(p["spec"]["nodeName"] == "node-0" for p in pods_of(store, "ha"))
        ),
        what="failover to node-0",
    )
    for name in victims:
        assert (
            "TaintManagerEviction",
            f"Marking for deletion Pod default/{name}",
            "taint-eviction-controller",
        ) in events_for(store, name)


async def test_rollback_reuses_the_old_replica_set(store: Store, sim: SimContext) -> None:
    store.create_item("apps", "deployments", deployment("undo", 1, image="app:1"))
    await wait_for(
        lambda: running_ready(pods_of(store, "undo")) and len(pods_of(store, "undo")) == 1
    )
    [first] = store.list_items("apps", "replicasets", "default")
    for image in ("app:2", "app:1"):
        d = copy.deepcopy(store.get_item("apps", "deployments", "default", "undo"))
        assert d is not None
        # what kubectl rollout undo sends back: the old template, with Go's zero values
        d["spec"]["template"]["metadata"]["creationTimestamp"] = None
        d["spec"]["template"]["spec"]["containers"][0].update(image=image, resources={})
        store.update_item("apps", "deployments", d)
        await wait_for(
            lambda image=image: (
                len(pods_of(store, "undo")) == 1
                and pods_of(store, "undo")[0]["spec"]["containers"][0]["image"] == image
                and running_ready(pods_of(store, "undo"))
            ),
            what=f"rolled to {image}",
        )
    rss = {r["metadata"]["name"]: r for r in store.list_items("apps", "replicasets", "default")}
    assert len(rss) == 2
    revived = rss[first["metadata"]["name"]]
    assert revived["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert revived["spec"]["replicas"] == 1


async def test_endpoints_follow_the_selected_pods(store: Store, sim: SimContext) -> None:
    d = deployment("svc", 2)
    d["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "http", "containerPort": 8080}
    ]
    store.create_item("apps", "deployments", d)
    store.create_item(
        "",
        "services",
        {
            "metadata": {"name": "svc", "namespace": "default", "labels": {"team": "a"}},
            "spec": {
                "selector": {"app": "svc"},
                "ports": [{"name": "web", "port": 80, "targetPort": "http"}],
            },
        },
    )

    def addresses() -> list[str]:
        ep = store.get_item("", "endpoints", "default", "svc") or {}
        return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])

    await wait_for(lambda: len(addresses()) == 2, what="two ready endpoints")
    ep = store.get_item("", "endpoints", "default", "svc")
    assert ep is not None and ep["metadata"]["labels"] == {"team": "a"}
    [subset] = ep["subsets"]
    assert subset["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    assert sorted(addresses()) == sorted(p["status"]["podIP"] for p in pods_of(store, "svc"))
    assert {a["targetRef"]["kind"] for a in subset["addresses"]} == {"Pod"}
    # a NotReady node moves its pod to notReadyAddresses
    sim.nodes.set_ready("node-1", False)
    await wait_for(lambda: len(addresses()) == 1, what="one ready endpoint")
    ep = store.get_item("", "endpoints", "default", "svc")
    assert ep is not None and len(ep["subsets"][0]["notReadyAddresses"]) == 1
    store.delete_item("", "services", "default", "svc")
    await wait_for(
        lambda: store.get_item("", "endpoints", "default", "svc") is None, what="endpoints gone"
    )
