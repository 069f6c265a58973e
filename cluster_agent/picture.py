"""The agent's picture of its cluster, fed by the informers: nodes, pods (as requests and limits
per node), namespaces, events, usage and health; and which parts changed since the server last
got them (the dirty set the sender drains).

Coalescing falls out of the dirty set: a key is sent once per round with its state at that time,
so while the server reads slowly a node's many updates become its latest state and an event's
repeats become its latest count. A new generation marks everything dirty (the full snapshot)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cluster_agent.quantity import parse
from rancher_tunnel.messages import (
    REMOVED_EVENT,
    REMOVED_NAMESPACE,
    REMOVED_NODE,
    ClusterStats,
    Event,
    Health,
    Message,
    NamespaceInfo,
    NodeInfo,
    NodeStats,
    Removed,
)

# The parts of the picture, in the order a snapshot sends them.
NAMESPACE, NODE, NODE_STATS, CLUSTER_STATS, EVENT, HEALTH = (
    "namespace", "node", "node_stats", "cluster_stats", "event", "health")
DirtyKey = tuple[str, str]
POD_FIGURES = ("cpu_requested", "cpu_limited", "memory_requested_bytes", "memory_limited_bytes",
               "pods")
ALLOCATABLE_FIGURES = {"cpu": "cpu_allocatable", "memory": "memory_allocatable_bytes",
                       "pods": "pods_allocatable"}
CAPACITY_FIGURES = {"cpu": "cpu_capacity", "memory": "memory_capacity_bytes",
                    "pods": "pods_capacity"}


def _ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("conditions") or [])


class AgentPicture:
    def __init__(self, max_events: int) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.usage: dict[str, dict[str, float]] = {}  # node -> cpu_used, memory_used_bytes
        self.health: dict[str, Any] | None = None
        self.max_events = max_events
        self.events_evicted = 0
        self.coalesced = 0  # changes merged into a later message of the same key, since start
        self._pod_node: dict[str, tuple[str, dict[str, float]]] = {}  # pod -> (node, figures)
        self._per_node: dict[str, dict[str, float]] = {}
        self.dirty: dict[DirtyKey, None] = {}
        self.changed = asyncio.Event()
        self.generation = 0

    # -- feeding (informer callbacks) ------------------------------------------------------
    def _mark(self, part: str, key: str) -> None:
        if (part, key) in self.dirty:
            self.coalesced += 1  # merged into the one message the key will get
        else:
            self.dirty[(part, key)] = None
        self.changed.set()

    def on_node(self, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if new is None:
            self.nodes.pop(key, None)
        else:
            self.nodes[key] = new
        self._mark(NODE, key)
        self._mark(NODE_STATS, key)
        self._mark(CLUSTER_STATS, "")

    def on_namespace(self, key: str, old: dict[str, Any] | None,
                     new: dict[str, Any] | None) -> None:
        if new is None:
            self.namespaces.pop(key, None)
        else:
            self.namespaces[key] = new
        self._mark(NAMESPACE, key)

    def on_event(self, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if new is None:
            self.events.pop(key, None)
        else:
            self.events[key] = new
            while len(self.events) > self.max_events:  # the oldest received goes first
                gone = next(iter(self.events))
                del self.events[gone]
                self.events_evicted += 1
                self._mark(EVENT, gone)
        self._mark(EVENT, key)

    def on_pod(self, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        before = self._pod_node.pop(key, None)
        if before is not None:
            self._add(before[0], before[1], -1.0)
        if new is not None and new.get("node") and new.get("active"):
            req, lim = new["requests"], new["limits"]
            figures = {"cpu_requested": req["cpu"], "cpu_limited": lim["cpu"],
                       "memory_requested_bytes": req["memory"],
                       "memory_limited_bytes": lim["memory"], "pods": 1.0}
            self._pod_node[key] = (new["node"], figures)
            self._add(new["node"], figures, 1.0)

    def _add(self, node: str, figures: dict[str, float], sign: float) -> None:
        totals = self._per_node.setdefault(node, dict.fromkeys(POD_FIGURES, 0.0))
        for k, v in figures.items():
            totals[k] += sign * v
        if totals["pods"] <= 0:
            del self._per_node[node]
        self._mark(NODE_STATS, node)
        self._mark(CLUSTER_STATS, "")

    def set_usage(self, usage: dict[str, dict[str, float]]) -> None:
        for node in set(usage) | set(self.usage):
            if usage.get(node) != self.usage.get(node):
                self._mark(NODE_STATS, node)
                self._mark(CLUSTER_STATS, "")
        self.usage = usage

    def set_health(self, health: dict[str, Any]) -> None:
        self.health = health
        self._mark(HEALTH, "")

    # -- figures ---------------------------------------------------------------------------
    def node_stats(self, name: str) -> dict[str, float]:
        node = self.nodes.get(name) or {}
        out = dict(self._per_node.get(name) or dict.fromkeys(POD_FIGURES, 0.0))
        for res, fig in ALLOCATABLE_FIGURES.items():
            out[fig] = parse((node.get("allocatable") or {}).get(res, 0))
        for res, fig in CAPACITY_FIGURES.items():
            out[fig] = parse((node.get("capacity") or {}).get(res, 0))
        out.update(self.usage.get(name) or {})
        return out

    def cluster_stats(self) -> dict[str, float]:
        total: dict[str, float] = {"nodes": float(len(self.nodes)),
                                   "nodes_ready": float(sum(map(_ready, self.nodes.values())))}
        for name in self.nodes:
            for k, v in self.node_stats(name).items():
                total[k] = total.get(k, 0.0) + v
        for k in (*POD_FIGURES, *ALLOCATABLE_FIGURES.values(), *CAPACITY_FIGURES.values()):
            total.setdefault(k, 0.0)
        return total

    # -- draining (the sender) -------------------------------------------------------------
    def start_generation(self) -> int:
        """A new generation: everything is dirty again (the snapshot), in snapshot order."""
        self.generation = max(self.generation + 1, time.time_ns() // 1000)
        keys: list[DirtyKey] = [(NAMESPACE, k) for k in self.namespaces]
        keys += [(NODE, k) for k in self.nodes]
        keys += [(NODE_STATS, k) for k in self.nodes]
        keys += [(CLUSTER_STATS, ""), *((EVENT, k) for k in self.events)]
        if self.health is not None:
            keys.append((HEALTH, ""))
        self.dirty = dict.fromkeys(keys)
        self.changed.set()
        return self.generation

    def take(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages for the dirty keys (their current state), oldest first."""
        out: list[Message] = []
        while self.dirty and len(out) < limit:
            key = next(iter(self.dirty))
            del self.dirty[key]
            msg = self.message_for(key)
            if msg is not None:
                out.append(msg)
        if not self.dirty:
            self.changed.clear()
        return out

    def message_for(self, key: DirtyKey) -> Message | None:
        part, name = key
        gen = self.generation
        if part == NODE:
            node = self.nodes.get(name)
            return (NodeInfo(**node, generation=gen) if node is not None
                    else Removed(REMOVED_NODE, name, gen))
        if part == NODE_STATS:
            return NodeStats(name, self.node_stats(name), gen) if name in self.nodes else None
        if part == CLUSTER_STATS:
            return ClusterStats(self.cluster_stats(), gen)
        if part == EVENT:
            ev = self.events.get(name)
            return (Event(**ev, generation=gen) if ev is not None
                    else Removed(REMOVED_EVENT, name, gen))
        if part == NAMESPACE:
            ns = self.namespaces.get(name)
            return (NamespaceInfo(ns["name"], ns["phase"], gen) if ns is not None
                    else Removed(REMOVED_NAMESPACE, name, gen))
        if part == HEALTH and self.health is not None:
            return Health(**self.health, generation=gen)
        return None
