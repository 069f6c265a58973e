"""Application state shared by the handlers (one typed AppKey)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from rancher_server.clusters.controller import ControllerManager
from rancher_server.config import ServerConfig
from rancher_server.metrics import TunnelCollector
from rancher_server.store import Store
from rancher_server.tls import TLSMaterial
from rancher_server.tunnel.registry import SessionRegistry
from rancher_tunnel.constants import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from rancher_server.ha.runtime import HA


@dataclass
class ServerState:
    config: ServerConfig
    store: Store
    tls: TLSMaterial
    sessions: SessionRegistry
    metrics: CollectorRegistry
    collector: TunnelCollector
    limits: Limits = DEFAULT_LIMITS
    url: str = ""
    shutting_down: bool = False
    controllers: ControllerManager | None = None  # set while the app runs (api.setup)
    ha: HA | None = None  # replicas on etcd: set once the server listens (rancher_server.ha)

    def owns(self, cluster_id: str) -> bool:
        """Whether this replica drives the cluster (always, with one replica; on etcd, nothing
        until the replica has joined the others)."""
        if self.ha is None:
            return not self.config.store_url
        return self.ha.ownership.owns(cluster_id)

    def owns_version(self) -> object:
        """Changes whenever any answer of :meth:`owns` may have."""
        return None if self.ha is None else (id(self.ha), self.ha.ownership.version)


STATE: web.AppKey[ServerState] = web.AppKey("state", ServerState)
