"""TCP forward listeners: ``--tcp-forward 127.0.0.1:PORT=CLUSTER/HOST:PORT`` accepts local TCP
connections and carries each over the cluster's tunnel to HOST:PORT (diagnostics, benchmarks,
reaching a cluster service from the server host)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from rancher_server.constants import FORWARD_BACKLOG
from rancher_server.dialer import ClusterUnavailable, Dialer
from rancher_server.relay import RelayProtocol
from rancher_tunnel.errors import DialRefused, SessionClosed
from rancher_tunnel.logs import get_logger

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


class _LocalSide(RelayProtocol):
    def __init__(self, spec: ForwardSpec, dialer: Dialer, tasks: set[asyncio.Task[None]]) -> None:
        super().__init__()
        self._spec = spec
        self._dialer = dialer
        self._tasks = tasks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        task = asyncio.get_running_loop().create_task(self._dial(), name="forward-dial")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dial(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()
        try:
            _, remote = await self._dialer.create_connection(
                self._spec.cluster_id, RelayProtocol, self._spec.target_host, self._spec.target_port
            )
        except (ClusterUnavailable, DialRefused, SessionClosed, TimeoutError, OSError) as e:
            log.warning("forward dial failed", error=str(e), cluster=self._spec.cluster_id)
            self.transport.close()
            return
        if self.transport.is_closing():
            if remote.transport is not None:
                remote.transport.close()
            return
        self.link(remote)
        self.transport.resume_reading()


async def start_forward(
    spec: ForwardSpec, dialer: Dialer, tasks: set[asyncio.Task[None]]
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _LocalSide(spec, dialer, tasks),
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


async def stop_forwards(servers: list[asyncio.Server], tasks: set[asyncio.Task[None]]) -> None:
    for s in servers:
        s.close()
    for t in list(tasks):
        t.cancel()
    for t in list(tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await t
