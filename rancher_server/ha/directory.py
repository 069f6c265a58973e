"""The replicas' shared directory in etcd, mirrored in memory on every replica by a watch:

- ``replicas/<name>``: a live replica and the address its peers reach it at;
- ``sessions/<cluster>/<session key>``: which replica holds an agent's tunnel (the cluster agent's
  key is the cluster id, a node agent's ``<cluster>:<node>``);
- ``owners/<cluster>``: the replica that drives the cluster (its controller's writes, its RBAC
  reconciler).

All three are put under the writing replica's lease, so a dead replica's entries vanish with it.
A session registered by another replica under a key this replica holds means the agent came
back through another replica: the stale local session is closed (``on_taken``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from aetcd import rpc

from rancher_server.store.etcd_conn import (
    EtcdConnection,
    Watch,
    WatchEvent,
    absent,
    delete_op,
    prefix_end,
)
from rancher_tunnel.logs import get_logger

DEFAULT_HA_PREFIX = b"/rancher-ha/"
EVENT_DELETE = 1  # mvccpb.Event.DELETE
REPLICAS, SESSIONS, OWNERS = "replicas", "sessions", "owners"

log = get_logger(component="ha-directory")


@dataclass(frozen=True)
class ReplicaInfo:
    name: str
    peer_address: str  # host:port of its mutual-TLS peer listener


@dataclass(frozen=True)
class SessionInfo:
    replica: str
    role: str  # "cluster" or "node"


def _value_is(key: bytes, value: bytes) -> object:
    return rpc.Compare(key=key, target=rpc.Compare.VALUE, result=rpc.Compare.EQUAL, value=value)


class Directory:
    """``on_change()`` is called on the watch thread after every applied batch of changes."""

    def __init__(self, conn: EtcdConnection, name: str, prefix: bytes = DEFAULT_HA_PREFIX) -> None:
        self.name = name
        self._conn = conn
        self._prefix = prefix
        self._lock = threading.Lock()
        self.replicas: dict[str, ReplicaInfo] = {}
        self.sessions: dict[str, dict[str, SessionInfo]] = {}  # cluster -> session key -> info
        self.owners: dict[str, str] = {}  # cluster -> replica
        self.on_change: list[Callable[[], None]] = []
        self.on_taken: list[Callable[[str, str], None]] = []  # (cluster, session key)
        self._local_sessions: dict[tuple[str, str], str] = {}  # (cluster, key) -> role
        self._watch: Watch | None = None

    # keys ---------------------------------------------------------------------------------
    def _key(self, *parts: str) -> bytes:
        return self._prefix + "/".join(parts).encode()

    def _mine(self) -> bytes:
        return self.name.encode()

    # the feed -----------------------------------------------------------------------------
    def start(self) -> None:
        revision = self._load()
        self._watch = Watch(self._conn, self._prefix, revision + 1, self._on_events,
                            self._load, self._on_broken)

    def _load(self) -> int:
        loaded = self._conn.range_prefix(self._prefix)
        with self._lock:
            self.replicas.clear()
            self.sessions.clear()
            self.owners.clear()
            for kv in loaded.kvs:
                self._apply(bytes(kv.key), bytes(kv.value))
        self._changed()
        return loaded.revision

    def _on_events(self, _revision: int, events: list[WatchEvent]) -> None:
        if not events:
            return
        with self._lock:
            for ev in events:
                key = bytes(ev.kv.key)
                if int(ev.type) == EVENT_DELETE:
                    self._apply(key, None)
                else:
                    self._apply(key, bytes(ev.kv.value))
        self._changed()

    def _on_broken(self, cause: str) -> None:
        log.warning("directory watch broken; retrying", cause=cause)

    def _changed(self) -> None:
        for hook in list(self.on_change):
            try:
                hook()
            except Exception:
                log.exception("directory listener failed")

    def _apply(self, key: bytes, value: bytes | None) -> None:
        parts = key[len(self._prefix):].decode().split("/")
        kind = parts[0]
        if kind == REPLICAS and len(parts) == 2:
            if value is None:
                self.replicas.pop(parts[1], None)
            else:
                doc = json.loads(value)
                self.replicas[parts[1]] = ReplicaInfo(parts[1], str(doc["peer_address"]))
        elif kind == SESSIONS and len(parts) == 3:
            cluster, skey = parts[1], parts[2]
            held = self.sessions.setdefault(cluster, {})
            if value is None:
                held.pop(skey, None)
                if not held:
                    del self.sessions[cluster]
                return
            doc = json.loads(value)
            info = SessionInfo(str(doc["replica"]), str(doc["role"]))
            held[skey] = info
            if info.replica != self.name and (cluster, skey) in self._local_sessions:
                del self._local_sessions[(cluster, skey)]
                for hook in list(self.on_taken):
                    hook(cluster, skey)
        elif kind == OWNERS and len(parts) == 2:
            if value is None:
                self.owners.pop(parts[1], None)
            else:
                self.owners[parts[1]] = value.decode()

    # what the rest of the replica asks ------------------------------------------------------
    def holder_of(self, cluster_id: str) -> str | None:
        """The replica to dial the cluster through: the cluster agent's, else a node agent's."""
        with self._lock:
            held = self.sessions.get(cluster_id, {})
            info = held.get(cluster_id)
            if info is None and held:
                info = held[sorted(held)[0]]
        return None if info is None else info.replica

    def cluster_agent_holder(self, cluster_id: str) -> str | None:
        with self._lock:
            info = self.sessions.get(cluster_id, {}).get(cluster_id)
        return None if info is None else info.replica

    def owner_of(self, cluster_id: str) -> str | None:
        with self._lock:
            return self.owners.get(cluster_id)

    def peer_address(self, replica: str) -> str | None:
        with self._lock:
            info = self.replicas.get(replica)
        return None if info is None else info.peer_address

    def counts(self) -> dict[str, int]:
        """Sessions per replica (cluster and node agents)."""
        out: dict[str, int] = {}
        with self._lock:
            for held in self.sessions.values():
                for info in held.values():
                    out[info.replica] = out.get(info.replica, 0) + 1
        return out

    # writes (blocking: call them from a thread) ---------------------------------------------
    def register_replica(self, lease_id: int, peer_address: str) -> None:
        doc = json.dumps({"peer_address": peer_address}).encode()
        self._conn.txn([], [_put(self._key(REPLICAS, self.name), doc, lease_id)])

    def register_session(self, lease_id: int, cluster_id: str, session_key: str,
                         role: str) -> None:
        with self._lock:
            self._local_sessions[(cluster_id, session_key)] = role
        doc = json.dumps({"replica": self.name, "role": role}).encode()
        self._conn.txn([], [_put(self._key(SESSIONS, cluster_id, session_key), doc, lease_id)])

    def register_sessions(self, lease_id: int, sessions: list[tuple[str, str, str]]) -> None:
        """Several ``(cluster, session key, role)`` in one transaction."""
        with self._lock:
            for cluster_id, session_key, role in sessions:
                self._local_sessions[(cluster_id, session_key)] = role
        self._conn.txn([], [
            _put(self._key(SESSIONS, cluster_id, session_key),
                 json.dumps({"replica": self.name, "role": role}).encode(), lease_id)
            for cluster_id, session_key, role in sessions])

    def unregister_session(self, cluster_id: str, session_key: str) -> None:
        """Drops the entry if it is still ours (another replica may hold the agent now)."""
        key = self._key(SESSIONS, cluster_id, session_key)
        with self._lock:
            role = self._local_sessions.pop((cluster_id, session_key), None)
        if role is None:
            return
        doc = json.dumps({"replica": self.name, "role": role}).encode()
        self._conn.txn([_value_is(key, doc)], [delete_op(key)])

    def reregister(self, lease_id: int, peer_address: str) -> None:
        """After a new lease: the replica and every session it holds, again."""
        self.register_replica(lease_id, peer_address)
        with self._lock:
            held = dict(self._local_sessions)
        for (cluster_id, session_key), role in held.items():
            self.register_session(lease_id, cluster_id, session_key, role)

    def try_own(self, lease_id: int, cluster_id: str) -> bool:
        key = self._key(OWNERS, cluster_id)
        ok, _ = self._conn.txn([absent(key)], [_put(key, self._mine(), lease_id)])
        if ok:
            with self._lock:
                self.owners[cluster_id] = self.name  # the watch confirms it
        return ok

    def release(self, cluster_id: str) -> None:
        """Deletes our owner entry; our mirror forgets it at once (not when the watch says so:
        until then a round would read it back as ours while another replica takes it)."""
        key = self._key(OWNERS, cluster_id)
        self._conn.txn([_value_is(key, self._mine())], [delete_op(key)])
        with self._lock:
            if self.owners.get(cluster_id) == self.name:
                del self.owners[cluster_id]

    def forget_cluster(self, cluster_id: str) -> None:
        """A deleted cluster: its owner entry goes (sessions end with their agents)."""
        self.release(cluster_id)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()


def _put(key: bytes, value: bytes, lease_id: int) -> object:
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value, lease=lease_id))


__all__ = ["Directory", "ReplicaInfo", "SessionInfo", "prefix_end"]
