"""The server's picture of one cluster, built from its agent's typed messages: nodes, per-node and
cluster stats, namespaces, events and health. Pure (no I/O): :meth:`ClusterPicture.apply` returns
the changes it made, which the controller publishes on the feed.

Bounds: at most ``MAX_REPORTED_NODES`` nodes, ``MAX_STATS_KEYS`` figures per stats message and
``MAX_NODE_REPORT_BYTES`` per node and ``MAX_REPORT_BYTES`` kept for nodes, node stats and
namespaces (estimated with
``reports.estimate_bytes``; over any, :class:`ReportLimitExceeded` and the agent is cut off, as for
the reports of ``clusters.reports``); at most ``MAX_PICTURE_EVENTS`` events and
``MAX_PICTURE_EVENT_BYTES`` of them (the oldest received go first) and ``MAX_PICTURE_NAMESPACES``
namespaces."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from rancher_server.clusters.reports import (
    ReportLimitExceeded,
    check_node_bytes,
    estimate_bytes,
)
from rancher_server.constants import (
    MAX_PICTURE_EVENT_BYTES,
    MAX_REPORT_BYTES,
    MAX_REPORTED_NODES,
    MAX_STATS_KEYS,
)
from rancher_tunnel.messages import (
    REMOVED_EVENT,
    REMOVED_NAMESPACE,
    REMOVED_NODE,
    ClusterStats,
    Event,
    Health,
    HostReport,
    Message,
    NamespaceInfo,
    NodeInfo,
    NodeStats,
    Removed,
)

MAX_PICTURE_EVENTS = 10_000  # per cluster, as the agent keeps
MAX_PICTURE_NAMESPACES = 10_000

# What a change is about (the feed's ``kind``).
CHANGE_NODE, CHANGE_NODE_STATS, CHANGE_STATS = "node", "nodeStats", "stats"
CHANGE_EVENT, CHANGE_NAMESPACE, CHANGE_HEALTH, CHANGE_STATE = (
    "event", "namespace", "health", "state")


@dataclass(frozen=True)
class Change:
    """One change of a cluster's picture; ``data`` None: the object is gone."""

    kind: str
    key: str
    data: dict[str, Any] | None


def _finite(values: dict[str, float]) -> dict[str, float]:
    if len(values) > MAX_STATS_KEYS:
        raise ReportLimitExceeded(f"stats: more than {MAX_STATS_KEYS} values")
    return {k: float(v) for k, v in values.items() if math.isfinite(v)}


def node_json(n: NodeInfo, stats: dict[str, float] | None) -> dict[str, Any]:
    ready = next((c.get("status", "") for c in n.conditions if c.get("type") == "Ready"),
                 "Unknown")
    return {
        "type": "node", "id": n.name, "name": n.name, "ready": ready == "True",
        "state": "active" if ready == "True" else "unavailable",
        "labels": n.labels, "capacity": n.capacity, "allocatable": n.allocatable,
        "conditions": n.conditions, "kubeletVersion": n.kubelet_version,
        "containerRuntimeVersion": n.container_runtime_version, "osImage": n.os_image,
        "kernelVersion": n.kernel_version, "operatingSystem": n.operating_system,
        "architecture": n.architecture, "addresses": n.addresses, "taints": n.taints,
        "unschedulable": n.unschedulable, "stats": stats or {},
    }


def host_json(h: HostReport, received_at: float) -> dict[str, Any]:
    """A node agent's report of its host (``/proc``, ``/sys``)."""
    return {"facts": h.facts, "stats": h.stats, "runtimeSockets": h.runtime_sockets,
            "reportedAt": h.at or None, "receivedAt": received_at}


def event_json(e: Event) -> dict[str, Any]:
    return {
        "type": "event", "id": f"{e.namespace}/{e.name}", "namespace": e.namespace,
        "name": e.name, "eventType": e.type, "reason": e.reason, "message": e.message,
        "involvedObject": e.object, "count": e.count, "firstSeen": e.first_seen,
        "lastSeen": e.last_seen, "source": e.source,
    }


def health_json(h: Health, received_at: float) -> dict[str, Any]:
    return {
        "healthy": h.healthy, "detail": h.detail, "failingChecks": h.failing_checks,
        "agentVersion": h.agent_version, "tunnelRttMs": h.rtt_ms,
        "heartbeatAt": h.heartbeat_at or None, "receivedAt": received_at,
    }


