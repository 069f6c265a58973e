"""What a cluster's controller keeps in the store so that a restarted server still knows it:
the cluster's last state, since when, and its last node counts (the picture itself is rebuilt
from the agent's snapshot when it reconnects). One setting per cluster (``cluster-last-state/<id>``,
JSON), written on state changes only, in batches (:class:`LastStateWriter`), so that a hundred
clusters changing at once cost a few store writes, not a storm of them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from rancher_server.store import Store, StoreError
from rancher_tunnel.logs import get_logger

SETTING_PREFIX = "cluster-last-state/"
WRITE_INTERVAL_S = 1.0  # changes of this long are written together

log = get_logger(component="cluster-last-state")


@dataclass(frozen=True)
class LastState:
    state: str
    reason: str
    since: float
    node_count: int = 0
    nodes_ready: int = 0
    at: float = 0.0  # when the server recorded it

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "transitioningMessage": self.reason, "stateSince": self.since,
                "nodeCount": self.node_count, "nodesReady": self.nodes_ready,
                "recordedAt": self.at}


def load(store: Store, cluster_id: str) -> LastState | None:
    raw = store.get_setting(SETTING_PREFIX + cluster_id)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
        return LastState(str(doc["state"]), str(doc.get("reason", "")), float(doc["since"]),
                         int(doc.get("node_count", 0)), int(doc.get("nodes_ready", 0)),
                         float(doc.get("at", 0.0)))
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable last state; ignored", cluster=cluster_id)
        return None


class LastStateWriter:
    """Collects the controllers' latest states and writes them every ``WRITE_INTERVAL_S``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: dict[str, LastState] = {}
        self._wake = asyncio.Event()
        self._frozen = False
        # replicas on etcd: only the cluster's owner records its state (the others' controllers
        # see no agent and would record "unavailable" over the owner's "active")
        self.may_write: Callable[[str], bool] = lambda _: True

    def record(self, cluster_id: str, last: LastState) -> None:
        if self._frozen:
            return
        self._pending[cluster_id] = last
        self._wake.set()

    def freeze(self) -> None:
        """The server is shutting down: write what is pending and record nothing more (its
        agents are about to be disconnected by the server itself, not by their clusters)."""
        self.flush()
        self._frozen = True

    def forget(self, cluster_id: str) -> None:
        """The cluster was deleted: its record is emptied (the store has no setting deletion)."""
        self._pending.pop(cluster_id, None)
        try:
            self._store.set_setting(SETTING_PREFIX + cluster_id, "")
        except StoreError as e:
            log.warning("cannot forget a cluster's state", cluster=cluster_id, error=str(e))

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for cluster_id, last in pending.items():
            if not self.may_write(cluster_id):
                continue
            try:
                self._store.set_setting(SETTING_PREFIX + cluster_id, json.dumps(asdict(last)))
            except StoreError as e:
                log.warning("cannot record a cluster's state", cluster=cluster_id, error=str(e))

    async def run(self) -> None:
        """Until cancelled (then what is pending is written)."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await asyncio.sleep(WRITE_INTERVAL_S)
                await asyncio.to_thread(self.flush)
        finally:
            self.flush()
