"""Application state shared by the handlers (one typed AppKey)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from rancher_server.clusters.controller import ControllerManager
from rancher_server.config import ServerConfig
from rancher_server.metrics import TunnelCollector
from rancher_server.store import Store
from rancher_server.tls import TLSMaterial
from rancher_server.tunnel.registry import SessionRegistry
from rancher_tunnel.constants import DEFAULT_LIMITS, Limits


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


STATE: web.AppKey[ServerState] = web.AppKey("state", ServerState)
