"""What cluster agents report over the tunnel's typed messages (health of their API server,
nodes, stats), kept per cluster in memory and shown on the cluster resource."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rancher_tunnel.messages import Health, Message, NodeInfo, Stats

MAX_NODES_KEPT = 5000


@dataclass
class AgentReport:
    healthy: bool | None = None  # None: nothing reported yet
    detail: str = ""
    checked_at: float | None = None
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)

    def apply(self, msg: Message) -> None:
        if isinstance(msg, Health):
            self.healthy, self.detail, self.checked_at = msg.healthy, msg.detail, time.time()
        elif isinstance(msg, NodeInfo):
            if msg.name in self.nodes or len(self.nodes) < MAX_NODES_KEPT:
                self.nodes[msg.name] = msg
        elif isinstance(msg, Stats):
            self.stats = dict(msg.values)
            current = int(self.stats.get("nodes", len(self.nodes)))
            if len(self.nodes) > current:  # nodes removed since: keep the newest reports
                self.nodes = dict(list(self.nodes.items())[-current:]) if current else {}

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
