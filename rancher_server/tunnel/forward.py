"""TCP forward listeners: ``--tcp-forward 127.0.0.1:PORT=CLUSTER/HOST:PORT`` accepts local TCP
connections and carries each over the cluster's tunnel to HOST:PORT (diagnostics, benchmarks,
reaching a cluster service from the server host)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from rancher_server.constants import FORWARD_BACKLOG, SHUTDOWN_GRACE_S
from rancher_server.tunnel.dialer import Dialer
from rancher_server.tunnel.registry import ClusterUnavailable
from rancher_tunnel.errors import SessionClosed
from rancher_tunnel.logs import get_logger
from rancher_tunnel.splice import forward_protocol
from rancher_tunnel.stream import TunnelStream

log = get_logger(component="forward")


@dataclass(frozen=True)
class ForwardSpec:
    listen_host: str
    listen_port: int
    cluster_id: str
    target_host: str
    target_port: int

    @classmethod
    def parse(cls, spec: str) -> ForwardSpec:
        try:
            listen, target = spec.split("=", 1)
            lhost, _, lport = listen.rpartition(":")
            cluster, hostport = target.split("/", 1)
            thost, _, tport = hostport.rpartition(":")
            return cls(lhost or "127.0.0.1", int(lport), cluster, thost, int(tport))
        except ValueError as e:
            raise ValueError(
                f"bad --tcp-forward {spec!r}: want LISTENHOST:PORT=CLUSTER/HOST:PORT"
            ) from e


async def start_forward(spec: ForwardSpec, dialer: Dialer) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    async def open_stream() -> TunnelStream:
        try:
            return await dialer.open_stream(spec.cluster_id, spec.target_host, spec.target_port)
        except ClusterUnavailable as e:
            log.warning("forward dial failed", error=str(e), cluster=spec.cluster_id)
            raise SessionClosed(str(e)) from e

    server = await loop.create_server(
        forward_protocol(open_stream),
        spec.listen_host,
        spec.listen_port,
        backlog=FORWARD_BACKLOG,
        reuse_address=True,
    )
    log.info(
        "tcp forward listening",
        listen=f"{spec.listen_host}:{spec.listen_port}",
        cluster=spec.cluster_id,
        target=f"{spec.target_host}:{spec.target_port}",
    )
    return server


async def stop_forwards(servers: list[asyncio.Server]) -> None:
    for s in servers:
        s.close()
    for s in servers:
        with contextlib.suppress(TimeoutError):  # newer Pythons also wait for live connections
            await asyncio.wait_for(s.wait_closed(), SHUTDOWN_GRACE_S)
