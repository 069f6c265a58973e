"""The replica's HA machinery, started with the server when the store is etcd: the lease, the
directory (with this replica's agent sessions registered in it as they come and go), the peer
listener and pool, the forwarder and cluster ownership."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from rancher_server.config import ServerConfig
from rancher_server.ha.directory import Directory
from rancher_server.ha.forward import Forwarder
from rancher_server.ha.lease import ReplicaLease
from rancher_server.ha.ownership import Ownership
from rancher_server.ha.peer import PeerPool, PeerServer
from rancher_server.ha.peertls import peer_tls
from rancher_server.store import Store
from rancher_server.store.etcd_conn import open_connection
from rancher_server.tls import is_peer_certificate
from rancher_server.tunnel.agent_auth import AgentIdentity
from rancher_server.tunnel.registry import SessionRegistry
from rancher_tunnel.constants import Limits
from rancher_tunnel.logs import get_logger
from rancher_tunnel.session import Session

log = get_logger(component="ha")

# re-registers local sessions the directory lacks (a write lost to etcd); also the period
# of the idle peer tunnel check
REPAIR_EVERY_S = 5.0
REGISTER_BATCH = 100  # registrations per etcd transaction (etcd's default limit is 128 ops)
SessionOp = tuple[str, str, str, str]  # ("add" | "remove", cluster, session key, role)


@dataclass
class HA:
    name: str
    peer_address: str
    directory: Directory
    lease: ReplicaLease
    ownership: Ownership
    pool: PeerPool
    server: PeerServer
    forwarder: Forwarder
    _ops: asyncio.Queue[SessionOp]
    _tasks: list[asyncio.Task[None]]
    _stop: asyncio.Event
    pending: set[str]


async def start_ha(config: ServerConfig, store: Store, sessions: SessionRegistry, limits: Limits,
                   app_server: web.Server, bound_port: int,
                   tls_dir: Path) -> HA:
    name = config.replica
    conn = open_connection(config.store_url)
    directory = Directory(conn, name)
    await asyncio.to_thread(directory.start)
    host, port = config.peer_host_port(bound_port)
    dial_host = config.peer_dial_address(host, port).rpartition(":")[0].strip("[]")
    tls = await asyncio.to_thread(peer_tls, conn, name, [*config.hostnames, host, dial_host],
                                  tls_dir)
    server = PeerServer(lambda: app_server, limits, tls.server_context(), is_peer_certificate)
    await server.start(host, port)
    address = config.peer_dial_address(host, server.port)
    loop = asyncio.get_running_loop()

    def renewed(lease_id: int) -> None:  # the keeper's thread
        directory.reregister(lease_id, address)

    lease = await asyncio.to_thread(ReplicaLease, conn, renewed)
    await asyncio.to_thread(directory.register_replica, lease.lease_id, address)
    lease.start()
    pool = PeerPool(name, directory.peer_address, tls.client_context(), limits)
    ownership = Ownership(directory, lease, _cluster_ids(store))
    forwarder = Forwarder(name, pool, directory.holder_of, sessions.is_connected)
    ops: asyncio.Queue[SessionOp] = asyncio.Queue()

    pending: set[str] = set()  # session keys whose registration is queued

    def added(identity: AgentIdentity, _session: Session) -> None:
        pending.add(identity.session_key)
        ops.put_nowait(("add", identity.cluster.id, identity.session_key, identity.role))

    def removed(identity: AgentIdentity) -> None:
        ops.put_nowait(("remove", identity.cluster.id, identity.session_key, identity.role))

    def taken(cluster_id: str, session_key: str) -> None:  # the watch thread
        loop.call_soon_threadsafe(_close_taken, sessions, session_key)

    sessions.on_added.append(added)
    sessions.on_removed.append(removed)
    directory.on_taken.append(taken)
    def changed() -> None:  # the watch thread
        loop.call_soon_threadsafe(ownership.wake)

    directory.on_change.append(changed)
    for entry in sessions:  # sessions that came before the directory
        added(entry.identity, entry.session)
    stop = asyncio.Event()
    ha = HA(name, address, directory, lease, ownership, pool, server, forwarder, ops, [], stop,
            pending)
    ha._tasks.append(asyncio.create_task(_apply_session_ops(ha), name="ha-sessions"))
    ha._tasks.append(asyncio.create_task(ownership.run(stop), name="ha-ownership"))
    ha._tasks.append(asyncio.create_task(_repair(ha, sessions), name="ha-repair"))
    log.info("replica registered", replica=name, peer_address=address, lease=lease.lease_id)
    return ha


def _cluster_ids(store: Store) -> Callable[[], list[str]]:
    """The store's cluster ids, listed again only after the store changed (an ownership round
    runs on every directory change: listing every cluster each time was most of a replica's
    work while thousands of agents reconnected)."""
    memo: list[tuple[int, list[str]]] = []

    def ids() -> list[str]:
        revision = store.revision
        if not memo or memo[0][0] != revision:
            memo[:] = [(revision, [c.id for c in store.list_clusters()])]
        return memo[0][1]

    return ids


def _close_taken(sessions: SessionRegistry, session_key: str) -> None:
    for entry in sessions:
        if entry.identity.session_key == session_key and not entry.session.closed:
            log.info("agent now connected through another replica; closing its old session",
                     session=session_key)
            asyncio.get_running_loop().create_task(
                entry.session.close(1001, "replaced by a session on another replica"))


async def _apply_session_ops(ha: HA) -> None:
    """Registrations in the order they happened (an add and the remove of one key never swap);
    adds that queued up together go in one etcd transaction (a thousand agents reconnecting
    after a replica died cost a few transactions, not a thousand)."""
    while True:
        batch = [await ha._ops.get()]
        while not ha._ops.empty() and len(batch) < REGISTER_BATCH:
            batch.append(ha._ops.get_nowait())
        i = 0
        while i < len(batch):
            op, cluster_id, key, _role = batch[i]
            adds: list[tuple[str, str, str]] = []
            while i < len(batch) and batch[i][0] == "add":
                adds.append(batch[i][1:])
                i += 1
            try:
                if adds:
                    await asyncio.to_thread(ha.directory.register_sessions, ha.lease.lease_id,
                                            adds)
                    continue
                i += 1
                await asyncio.to_thread(ha.directory.unregister_session, cluster_id, key)
            except Exception as e:  # etcd unreachable: the repair loop registers again
                log.warning("session registration failed", op=op, session=key, error=str(e))
            finally:
                for _, _, added_key in adds:
                    ha.pending.discard(added_key)
        ha.ownership.wake()


async def _repair(ha: HA, sessions: SessionRegistry) -> None:
    """Every local session is in the directory (unless another replica took it since)."""
    while True:
        await asyncio.sleep(REPAIR_EVERY_S)
        for entry in sessions:
            ident = entry.identity
            if entry.session.closed:
                continue
            held = ha.directory.sessions.get(ident.cluster.id, {}).get(ident.session_key)
            if held is None and ident.session_key not in ha.pending:
                log.info("session missing from the directory; registering it again",
                         session=ident.session_key)
                ha.pending.add(ident.session_key)
                ha._ops.put_nowait(("add", ident.cluster.id, ident.session_key, ident.role))
        await ha.pool.close_idle(time.monotonic())


async def stop_ha(ha: HA) -> None:
    ha._stop.set()
    for task in ha._tasks:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    await ha.server.stop()
    ha.forwarder.close()
    await ha.pool.close()
    await asyncio.to_thread(ha.lease.close, True)  # our sessions and clusters go now
    ha.directory.close()