@dataclass
class ClusterPicture:
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    node_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    namespaces: dict[str, str] = field(default_factory=dict)  # name -> phase
    events: dict[str, Event] = field(default_factory=dict)  # namespace/name -> event
    health: Health | None = None
    health_at: float | None = None
    events_evicted: int = 0
    # what is kept, estimated (``estimate_bytes``): nodes, node stats, namespaces by key
    sizes: dict[str, int] = field(default_factory=dict, repr=False)
    kept_bytes: int = 0
    event_sizes: dict[str, int] = field(default_factory=dict, repr=False)
    event_bytes: int = 0

    def _keep(self, key: str, value: object, size: int | None = None) -> None:
        """Account for keeping ``value`` under ``key``; over the bound the agent is cut off."""
        size = estimate_bytes(value) if size is None else size
        old = self.sizes.get(key, 0)
        if self.kept_bytes - old + size > MAX_REPORT_BYTES:
            raise ReportLimitExceeded(f"cluster picture over {MAX_REPORT_BYTES} bytes")
        self.sizes[key] = size
        self.kept_bytes += size - old

    def _forget(self, key: str) -> None:
        self.kept_bytes -= self.sizes.pop(key, 0)

    def apply(self, msg: Message) -> list[Change]:
        """Apply one picture message; the changes it made (none for a message that changes
        nothing)."""
        if isinstance(msg, NodeInfo):
            return self._node(msg)
        if isinstance(msg, NodeStats):
            if msg.name not in self.nodes:
                return []
            values = _finite(msg.values)
            if self.node_stats.get(msg.name) == values:
                return []
            self._keep(f"nodestats/{msg.name}", values)
            self.node_stats[msg.name] = values
            return [Change(CHANGE_NODE_STATS, msg.name, values)]
        if isinstance(msg, ClusterStats):
            values = _finite(msg.values)
            if values == self.stats:
                return []
            self.stats = values
            return [Change(CHANGE_STATS, "", values)]
        if isinstance(msg, Event):
            return self._event(msg)
        if isinstance(msg, NamespaceInfo):
            if self.namespaces.get(msg.name) == msg.phase:
                return []
            if msg.name not in self.namespaces and len(self.namespaces) >= MAX_PICTURE_NAMESPACES:
                return []
            self._keep(f"ns/{msg.name}", (msg.name, msg.phase))
            self.namespaces[msg.name] = msg.phase
            return [Change(CHANGE_NAMESPACE, msg.name, {"name": msg.name, "phase": msg.phase})]
        if isinstance(msg, Health):
            self.health, self.health_at = msg, time.time()
            return [Change(CHANGE_HEALTH, "", health_json(msg, self.health_at))]
        if isinstance(msg, Removed):
            return self._removed(msg)
        return []

    def _node(self, msg: NodeInfo) -> list[Change]:
        if msg.name not in self.nodes and len(self.nodes) >= MAX_REPORTED_NODES:
            raise ReportLimitExceeded(f"node info: more than {MAX_REPORTED_NODES} nodes")
        if self.nodes.get(msg.name) == msg:
            return []
        size = estimate_bytes(msg)
        check_node_bytes(msg.name, size)
        self._keep(f"node/{msg.name}", msg, size)
        self.nodes[msg.name] = msg
        return [Change(CHANGE_NODE, msg.name, node_json(msg, self.node_stats.get(msg.name)))]

    def _event(self, msg: Event) -> list[Change]:
        key = f"{msg.namespace}/{msg.name}"
        if self.events.get(key) == msg:
            return []
        out: list[Change] = []
        self.events[key] = msg
        size = estimate_bytes(msg)
        self.event_bytes += size - self.event_sizes.get(key, 0)
        self.event_sizes[key] = size
        while len(self.events) > MAX_PICTURE_EVENTS or (
            self.event_bytes > MAX_PICTURE_EVENT_BYTES and len(self.events) > 1
        ):
            gone = next(iter(self.events))
            del self.events[gone]
            self.event_bytes -= self.event_sizes.pop(gone, 0)
            self.events_evicted += 1
            out.append(Change(CHANGE_EVENT, gone, None))
        out.append(Change(CHANGE_EVENT, key, event_json(msg)))
        return out

    def _removed(self, msg: Removed) -> list[Change]:
        if msg.what == REMOVED_NODE and msg.key in self.nodes:
            del self.nodes[msg.key]
            self.node_stats.pop(msg.key, None)
            self._forget(f"node/{msg.key}")
            self._forget(f"nodestats/{msg.key}")
            return [Change(CHANGE_NODE, msg.key, None)]
        if msg.what == REMOVED_EVENT and msg.key in self.events:
            del self.events[msg.key]
            self.event_bytes -= self.event_sizes.pop(msg.key, 0)
            return [Change(CHANGE_EVENT, msg.key, None)]
        if msg.what == REMOVED_NAMESPACE and msg.key in self.namespaces:
            del self.namespaces[msg.key]
            self._forget(f"ns/{msg.key}")
            return [Change(CHANGE_NAMESPACE, msg.key, None)]
        return []

    def replace_with(self, new: ClusterPicture) -> list[Change]:
        """Become ``new`` (a completed snapshot); the changes that makes."""
        out: list[Change] = []
        for name in [n for n in self.nodes if n not in new.nodes]:
            out.append(Change(CHANGE_NODE, name, None))
        for name, node in new.nodes.items():
            if self.nodes.get(name) != node or self.node_stats.get(name) != new.node_stats.get(
                    name):
                out.append(Change(CHANGE_NODE, name, node_json(node, new.node_stats.get(name))))
        for key in [k for k in self.events if k not in new.events]:
            out.append(Change(CHANGE_EVENT, key, None))
        for key, ev in new.events.items():
            if self.events.get(key) != ev:
                out.append(Change(CHANGE_EVENT, key, event_json(ev)))
        for name in [n for n in self.namespaces if n not in new.namespaces]:
            out.append(Change(CHANGE_NAMESPACE, name, None))
        for name, phase in new.namespaces.items():
            if self.namespaces.get(name) != phase:
                out.append(Change(CHANGE_NAMESPACE, name, {"name": name, "phase": phase}))
        if new.stats != self.stats:
            out.append(Change(CHANGE_STATS, "", new.stats))
        if new.health is not None and new.health != self.health:
            out.append(Change(CHANGE_HEALTH, "", health_json(new.health, new.health_at or 0.0)))
        health, health_at = new.health or self.health, new.health_at or self.health_at
        self.__dict__.update(new.__dict__)
        self.health, self.health_at = health, health_at
        return out
