"""Simulated nodes: what kubelet and the node lifecycle controller write for a Node.

A node added here has a "kubelet": it renews its Lease in ``kube-node-lease`` every
``lease_interval_s`` and refreshes its conditions' ``lastHeartbeatTime`` every
``status_interval_s``. ``set_ready(name, False)`` stops that kubelet and writes what the node
lifecycle controller writes when heartbeats stop (conditions ``Unknown`` with reason
``NodeStatusUnknown``, the ``unreachable`` taints); ``set_ready(name, True)`` restarts it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from kubesim.sim.store_api import Obj, Store
from kubesim.sim.util import micro_time, rfc3339
from rancher_tunnel.logs import get_logger

log = get_logger(component="kubesim.sim.nodes")

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40
DEFAULT_LEASE_INTERVAL_S = 10.0
DEFAULT_STATUS_INTERVAL_S = 60.0
KUBELET_VERSION = "v1.32.0"
KUBELET_PORT = 10250
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
NODE_CAPACITY = {
    "cpu": "4",
    "ephemeral-storage": "102626232Ki",
    "hugepages-1Gi": "0",
    "hugepages-2Mi": "0",
    "memory": "16288892Ki",
    "pods": "110",
}
_HEALTHY = [
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
]


@dataclass
class SimNode:
    name: str
    index: int
    kubelet_running: bool = True
    not_ready_since: float = 0.0  # time.monotonic() when its kubelet stopped

    def not_ready_for_s(self) -> float:
        return 0.0 if self.kubelet_running else time.monotonic() - self.not_ready_since

    @property
    def internal_ip(self) -> str:
        return f"172.18.{self.index // 250}.{self.index % 250 + 2}"

    def pod_ip(self, n: int) -> str:
        return f"10.244.{self.index}.{n % 250 + 2}"


def node_is_ready(node: Obj | None) -> bool:
    if node is None:
        return False
    for c in node.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


class NodeSim:
    def __init__(
        self,
        store: Store,
        lease_interval_s: float = DEFAULT_LEASE_INTERVAL_S,
        status_interval_s: float = DEFAULT_STATUS_INTERVAL_S,
        on_node_change: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self.lease_interval_s = lease_interval_s
        self.status_interval_s = status_interval_s
        self.nodes: dict[str, SimNode] = {}
        self._next_index = 0
        self._pod_ip_counter: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._on_node_change = on_node_change

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._heartbeats(), name="kubesim-sim-heartbeats")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- admin operations ------------------------------------------------------------------
    def add(self, name: str) -> Obj:
        """Register a node with a running kubelet; returns the stored Node."""
        if name in self.nodes or self._store.get_item("", "nodes", None, name) is not None:
            raise ValueError(f'node "{name}" already exists')
        sim = SimNode(name=name, index=self._next_index)
        self._next_index += 1
        self.nodes[name] = sim
        node = self._store.create_item("", "nodes", self._node_object(sim))
        self._ensure_lease_namespace()
        self._renew_lease(sim, node)
        log.info("node added", node=name)
        self._changed(name)
        return node

    def set_ready(self, name: str, ready: bool) -> Obj:
        sim = self._get(name)
        if sim.kubelet_running and not ready:
            sim.not_ready_since = time.monotonic()
        sim.kubelet_running = ready
        node = self._store.get_item("", "nodes", None, name)
        if node is None:
            raise KeyError(name)
        node = copy.deepcopy(node)
        ts = rfc3339()
        spec = node.setdefault("spec", {})
        taints = [t for t in spec.get("taints") or [] if t.get("key") != UNREACHABLE_TAINT]
        if ready:
            node["status"]["conditions"] = self._conditions(node, ts)
        else:
            for c in node["status"].get("conditions") or []:
                if c["status"] != "Unknown":
                    c["lastTransitionTime"] = ts
                c["status"] = "Unknown"
                c["reason"] = "NodeStatusUnknown"
                c["message"] = "Kubelet stopped posting node status."
            taints += [
                {"key": UNREACHABLE_TAINT, "effect": "NoSchedule", "timeAdded": ts},
                {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": ts},
            ]
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        updated = self._store.update_item("", "nodes", node)
        updated = copy.deepcopy(updated)
        updated["status"] = node["status"]
        updated = self._store.update_item("", "nodes", updated, subresource="status")
        if ready:
            self._renew_lease(sim, updated)
        log.info("node readiness set", node=name, ready=ready)
        self._changed(name)
        return updated

    def remove(self, name: str) -> None:
        self._get(name)
        del self.nodes[name]
        self._pod_ip_counter.pop(name, None)
        self._store.delete_item("", "nodes", None, name)
        if self._store.get_item("coordination.k8s.io", "leases", LEASE_NAMESPACE, name):
            self._store.delete_item("coordination.k8s.io", "leases", LEASE_NAMESPACE, name)
        log.info("node removed", node=name)
        self._changed(name)

    def on_store_change(self, event_type: str, group: str, resource: str, obj: Obj) -> None:
        """A Node deleted through the API takes its simulated kubelet with it."""
        if event_type == "DELETED" and group == "" and resource == "nodes":
            name = str(obj.get("metadata", {}).get("name", ""))
            if self.nodes.pop(name, None) is not None:
                self._pod_ip_counter.pop(name, None)
                log.info("node deleted through the API", node=name)

    def allocate_pod_ip(self, node_name: str) -> str:
        sim = self.nodes.get(node_name)
        if sim is None:
            return ""
        n = self._pod_ip_counter.get(node_name, 0)
        self._pod_ip_counter[node_name] = n + 1
        return sim.pod_ip(n)

    def not_ready_for_s(self, node_name: str) -> float:
        sim = self.nodes.get(node_name)
        return 0.0 if sim is None else sim.not_ready_for_s()

    def kubelet_running(self, node_name: str) -> bool:
        sim = self.nodes.get(node_name)
        return sim is not None and sim.kubelet_running

    # -- internals -------------------------------------------------------------------------
    def _changed(self, name: str) -> None:
        if self._on_node_change is not None:
            self._on_node_change(name)

    def _get(self, name: str) -> SimNode:
        sim = self.nodes.get(name)
        if sim is None:
            raise KeyError(name)
        return sim

    def _ensure_lease_namespace(self) -> None:
        if self._store.get_item("", "namespaces", None, LEASE_NAMESPACE) is None:
            self._store.create_item(
                "",
                "namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}},
            )

    def _conditions(self, node: Obj | None, ts: str) -> list[Obj]:
        old = {c["type"]: c for c in (node or {}).get("status", {}).get("conditions") or []}
        out: list[Obj] = []
        for ctype, status, reason, message in _HEALTHY:
            prev = old.get(ctype)
            transition = (
                ts if prev is None or prev.get("status") != status else prev["lastTransitionTime"]
            )
            out.append(
                {
                    "type": ctype,
                    "status": status,
                    "lastHeartbeatTime": ts,
                    "lastTransitionTime": transition,
                    "reason": reason,
                    "message": message,
                }
            )
        return out

    def _node_object(self, sim: SimNode) -> Obj:
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": sim.name,
            "kubernetes.io/os": "linux",
        }
        if sim.index == 0:
            labels[CONTROL_PLANE_LABEL] = ""
        ts = rfc3339()
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": sim.name,
                "labels": labels,
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {
                "podCIDR": f"10.244.{sim.index}.0/24",
                "podCIDRs": [f"10.244.{sim.index}.0/24"],
            },
            "status": {
                "capacity": dict(NODE_CAPACITY),
                "allocatable": dict(NODE_CAPACITY),
                "conditions": self._conditions(None, ts),
                "addresses": [
                    {"type": "InternalIP", "address": sim.internal_ip},
                    {"type": "Hostname", "address": sim.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
                "nodeInfo": {
                    "machineID": uuid.uuid4().hex,
                    "systemUUID": str(uuid.uuid4()),
                    "bootID": str(uuid.uuid4()),
                    "kernelVersion": "6.1.0-kubesim",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "kubeletVersion": KUBELET_VERSION,
                    "kubeProxyVersion": KUBELET_VERSION,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }

    def _renew_lease(self, sim: SimNode, node: Obj | None = None) -> None:
        lease = self._store.get_item("coordination.k8s.io", "leases", LEASE_NAMESPACE, sim.name)
        renew = micro_time()
        if lease is None:
            node = node or self._store.get_item("", "nodes", None, sim.name)
            if node is None:
                return
            self._store.create_item(
                "coordination.k8s.io",
                "leases",
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": sim.name,
                        "namespace": LEASE_NAMESPACE,
                        "ownerReferences": [
                            {
                                "apiVersion": "v1",
                                "kind": "Node",
                                "name": sim.name,
                                "uid": node["metadata"]["uid"],
                            }
                        ],
                    },
                    "spec": {
                        "holderIdentity": sim.name,
                        "leaseDurationSeconds": LEASE_DURATION_S,
                        "renewTime": renew,
                    },
                },
            )
            return
        lease = copy.deepcopy(lease)
        lease.setdefault("spec", {})["renewTime"] = renew
        lease["spec"]["holderIdentity"] = sim.name
        self._store.update_item("coordination.k8s.io", "leases", lease)

    def _post_status(self, sim: SimNode) -> None:
        node = self._store.get_item("", "nodes", None, sim.name)
        if node is None:
            return
        node = copy.deepcopy(node)
        node.setdefault("status", {})["conditions"] = self._conditions(node, rfc3339())
        self._store.update_item("", "nodes", node, subresource="status")

    async def _heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        next_lease = loop.time() + self.lease_interval_s
        next_status = loop.time() + self.status_interval_s
        while True:
            await asyncio.sleep(max(0.0, min(next_lease, next_status) - loop.time()))
            t = loop.time()
            renew, post_status = t >= next_lease, t >= next_status
            if renew:
                next_lease = t + self.lease_interval_s
            if post_status:
                next_status = t + self.status_interval_s
            for sim in list(self.nodes.values()):
                if not sim.kubelet_running:
                    continue
                try:
                    if renew:
                        self._renew_lease(sim)
                    if post_status:
                        self._post_status(sim)
                except Exception as exc:  # a failed heartbeat is retried on the next tick
                    log.warning("heartbeat failed", node=sim.name, error=str(exc))
