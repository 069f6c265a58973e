"""What cluster agents report over the tunnel's typed messages (health of their API server,
nodes, stats), kept per cluster in memory and shown on the cluster resource.

What one cluster's report may hold is bounded (``MAX_REPORTED_NODES``, ``MAX_REPORT_BYTES``,
``MAX_STATS_KEYS``): a report that would go over raises :class:`ReportLimitExceeded` and is not
kept (the tunnel endpoint disconnects the agent). The registry drops a cluster's report when its
last agent session ends."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Any

from rancher_server.constants import (
    MAX_NODE_REPORT_BYTES,
    MAX_REPORT_BYTES,
    MAX_REPORTED_NODES,
    MAX_STATS_KEYS,
    REPORT_ENTRY_OVERHEAD_BYTES,
)
from rancher_tunnel.messages import Health, Message, NodeInfo, Stats


class ReportLimitExceeded(Exception):
    """An agent's report would exceed what is kept per cluster."""


def check_node_bytes(name: str, size: int) -> None:
    """One node's info over ``MAX_NODE_REPORT_BYTES`` cuts the agent off."""
    if size > MAX_NODE_REPORT_BYTES:
        raise ReportLimitExceeded(
            f"node info for {name[:64]!r}: {size} bytes over {MAX_NODE_REPORT_BYTES}"
        )


def estimate_bytes(value: Any) -> int:
    """What keeping a decoded message (or a part of it) costs: its text plus a fixed overhead
    per string, number and container entry (messages are nested at most 16 deep)."""
    if isinstance(value, str | bytes):
        return len(value) + REPORT_ENTRY_OVERHEAD_BYTES
    if isinstance(value, dict):
        return REPORT_ENTRY_OVERHEAD_BYTES + sum(
            estimate_bytes(k) + estimate_bytes(v) for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return REPORT_ENTRY_OVERHEAD_BYTES + sum(estimate_bytes(v) for v in value)
    if isinstance(value, Message):
        return REPORT_ENTRY_OVERHEAD_BYTES + sum(
            estimate_bytes(getattr(value, f.name)) for f in fields(value)
        )
    return REPORT_ENTRY_OVERHEAD_BYTES


def _node_bytes(msg: NodeInfo) -> int:
    """What a node info entry costs: its strings and a fixed overhead per entry."""
    entries = 2 + len(msg.labels) + len(msg.capacity)
    return (
        entries * REPORT_ENTRY_OVERHEAD_BYTES
        + len(msg.name)
        + len(msg.kubelet_version)
        + sum(len(k) + len(v) for k, v in msg.labels.items())
        + sum(len(k) + len(v) for k, v in msg.capacity.items())
    )


@dataclass
class AgentReport:
    healthy: bool | None = None  # None: nothing reported yet
    detail: str = ""
    checked_at: float | None = None
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    _node_bytes: dict[str, int] = field(default_factory=dict, repr=False)
    _nodes_total: int = 0
    _stats_total: int = 0

    @property
    def size_bytes(self) -> int:
        """What this report holds, counted as in ``MAX_REPORT_BYTES``."""
        return len(self.detail) + self._nodes_total + self._stats_total

    def _check(self, size: int, what: str) -> None:
        if size > MAX_REPORT_BYTES:
            raise ReportLimitExceeded(f"{what}: reports over {MAX_REPORT_BYTES} bytes")

    def apply(self, msg: Message) -> None:
        if isinstance(msg, Health):
            self._check(self.size_bytes - len(self.detail) + len(msg.detail), "health")
            self.healthy, self.detail, self.checked_at = msg.healthy, msg.detail, time.time()
        elif isinstance(msg, NodeInfo):
            self._apply_node(msg)
        elif isinstance(msg, Stats):
            self._apply_stats(msg)

    def _apply_node(self, msg: NodeInfo) -> None:
        old = self._node_bytes.get(msg.name)
        if old is None and len(self.nodes) >= MAX_REPORTED_NODES:
            raise ReportLimitExceeded(f"node info: more than {MAX_REPORTED_NODES} nodes")
        size = _node_bytes(msg)
        check_node_bytes(msg.name, size)
        self._check(self.size_bytes - (old or 0) + size, "node info")
        self.nodes[msg.name] = msg
        self._node_bytes[msg.name] = size
        self._nodes_total += size - (old or 0)

    def _apply_stats(self, msg: Stats) -> None:
        if len(msg.values) > MAX_STATS_KEYS:
            raise ReportLimitExceeded(f"stats: more than {MAX_STATS_KEYS} values")
        # NaN and infinities are not JSON: such a value is dropped, not kept
        values = {k: float(v) for k, v in msg.values.items() if math.isfinite(v)}
        total = sum(len(k) + REPORT_ENTRY_OVERHEAD_BYTES for k in values)
        self._check(self.size_bytes - self._stats_total + total, "stats")
        self.stats, self._stats_total = values, total
        current = int(self.stats.get("nodes", len(self.nodes)))
        if len(self.nodes) > current:  # nodes removed since: keep the newest reports
            keep = list(self.nodes)[-current:] if current > 0 else []
            self.nodes = {name: self.nodes[name] for name in keep}
            self._node_bytes = {name: self._node_bytes[name] for name in keep}
            self._nodes_total = sum(self._node_bytes.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "detail": self.detail,
            "checkedAt": self.checked_at,
            "stats": self.stats,
            "nodes": [
                {"name": n.name, "kubeletVersion": n.kubelet_version, "capacity": n.capacity}
                for n in self.nodes.values()
            ],
        }
