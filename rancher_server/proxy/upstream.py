"""Per-cluster HTTP clients towards downstream API servers, each connection a tunnel stream with
TLS end to end (verified against the CA the cluster's agent reported)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import aiohttp

from rancher_server.constants import DIAL_TIMEOUT_S
from rancher_server.proxy.lean import LeanPool
from rancher_server.store import Store
from rancher_server.tunnel.registry import ClusterUnavailable, SessionRegistry
from rancher_tunnel.connector import TunnelConnector
from rancher_tunnel.errors import SessionClosed
from rancher_tunnel.session import Session

POOL_LIMIT_PER_CLUSTER = 256
KEEPALIVE_S = 30.0


@dataclass
class Upstream:
    cluster_id: str
    host: str
    port: int
    ssl: ssl.SSLContext
    http: aiohttp.ClientSession
    admin_token: str  # the agent's service-account token (memory only)
    key: tuple[str, str]
    lean: LeanPool  # the proxy's hot path; ``http`` serves everything else

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class UpstreamPool:
    def __init__(self, sessions: SessionRegistry, store: Store) -> None:
        self._sessions = sessions
        self._store = store
        self._upstreams: dict[str, Upstream] = {}
        self._admin_tokens: dict[str, str] = {}

    def get(self, cluster_id: str) -> Upstream:
        ident = self._sessions.dial_entry(cluster_id).identity
        if ident.role == "cluster":
            address, ca_pem = ident.api_address, ident.ca_cert_pem
            if ident.sa_token:
                self._admin_tokens[cluster_id] = ident.sa_token
        else:  # a node agent carries the tunnel: use what the cluster agent registered
            cluster = self._store.get_cluster(cluster_id)
            address, ca_pem = cluster.api_endpoint, cluster.ca_cert
        if not address:
            raise ClusterUnavailable(f"cluster {cluster_id} has not reported its API server")
        key = (address, ca_pem)
        current = self._upstreams.get(cluster_id)
        if current is not None and current.key == key:
            current.admin_token = self._admin_tokens.get(cluster_id, "")
            return current
        if current is not None:
            current.lean.close()
            asyncio.get_running_loop().create_task(current.http.close(), name="upstream-close")
        ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
        ctx.set_alpn_protocols(["http/1.1"])
        host, port = split_address(address)

        def session_now() -> Session:
            """The cluster's current session (a reconnect is picked up by the next dial)."""
            try:
                return self._sessions.dial_entry(cluster_id).session
            except ClusterUnavailable as e:
                raise SessionClosed(str(e)) from e

        async def current_session() -> Session:
            return session_now()

        connector = TunnelConnector(
            current_session,
            ssl=ctx,
            limit=0,
            limit_per_host=POOL_LIMIT_PER_CLUSTER,
            keepalive_timeout=KEEPALIVE_S,
        )
        http = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=DIAL_TIMEOUT_S),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        )
        token = self._admin_tokens.get(cluster_id, "")

        lean = LeanPool(
            session_now, host, port, ctx, connect_timeout_s=DIAL_TIMEOUT_S, keepalive_s=KEEPALIVE_S
        )
        up = Upstream(cluster_id, host, port, ctx, http, token, key, lean)
        self._upstreams[cluster_id] = up
        return up

    def open_session(self, cluster_id: str) -> Session:
        return self._sessions.dial_entry(cluster_id).session

    async def close(self) -> None:
        for up in self._upstreams.values():
            up.lean.close()
            await up.http.close()
        self._upstreams.clear()
