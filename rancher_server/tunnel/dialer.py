"""``dial(cluster, host, port)`` for the rest of the server: a connection to ``host:port`` as seen
from inside the cluster, carried by that cluster's agent tunnel."""

from __future__ import annotations

import asyncio
import ssl
from typing import TypeVar

from rancher_server.constants import DIAL_TIMEOUT_S
from rancher_server.tunnel.registry import SessionRegistry
from rancher_tunnel.session import Session, format_target
from rancher_tunnel.stream import TunnelStream

P = TypeVar("P", bound=asyncio.BaseProtocol)


class Dialer:
    def __init__(self, sessions: SessionRegistry) -> None:
        self._sessions = sessions

    def _session_for(self, cluster_id: str) -> Session:
        return self._sessions.dial_entry(cluster_id).session

    async def open_stream(
        self, cluster_id: str, host: str, port: int, *, timeout_s: float = DIAL_TIMEOUT_S
    ) -> TunnelStream:
        """A raw byte stream to ``host:port`` inside the cluster."""
        session = self._session_for(cluster_id)
        async with asyncio.timeout(timeout_s):
            return await session.open_stream(format_target(host, port))

    async def open_connection(
        self,
        cluster_id: str,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout_s: float = DIAL_TIMEOUT_S,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        session = self._session_for(cluster_id)
        async with asyncio.timeout(timeout_s):
            reader, writer = await session.open_connection(
                host, port, ssl=ssl_context, server_hostname=server_hostname
            )
        return reader, writer
