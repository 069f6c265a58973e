"""The store on etcd (v3 API): every replica keeps the store's whole keyspace in memory, loaded by
one paged range read and kept current by a watch from that read's revision. Reads come from
memory (the hot path's lookups are cached until the next applied change, as SQLite's are until
the next commit). A write is one etcd transaction whose compares check what it read (a key's
``mod_revision``, a name's uniqueness key absent, "no child written since"); it returns only when
the watch has applied its revision (read-your-writes). A compare that fails re-reads memory and
tries again, so a concurrent writer on another replica gives a clean Conflict or NotFound.

Keys (under the prefix, default ``/rancher/``): ``<kind>/<id>`` holds one JSON document
(``etcd_memory`` lists the kinds), ``unique/<name>/<sha256>`` one per unique value (cluster
names and registration-token hashes, agent-credential hashes, usernames, bindings, project
names per cluster), ``audit/<ts ns>/<nonce>/<n>`` one audit entry, ``login-failures/<key>`` one
failed-login record (keys are hashes), ``pending-logins/<key>`` one login in flight
(``etcd_pending``), ``secrets/<name>`` one secret the replicas share (the
serving CA's certificate and key). Hashes stay hashes: apart from ``secrets/``, no secret is ever
written, only what SQLite stores. Audit entries, failed-login records and secrets are not loaded
into memory and wake no listener."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from aetcd import rpc

from rancher_server.store.base import (
    SUBJECT_KINDS,
    ApiToken,
    AuditEntry,
    Binding,
    Cluster,
    Conflict,
    GlobalBinding,
    LoginFailures,
    NotFound,
    Project,
    RoleTemplate,
    StorageUnavailable,
    Store,
    StoreError,
    User,
)
from rancher_server.store.etcd_conn import (
    Compare,
    EtcdConnection,
    RequestOp,
    Watch,
    WatchEvent,
    absent,
    delete_op,
    nothing_written_since,
    open_connection,
    parse_endpoints,
    prefix_end,
    put_op,
    same_object,
    unchanged,
)
from rancher_server.store.etcd_memory import (
    AUDIT,
    BINDINGS,
    CLUSTERS,
    GLOBAL_BINDINGS,
    LOGIN_FAILURES,
    PROJECTS,
    SECRETS,
    SETTINGS,
    TEMPLATES,
    TOKENS,
    UNIQUE,
    USERS,
    Doc,
    Memory,
    Row,
)
from rancher_server.store.etcd_pending import PendingLoginsMixin
from rancher_server.store.sqlite import new_cluster_id
from rancher_server.store.sqlite_access import DEFAULT_PROJECTS
from rancher_server.store.sqlite_auth import ADMIN_GLOBAL_ROLE, DEFAULT_GLOBAL_ROLE
from rancher_server.store.sqlite_common import READ_CACHE_MAX_ENTRIES, new_id
from rancher_tunnel.logs import get_logger

DEFAULT_PREFIX = b"/rancher/"
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops: larger cascades delete children ahead
WRITE_ATTEMPTS = 20  # re-plans after a failed compare (another replica wrote first)
APPLY_WAIT_S = 5.0  # a write waits this long for the watch to apply it, then answers 503
PROGRESS_AFTER_S = 0.05  # then asks etcd how far the watch has got (revision of another prefix)
UNIQUE_DIGEST_CHARS = 40
AUDIT_ID_SHIFT = 16  # an audit entry's id: create revision << 16 | its place in the transaction
EVENT_DELETE = 1  # mvccpb.Event.DELETE

log = get_logger(component="store-etcd")
T = TypeVar("T")
_MISS = object()


@dataclass
class Plan(Generic[T]):
    """One transaction: compares on what was read, the writes, and the answer (read from memory
    once the write has been applied). ``children``: deletes that may go ahead of it in earlier
    transactions when all would not fit in one."""

    compares: list[Compare]
    ops: list[RequestOp]
    result: Callable[[], T]
    children: list[RequestOp] = field(default_factory=list)


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class EtcdStore(PendingLoginsMixin):
    def __init__(self, url: str, prefix: bytes = DEFAULT_PREFIX) -> None:
        self._endpoints = parse_endpoints(url)
        self._prefix = prefix if prefix.endswith(b"/") else prefix + b"/"
        self._conn = open_connection(url)
        self._lock = threading.RLock()
        self._applied = threading.Condition(self._lock)
        self._mem = Memory(self._prefix)
        self._revision = 0  # applied: every change up to it is in memory
        self._event_revision = 0  # the last revision whose events were applied
        self._cache: dict[Hashable, Any] = {}
        self._listeners: list[Callable[[], None]] = []
        self._broken_cause = ""
        try:
            loaded = self._load()
        except BaseException:
            self._conn.close()
            raise
        self._watch = Watch(self._conn, self._prefix, loaded + 1, self._on_events,
                            self._load, self._on_broken)

    # The feed ----------------------------------------------------------------------------------

    def _load(self) -> int:
        """The whole keyspace at one revision (at start, and again after a compaction)."""
        loaded = self._conn.range_prefix(self._prefix)
        with self._lock:
            self._mem.clear()
            for kv in loaded.kvs:
                self._mem.put(bytes(kv.key), bytes(kv.value), int(kv.create_revision),
                              int(kv.mod_revision))
            self._revision = max(self._revision, loaded.revision)
            self._event_revision = max(self._event_revision, loaded.revision)
            self._cache.clear()
            self._applied.notify_all()
        if self._listeners:
            self._notify()
        return loaded.revision

    def _on_events(self, revision: int, events: list[WatchEvent]) -> None:
        changed = False
        with self._lock:
            for ev in events:
                key = bytes(ev.kv.key)
                if int(ev.type) == EVENT_DELETE:
                    changed = self._mem.delete(key) or changed
                else:
                    changed = self._mem.put(key, bytes(ev.kv.value), int(ev.kv.create_revision),
                                            int(ev.kv.mod_revision)) or changed
            if changed:
                self._cache.clear()
            if events:
                self._event_revision = max(self._event_revision, revision)
            self._revision = max(self._revision, revision)
            # Current as of now, under the lock that readers take: a reader that sees these
            # events also sees the picture as current (never the events with a stale mark).
            self._conn.note_watch_current()
            self._applied.notify_all()
        if self._broken_cause:
            log.info("etcd watch resumed", revision=revision)
            self._broken_cause = ""
        if changed:
            self._notify()

    def _on_broken(self, cause: str) -> None:
        if cause != self._broken_cause:  # once per cause, not once per retry
            log.warning("etcd watch broken; reads answer from memory until it resumes",
                        cause=cause, endpoint=self._conn.endpoint)
            self._broken_cause = cause

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("store listener failed")

    def _wait_applied(self, revision: int, own_write: bool = True) -> None:
        """Until the watch has applied ``revision``. Our own write's revision is awaited as
        events (etcd 3.4 may send a progress notice ahead of the events it covers); a revision
        that may be another prefix's (a failed compare) may be confirmed by a progress notice:
        if that notice was early, the next attempt's compare fails again and waits again."""
        deadline = time.monotonic() + APPLY_WAIT_S
        asked = own_write
        with self._applied:
            while (self._event_revision if own_write else self._revision) < revision:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StorageUnavailable(
                        f"etcd accepted a write but this replica's watch has not seen it in "
                        f"{APPLY_WAIT_S:g} s (at revision {self._revision}, waiting for "
                        f"{revision})")
                if not asked and self._applied.wait(min(left, PROGRESS_AFTER_S)):
                    continue
                if not asked:
                    self._watch.request_progress()
                    asked = True
                self._applied.wait(left)

    # Reads and writes --------------------------------------------------------------------------

    def _cached(self, key: Hashable, load: Callable[[], T]) -> T:
        """``load()`` under the lock, remembered until the watch applies the next change."""
        hit = self._cache.get(key, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[no-any-return]
        with self._lock:
            value = load()
            if len(self._cache) >= READ_CACHE_MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = value
            return value

    def _write(self, build: Callable[[int], Plan[T]]) -> T:
        """Plan from memory, commit, wait until applied; re-plan when a compare failed."""
        for _ in range(WRITE_ATTEMPTS):
            with self._lock:
                plan = build(self._revision)
            if not plan.ops and not plan.children:
                with self._lock:
                    return plan.result()
            if len(plan.children) + len(plan.ops) > MAX_TXN_OPS:
                for chunk in _chunks(plan.children, MAX_TXN_OPS):
                    _, revision = self._conn.txn([], chunk)
                    self._wait_applied(revision, own_write=False)  # some may be gone already
                continue
            ok, revision, seen = self._conn.guarded_txn(plan.compares, plan.children + plan.ops)
            if ok:
                self._wait_applied(revision)
                with self._lock:
                    return plan.result()
            # The write that beat us is one of our prefix's, so its event will come: wait for
            # it as an event (a progress notice may run ahead of it). A compare that failed
            # because a key is gone has no such revision: then wait for the store's revision.
            if seen:
                self._wait_applied(seen)
            self._wait_applied(revision, own_write=False)
        raise StorageUnavailable(f"gave up after {WRITE_ATTEMPTS} conflicting writes")

    def _key(self, kind: str, oid: str) -> bytes:
        return self._prefix + f"{kind}/{oid}".encode()

    def _unique(self, name: str, *parts: object) -> bytes:
        digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:UNIQUE_DIGEST_CHARS]
        return self._prefix + f"{UNIQUE}/{name}/{digest}".encode()

    @staticmethod
    def _json(doc: Doc) -> bytes:
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def _put(self, key: bytes, doc: Doc) -> RequestOp:
        return put_op(key, self._json(doc))

    def _row(self, kind: str, oid: str, what: str) -> Row:
        row = self._mem.get(kind, oid)
        if row is None:
            raise NotFound(f"{what} {oid!r} not found")
        return row

    # What ``etcd_migrate`` writes with.
    @property
    def connection(self) -> EtcdConnection:
        return self._conn

    def object_key(self, kind: str, suffix: str) -> bytes:
        return self._key(kind, suffix)

    def unique_key(self, name: str, *parts: object) -> bytes:
        return self._unique(name, *parts)

    def cluster_unique_keys(self, doc: Doc) -> list[bytes]:
        return self._cluster_keys(doc)

    def binding_unique_key(self, doc: Doc) -> bytes:
        return self._binding_unique(doc)

    def encode(self, doc: Doc) -> bytes:
        return self._json(doc)

    @property
    def revision(self) -> int:
        """The etcd revision this replica has applied (grows with every change anyone makes)."""
        return self._revision

    def add_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called from the watch thread after every applied change."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def close(self) -> None:
        self._watch.close()
        self._conn.close()

    # Clusters ----------------------------------------------------------------------------------

    @staticmethod
    def _cluster(row: Row) -> Cluster:
        d = row.doc
        return Cluster(id=d["id"], name=d["name"], created_at=d["created_at"],
                       api_endpoint=d["api_endpoint"], ca_cert=d["ca_cert"],
                       registered_at=d["registered_at"])

    def _cluster_keys(self, d: Doc) -> list[bytes]:
        keys = [self._unique("cluster-name", d["name"]),
                self._unique("cluster-token", d["token_hash"])]
        if d.get("agent_credential_hash"):
            keys.append(self._unique("agent-credential", d["agent_credential_hash"]))
        return keys

    def _project_plan(self, cluster_id: str, name: str, description: str,
                      project_id: str | None) -> tuple[str, list[Compare], list[RequestOp]]:
        if self._mem.first("project_name", (cluster_id, name)) is not None:
            raise Conflict(f"cluster {cluster_id} already has a project {name!r}")
        if project_id is not None and self._mem.get(PROJECTS, project_id) is not None:
            raise Conflict(f"a project {project_id!r} already exists")
        pid = project_id or new_id("p-")
        doc = {"id": pid, "cluster_id": cluster_id, "name": name, "description": description,
               "created_at": time.time()}
        key, unique = self._key(PROJECTS, pid), self._unique("project-name", cluster_id, name)
        return pid, [absent(key), absent(unique)], [self._put(key, doc), put_op(unique, b"")]

    def create_cluster(self, name: str, token_hash: str) -> Cluster:
        """The cluster with its ``Default`` and ``System`` projects, in one transaction."""
        def build(_: int) -> Plan[Cluster]:
            if self._mem.first("cluster_name", name) is not None:
                raise Conflict(f"a cluster named {name!r} already exists")
            if self._mem.first("cluster_token", token_hash) is not None:
                raise Conflict("this registration token is already in use")
            cid = new_cluster_id()
            while self._mem.get(CLUSTERS, cid) is not None:  # taken: draw again (as SQLite)
                cid = new_cluster_id()
            doc = {"id": cid, "name": name, "token_hash": token_hash, "api_endpoint": "",
                   "ca_cert": "", "created_at": time.time(), "registered_at": None,
                   "agent_credential_hash": None}
            key = self._key(CLUSTERS, cid)
            compares = [absent(key)] + [absent(k) for k in self._cluster_keys(doc)]
            ops = [self._put(key, doc)] + [put_op(k, cid.encode()) for k in self._cluster_keys(doc)]
            for project, description in DEFAULT_PROJECTS:
                _pid, c, o = self._project_plan(cid, project, description, None)
                compares += c
                ops += o
            return Plan(compares, ops, lambda: self.get_cluster(cid))

        return self._write(build)

    def get_cluster(self, cluster_id: str) -> Cluster:
        with self._lock:
            return self._cluster(self._row(CLUSTERS, cluster_id, "cluster"))

    def list_clusters(self) -> list[Cluster]:
        with self._lock:
            return [self._cluster(r) for r in self._mem.all(CLUSTERS)]

    def delete_cluster(self, cluster_id: str) -> None:
        """Its projects and bindings go with it."""
        def build(seen: int) -> Plan[None]:
            row = self._row(CLUSTERS, cluster_id, "cluster")
            children: list[RequestOp] = []
            for b in self._mem.lookup("binding_cluster", cluster_id):
                children += self._binding_deletes(b)
            for p in self._mem.lookup("project_cluster", cluster_id):
                children += [delete_op(p.key),
                             delete_op(self._unique("project-name", cluster_id, p.doc["name"]))]
            compares = [same_object(row.key, row.create_revision),
                        nothing_written_since(self._key(PROJECTS, ""), seen),
                        nothing_written_since(self._key(BINDINGS, ""), seen)]
            ops = [delete_op(row.key)] + [delete_op(k) for k in self._cluster_keys(row.doc)]
            return Plan(compares, ops, lambda: None, children)

        self._write(build)

    def cluster_by_token_hash(self, token_hash: str) -> Cluster | None:
        with self._lock:
            row = self._mem.first("cluster_token", token_hash)
            return None if row is None else self._cluster(row)

    def _update_cluster(self, cluster_id: str, change: Callable[[Doc], Doc | None]) -> bool:
        """Rewrite one cluster's document (``change`` returns None: nothing to write)."""
        def build(_: int) -> Plan[bool]:
            row = self._row(CLUSTERS, cluster_id, "cluster")
            new = change(dict(row.doc))
            if new is None:
                return Plan([], [], lambda: False)
            old_keys, new_keys = set(self._cluster_keys(row.doc)), self._cluster_keys(new)
            compares = [unchanged(row.key, row.mod_revision)]
            ops = [self._put(row.key, new)]
            for k in new_keys:
                if k not in old_keys:
                    compares.append(absent(k))
                    ops.append(put_op(k, cluster_id.encode()))
            ops += [delete_op(k) for k in old_keys - set(new_keys)]
            return Plan(compares, ops, lambda: True)

        return self._write(build)

    def set_cluster_token_hash(self, cluster_id: str, token_hash: str) -> None:
        self._update_cluster(cluster_id, lambda d: {**d, "token_hash": token_hash})

    def record_registration(self, cluster_id: str, api_endpoint: str, ca_cert: str) -> Cluster:
        self._update_cluster(cluster_id, lambda d: {
            **d, "api_endpoint": api_endpoint, "ca_cert": ca_cert, "registered_at": time.time()})
        return self.get_cluster(cluster_id)

    def cluster_by_agent_credential_hash(self, credential_hash: str) -> Cluster | None:
        with self._lock:
            row = self._mem.first("agent_credential", credential_hash)
            return None if row is None else self._cluster(row)

    def has_agent_credential(self, cluster_id: str) -> bool:
        with self._lock:
            return bool(self._row(CLUSTERS, cluster_id, "cluster").doc.get(
                "agent_credential_hash"))

    def issue_agent_credential(self, cluster_id: str, credential_hash: str) -> bool:
        """Set the agent credential only if the cluster has none yet (first registration wins,
        on whichever replica it lands)."""
        try:
            return self._update_cluster(cluster_id, lambda d: None if d.get(
                "agent_credential_hash") else {**d, "agent_credential_hash": credential_hash})
        except NotFound:
            return False

    def clear_agent_credential(self, cluster_id: str) -> None:
        self._update_cluster(cluster_id, lambda d: {**d, "agent_credential_hash": None})

    # Users and tokens --------------------------------------------------------------------------

    def _user(self, row: Row) -> User:
        d = row.doc
        admin = any(g.doc["role"] == ADMIN_GLOBAL_ROLE
                    for g in self._mem.lookup("global_subject", ("user", d["id"])))
        return User(id=d["id"], username=d["username"], display_name=d["display_name"],
                    password_hash=d["password_hash"], enabled=d["enabled"], is_admin=admin,
                    created_at=d["created_at"], groups=tuple(d["groups"]))

    def _global_plan(self, kind: str, subject: str, role: str) -> tuple[list[Compare],
                                                                       list[RequestOp]]:
        gid = new_id("grb-")
        doc = {"id": gid, "subject_kind": kind, "subject": subject, "role": role,
               "created_at": time.time()}
        key, unique = self._key(GLOBAL_BINDINGS, gid), self._unique("gbinding", kind, subject, role)
        return [absent(key), absent(unique)], [self._put(key, doc), put_op(unique, gid.encode())]

    def create_user(
        self, username: str, display_name: str, password_hash: str, *, is_admin: bool = False,
        groups: Iterable[str] = (),
    ) -> User:
        group_list = sorted(set(groups))

        def build(_: int) -> Plan[User]:
            if self._mem.first("username", username) is not None:
                raise Conflict(f"a user named {username!r} already exists")
            uid = new_id("u-")
            doc = {"id": uid, "username": username, "display_name": display_name,
                   "password_hash": password_hash, "enabled": True, "created_at": time.time(),
                   "groups": group_list}
            key, unique = self._key(USERS, uid), self._unique("username", username)
            compares = [absent(key), absent(unique)]
            ops = [self._put(key, doc), put_op(unique, uid.encode())]
            # Rancher gives every new user the global role "user"; "admin" is a binding too.
            for role in (DEFAULT_GLOBAL_ROLE, ADMIN_GLOBAL_ROLE) if is_admin else (
                    DEFAULT_GLOBAL_ROLE,):
                c, o = self._global_plan("user", uid, role)
                compares += c
                ops += o
            return Plan(compares, ops, lambda: self._user(self._row(USERS, uid, "user")))

        return self._write(build)

    def get_user(self, user_id: str) -> User:
        with self._lock:
            return self._user(self._row(USERS, user_id, "user"))

    def user_by_username(self, username: str) -> User | None:
        with self._lock:
            row = self._mem.first("username", username)
            return None if row is None else self._user(row)

    def list_users(self) -> list[User]:
        with self._lock:
            return [self._user(r) for r in self._mem.all(USERS)]

    def count_users(self) -> int:
        with self._lock:
            return len(self._mem.rows[USERS])

    def update_user(
        self, user_id: str, *, display_name: str | None = None, enabled: bool | None = None,
        password_hash: str | None = None, is_admin: bool | None = None,
    ) -> User:
        fields: Doc = {}
        if display_name is not None:
            fields["display_name"] = display_name
        if enabled is not None:
            fields["enabled"] = enabled
        if password_hash is not None:
            fields["password_hash"] = password_hash

        def build(_: int) -> Plan[User]:
            row = self._row(USERS, user_id, "user")
            compares, ops = [unchanged(row.key, row.mod_revision)], []
            if fields:
                ops.append(self._put(row.key, {**row.doc, **fields}))
            if is_admin is not None:
                admin = [g for g in self._mem.lookup("global_subject", ("user", user_id))
                         if g.doc["role"] == ADMIN_GLOBAL_ROLE]
                if is_admin and not admin:
                    c, o = self._global_plan("user", user_id, ADMIN_GLOBAL_ROLE)
                    compares += c
                    ops += o
                for g in admin if not is_admin else ():
                    ops += self._global_deletes(g)
            return Plan(compares, ops, lambda: self._user(self._row(USERS, user_id, "user")))

        return self._write(build)

    def set_user_groups(self, user_id: str, groups: Iterable[str]) -> User:
        group_list = sorted(set(groups))

        def build(_: int) -> Plan[User]:
            row = self._row(USERS, user_id, "user")
            return Plan([unchanged(row.key, row.mod_revision)],
                        [self._put(row.key, {**row.doc, "groups": group_list})],
                        lambda: self._user(self._row(USERS, user_id, "user")))

        return self._write(build)

    def delete_user(self, user_id: str) -> None:
        """Its tokens, bindings and global bindings go with it."""
        def build(seen: int) -> Plan[None]:
            row = self._row(USERS, user_id, "user")
            children = [delete_op(t.key) for t in self._mem.lookup("user_tokens", user_id)]
            for b in self._mem.lookup("binding_subject", ("user", user_id)):
                children += self._binding_deletes(b)
            for g in self._mem.lookup("global_subject", ("user", user_id)):
                children += self._global_deletes(g)
            compares = [same_object(row.key, row.create_revision),
                        nothing_written_since(self._key(TOKENS, user_id + "/"), seen),
                        nothing_written_since(self._key(BINDINGS, ""), seen),
                        nothing_written_since(self._key(GLOBAL_BINDINGS, ""), seen)]
            ops = [delete_op(row.key),
                   delete_op(self._unique("username", row.doc["username"]))]
            return Plan(compares, ops, lambda: None, children)

        self._write(build)

    @staticmethod
    def _token(row: Row) -> ApiToken:
        d = row.doc
        return ApiToken(id=d["id"], user_id=d["user_id"], secret_hash=d["secret_hash"],
                        kind=d["kind"], description=d["description"], created_at=d["created_at"],
                        expires_at=d["expires_at"], enabled=d["enabled"],
                        last_used_at=d["last_used_at"])

    def create_token(
        self, user_id: str, secret_hash: str, *, kind: str, description: str,
        expires_at: float | None, token_id: str | None = None,
    ) -> ApiToken:
        def build(_: int) -> Plan[ApiToken]:
            user = self._row(USERS, user_id, "user")
            if token_id is not None and self._mem.get(TOKENS, token_id) is not None:
                raise StoreError(f"cannot create token: {token_id!r} exists")
            tid = token_id or new_id("token-")
            doc = {"id": tid, "user_id": user_id, "secret_hash": secret_hash, "kind": kind,
                   "description": description, "created_at": time.time(),
                   "expires_at": expires_at, "enabled": True, "last_used_at": None}
            key = self._key(TOKENS, f"{user_id}/{tid}")
            return Plan([same_object(user.key, user.create_revision), absent(key)],
                        [self._put(key, doc)],
                        lambda: self._token(self._row(TOKENS, tid, "token")))

        return self._write(build)

    def get_token(self, token_id: str) -> ApiToken:
        with self._lock:
            return self._token(self._row(TOKENS, token_id, "token"))

    def token_with_user(self, token_id: str) -> tuple[ApiToken, User] | None:
        """The hot path (every authenticated request): from memory, cached until a change."""
        def load() -> tuple[ApiToken, User] | None:
            token = self._mem.get(TOKENS, token_id)
            user = None if token is None else self._mem.get(USERS, token.doc["user_id"])
            return None if token is None or user is None else (
                self._token(token), self._user(user))

        return self._cached(("token", token_id), load)

    def list_tokens(self, user_id: str | None = None) -> list[ApiToken]:
        with self._lock:
            rows = (self._mem.all(TOKENS) if user_id is None
                    else self._mem.lookup("user_tokens", user_id))
            return [self._token(r) for r in rows]

    def delete_token(self, token_id: str) -> None:
        def build(_: int) -> Plan[None]:
            row = self._row(TOKENS, token_id, "token")
            return Plan([same_object(row.key, row.create_revision)], [delete_op(row.key)],
                        lambda: None)

        self._write(build)

    def touch_tokens(self, last_used: Mapping[str, float]) -> None:
        """Last-use times, a transaction per chunk; a token deleted meanwhile stays deleted."""
        items = list(last_used.items())
        for chunk in _chunks(items, MAX_TXN_OPS):
            def build(_: int, chunk: Sequence[tuple[str, float]] = chunk) -> Plan[None]:
                compares, ops = [], []
                for tid, ts in chunk:
                    row = self._mem.get(TOKENS, tid)
                    if row is not None:
                        compares.append(unchanged(row.key, row.mod_revision))
                        ops.append(self._put(row.key, {**row.doc, "last_used_at": ts}))
                return Plan(compares, ops, lambda: None)

            self._write(build)

    def purge_expired_tokens(self, now: float) -> int:
        with self._lock:
            expired = [r.key for r in self._mem.rows[TOKENS].values()
                       if r.doc["expires_at"] is not None and r.doc["expires_at"] <= now]
        for chunk in _chunks(expired, MAX_TXN_OPS):
            _, revision = self._conn.txn([], [delete_op(k) for k in chunk])
            self._wait_applied(revision, own_write=False)  # another replica may purge too
        return len(expired)

    # Cluster and project bindings --------------------------------------------------------------

    @staticmethod
    def _binding(row: Row) -> Binding:
        d = row.doc
        return Binding(id=d["id"], cluster_id=d["cluster_id"], subject_kind=d["subject_kind"],
                       subject=d["subject"], role=d["role"], created_at=d["created_at"],
                       project_id=d["project_id"])

    def _binding_unique(self, d: Doc) -> bytes:
        return self._unique("binding", d["cluster_id"], d["project_id"], d["subject_kind"],
                            d["subject"], d["role"])

    def _binding_deletes(self, row: Row) -> list[RequestOp]:
        return [delete_op(row.key), delete_op(self._binding_unique(row.doc))]

    def create_binding(
        self, cluster_id: str, subject_kind: str, subject: str, role: str,
        project_id: str | None = None,
    ) -> Binding:
        if subject_kind not in SUBJECT_KINDS:
            raise StoreError(f"subject kind must be one of {SUBJECT_KINDS}")

        def build(_: int) -> Plan[Binding]:
            compares: list[Compare] = []
            if project_id is not None:
                project = self._mem.get(PROJECTS, project_id)
                if project is None or project.doc["cluster_id"] != cluster_id:
                    raise NotFound(f"project {project_id!r} not found in cluster {cluster_id!r}")
                compares.append(same_object(project.key, project.create_revision))
            parents = [self._mem.get(CLUSTERS, cluster_id)]
            if subject_kind == "user":
                parents.append(self._mem.get(USERS, subject))
            for parent in parents:
                if parent is None:
                    raise NotFound(f"no such cluster {cluster_id!r} or user")
                compares.append(same_object(parent.key, parent.create_revision))
            bid = new_id("prtb-" if project_id else "crtb-")
            doc = {"id": bid, "cluster_id": cluster_id, "project_id": project_id,
                   "subject_kind": subject_kind, "subject": subject, "role": role,
                   "created_at": time.time()}
            key, unique = self._key(BINDINGS, bid), self._binding_unique(doc)
            if self._mem.get(BINDINGS, bid) is None and any(
                    b.doc["subject_kind"] == subject_kind and b.doc["subject"] == subject
                    and b.doc["role"] == role and b.doc["project_id"] == project_id
                    for b in self._mem.lookup("binding_cluster", cluster_id)):
                raise Conflict("this binding already exists")
            compares += [absent(key), absent(unique)]
            return Plan(compares, [self._put(key, doc), put_op(unique, bid.encode())],
                        lambda: self._binding(self._row(BINDINGS, bid, "binding")))

        return self._write(build)

    def get_binding(self, binding_id: str) -> Binding:
        with self._lock:
            return self._binding(self._row(BINDINGS, binding_id, "binding"))

    def list_bindings(
        self, cluster_id: str | None = None, project_id: str | None = None
    ) -> list[Binding]:
        with self._lock:
            rows = (self._mem.all(BINDINGS) if cluster_id is None
                    else self._mem.lookup("binding_cluster", cluster_id))
            return [self._binding(r) for r in rows
                    if project_id is None or r.doc["project_id"] == project_id]

    def bindings_for(
        self, user_id: str, groups: Iterable[str], cluster_id: str | None = None
    ) -> list[Binding]:
        """Bindings whose subject is this user or one of these groups (cached until a change)."""
        group_list = tuple(groups)

        def load() -> tuple[Binding, ...]:
            subjects = [("user", user_id)] + [("group", g) for g in group_list]
            return tuple(self._binding(r) for r in self._mem.many("binding_subject", subjects)
                         if cluster_id is None or r.doc["cluster_id"] == cluster_id)

        return list(self._cached(("bindings", user_id, group_list, cluster_id), load))

    def delete_binding(self, binding_id: str) -> None:
        def build(_: int) -> Plan[None]:
            row = self._row(BINDINGS, binding_id, "binding")
            return Plan([same_object(row.key, row.create_revision)], self._binding_deletes(row),
                        lambda: None)

        self._write(build)

    # Global role bindings ----------------------------------------------------------------------

    @staticmethod
    def _global(row: Row) -> GlobalBinding:
        d = row.doc
        return GlobalBinding(id=d["id"], subject_kind=d["subject_kind"], subject=d["subject"],
                             role=d["role"], created_at=d["created_at"])

    def _global_deletes(self, row: Row) -> list[RequestOp]:
        d = row.doc
        return [delete_op(row.key),
                delete_op(self._unique("gbinding", d["subject_kind"], d["subject"], d["role"]))]

    def create_global_binding(self, subject_kind: str, subject: str, role: str) -> GlobalBinding:
        if subject_kind not in SUBJECT_KINDS:
            raise StoreError(f"subject kind must be one of {SUBJECT_KINDS}")

        def build(_: int) -> Plan[GlobalBinding]:
            compares: list[Compare] = []
            if subject_kind == "user":
                user = self._mem.get(USERS, subject)
                if user is None:
                    raise NotFound(f"user {subject!r} not found")
                compares.append(same_object(user.key, user.create_revision))
            if any(g.doc["role"] == role
                   for g in self._mem.lookup("global_subject", (subject_kind, subject))):
                raise Conflict("this global role binding already exists")
            c, ops = self._global_plan(subject_kind, subject, role)
            gid = ops[1].request_put.value.decode()
            return Plan(compares + c, ops,
                        lambda: self._global(self._row(GLOBAL_BINDINGS, gid, "global binding")))

        return self._write(build)

    def get_global_binding(self, binding_id: str) -> GlobalBinding:
        with self._lock:
            return self._global(self._row(GLOBAL_BINDINGS, binding_id, "global role binding"))

    def list_global_bindings(self) -> list[GlobalBinding]:
        with self._lock:
            return [self._global(r) for r in self._mem.all(GLOBAL_BINDINGS)]

    def global_bindings_for(self, user_id: str, groups: Iterable[str]) -> list[GlobalBinding]:
        group_list = tuple(groups)

        def load() -> tuple[GlobalBinding, ...]:
            subjects = [("user", user_id)] + [("group", g) for g in group_list]
            return tuple(self._global(r) for r in self._mem.many("global_subject", subjects))

        return list(self._cached(("global_bindings", user_id, group_list), load))

    def delete_global_binding(self, binding_id: str) -> None:
        def build(_: int) -> Plan[None]:
            row = self._row(GLOBAL_BINDINGS, binding_id, "global role binding")
            return Plan([same_object(row.key, row.create_revision)], self._global_deletes(row),
                        lambda: None)

        self._write(build)

    # Role templates ----------------------------------------------------------------------------

    @staticmethod
    def _template(row: Row) -> RoleTemplate:
        d = row.doc
        return RoleTemplate(
            id=d["id"], display_name=d["display_name"], context=d["context"],
            rules=tuple(d["rules"]), inherits=tuple(d["inherits"]), external=d["external"],
            locked=d["locked"], hidden=d["hidden"], description=d["description"],
            created_at=d["created_at"])

    @staticmethod
    def _template_doc(t: RoleTemplate, tid: str, created_at: float) -> Doc:
        doc = asdict(t)
        doc.pop("builtin")
        doc.update(id=tid, created_at=created_at, rules=list(t.rules), inherits=list(t.inherits))
        return doc

    def create_template(self, template: RoleTemplate) -> RoleTemplate:
        def build(_: int) -> Plan[RoleTemplate]:
            if template.id and self._mem.get(TEMPLATES, template.id) is not None:
                raise Conflict(f"a role template {template.id!r} already exists")
            tid = template.id or new_id("rt-")
            key = self._key(TEMPLATES, tid)
            return Plan([absent(key)], [self._put(key, self._template_doc(
                template, tid, time.time()))], lambda: self.get_template(tid))

        return self._write(build)

    def get_template(self, template_id: str) -> RoleTemplate:
        with self._lock:
            return self._template(self._row(TEMPLATES, template_id, "role template"))

    def list_templates(self) -> list[RoleTemplate]:
        with self._lock:
            return [self._template(r) for r in self._mem.all(TEMPLATES)]

    def update_template(self, template: RoleTemplate) -> RoleTemplate:
        def build(_: int) -> Plan[RoleTemplate]:
            row = self._row(TEMPLATES, template.id, "role template")
            doc = self._template_doc(template, template.id, row.doc["created_at"])
            return Plan([unchanged(row.key, row.mod_revision)], [self._put(row.key, doc)],
                        lambda: self.get_template(template.id))

        return self._write(build)

    def delete_template(self, template_id: str) -> None:
        def build(seen: int) -> Plan[None]:
            used = (len(self._mem.lookup("binding_role", template_id))
                    + len(self._mem.lookup("global_role", template_id)))
            if used:
                raise Conflict(f"role template {template_id!r} is bound {used} time(s)")
            row = self._row(TEMPLATES, template_id, "role template")
            return Plan([same_object(row.key, row.create_revision),
                         nothing_written_since(self._key(BINDINGS, ""), seen),
                         nothing_written_since(self._key(GLOBAL_BINDINGS, ""), seen)],
                        [delete_op(row.key)], lambda: None)

        self._write(build)

    # Projects ----------------------------------------------------------------------------------

    @staticmethod
    def _project(row: Row) -> Project:
        d = row.doc
        return Project(id=d["id"], cluster_id=d["cluster_id"], name=d["name"],
                       description=d["description"], created_at=d["created_at"])

    def create_project(
        self, cluster_id: str, name: str, description: str = "", project_id: str | None = None
    ) -> Project:
        def build(_: int) -> Plan[Project]:
            cluster = self._row(CLUSTERS, cluster_id, "cluster")
            pid, compares, ops = self._project_plan(cluster_id, name, description, project_id)
            return Plan([same_object(cluster.key, cluster.create_revision), *compares], ops,
                        lambda: self.get_project(pid))

        return self._write(build)

    def get_project(self, project_id: str) -> Project:
        with self._lock:
            return self._project(self._row(PROJECTS, project_id, "project"))

    def list_projects(self, cluster_id: str | None = None) -> list[Project]:
        with self._lock:
            rows = (self._mem.all(PROJECTS) if cluster_id is None
                    else self._mem.lookup("project_cluster", cluster_id))
            return [self._project(r) for r in rows]

    def update_project(self, project_id: str, *, description: str) -> Project:
        def build(_: int) -> Plan[Project]:
            row = self._row(PROJECTS, project_id, "project")
            return Plan([unchanged(row.key, row.mod_revision)],
                        [self._put(row.key, {**row.doc, "description": description})],
                        lambda: self.get_project(project_id))

        return self._write(build)

    def delete_project(self, project_id: str) -> None:
        """Its bindings go with it."""
        def build(seen: int) -> Plan[None]:
            row = self._row(PROJECTS, project_id, "project")
            children: list[RequestOp] = []
            for b in self._mem.lookup("binding_project", project_id):
                children += self._binding_deletes(b)
            unique = self._unique("project-name", row.doc["cluster_id"], row.doc["name"])
            return Plan([same_object(row.key, row.create_revision),
                         nothing_written_since(self._key(BINDINGS, ""), seen)],
                        [delete_op(row.key), delete_op(unique)], lambda: None, children)

        self._write(build)

    # Audit log and settings --------------------------------------------------------------------

    def _audit_key(self, ts: float, nonce: str, n: int) -> bytes:
        return self._prefix + f"{AUDIT}/{round(ts * 1e9):020d}/{nonce}/{n:04d}".encode()

    def append_audit(self, entries: Iterable[AuditEntry]) -> None:
        """A transaction per ``MAX_TXN_OPS`` entries, in order. Not loaded into memory: read from
        etcd by ``list_audit``; the audit writer purges entries older than its retention."""
        rows = list(entries)
        for chunk in _chunks(rows, MAX_TXN_OPS):
            nonce = secrets.token_hex(4)
            ops = []
            for n, e in enumerate(chunk):
                doc = {"ts": e.ts, "user_id": e.user_id, "action": e.action, "target": e.target,
                       "result": e.result, "remote": e.remote, "n": n}
                ops.append(put_op(self._audit_key(max(e.ts, 0.0), nonce, n), self._json(doc)))
            self._conn.txn([], ops)

    def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEntry]:
        """Newest first; ids are ``create revision << 16 | place in its transaction``."""
        start = self._prefix + f"{AUDIT}/".encode()
        request = rpc.RangeRequest(
            # Ties inside a revision come in any order: one transaction's worth of slack for the
            # entries before_id skips in its revision, one for the revision cut by the limit.
            key=start, range_end=prefix_end(start), limit=limit + 2 * MAX_TXN_OPS,
            sort_target=rpc.RangeRequest.CREATE, sort_order=rpc.RangeRequest.DESCEND,
            max_create_revision=(before_id >> AUDIT_ID_SHIFT) if before_id else 0)
        found = []
        for kv in self._conn.range_raw(request).kvs:
            d = json.loads(kv.value)
            aid = (int(kv.create_revision) << AUDIT_ID_SHIFT) | int(d["n"])
            if before_id is None or aid < before_id:
                found.append(AuditEntry(ts=d["ts"], user_id=d["user_id"], action=d["action"],
                                        target=d["target"], result=d["result"],
                                        remote=d["remote"], id=aid))
        found.sort(key=lambda a: a.id, reverse=True)
        return found[:limit]

    def purge_audit(self, older_than: float) -> int:
        start = self._prefix + f"{AUDIT}/".encode()
        return self._conn.delete_range(start, self._audit_key(max(older_than, 0.0), "", 0))

    def get_setting(self, name: str) -> str | None:
        with self._lock:
            row = self._mem.get(SETTINGS, name)
            return None if row is None else str(row.doc["value"])

    def set_setting(self, name: str, value: str) -> None:
        key = self._key(SETTINGS, name)
        self._write(lambda _: Plan([], [self._put(key, {"name": name, "value": value})],
                                   lambda: None))


    # Failed-login records and secrets ----------------------------------------------------------

    def _record_key(self, kind: str, name: str) -> bytes:
        return self._prefix + f"{kind}/".encode() + name.encode()

    def _get_kv(self, key: bytes) -> Any:
        kvs = self._conn.range_raw(rpc.RangeRequest(key=key)).kvs
        return kvs[0] if kvs else None

    @staticmethod
    def _failures(kv: Any) -> LoginFailures | None:
        if kv is None:
            return None
        d = json.loads(kv.value)
        return LoginFailures(failures=int(d["failures"]), last_failure=float(d["last_failure"]),
                             locked_until=float(d["locked_until"]),
                             expires_at=float(d["expires_at"]))

    def login_failure(self, key: str) -> LoginFailures | None:
        return self._failures(self._get_kv(self._record_key(LOGIN_FAILURES, key)))

    def update_login_failure(
        self, key: str, change: Callable[[LoginFailures | None], LoginFailures | None]
    ) -> LoginFailures | None:
        """Read from etcd, then one transaction that holds only if the key is as read (its mod
        revision, or absent); another replica's failure in between: read again and retry."""
        ekey = self._record_key(LOGIN_FAILURES, key)
        for _ in range(WRITE_ATTEMPTS):
            kv = self._get_kv(ekey)
            new = change(self._failures(kv))
            guard = absent(ekey) if kv is None else unchanged(ekey, int(kv.mod_revision))
            if new is None:
                if kv is None:
                    return None
                op = delete_op(ekey)
            else:
                op = put_op(ekey, self._json(asdict(new)))
            ok, _ = self._conn.txn([guard], [op])
            if ok:
                return new
        raise StorageUnavailable(f"gave up after {WRITE_ATTEMPTS} conflicting writes")

    def clear_login_failure(self, key: str) -> None:
        self._conn.txn([], [delete_op(self._record_key(LOGIN_FAILURES, key))])

    def purge_login_failures(self, now: float) -> int:
        """One transaction per chunk, each deleting only records unchanged since read (a chunk
        whose record got a new failure meanwhile is left for the next purge)."""
        start = self._prefix + f"{LOGIN_FAILURES}/".encode()
        expired = [(bytes(kv.key), int(kv.mod_revision))
                   for kv in self._conn.range_prefix(start).kvs
                   if float(json.loads(kv.value)["expires_at"]) < now]
        purged = 0
        for chunk in _chunks(expired, MAX_TXN_OPS):
            ok, _ = self._conn.txn([unchanged(k, rev) for k, rev in chunk],
                                   [delete_op(k) for k, _ in chunk])
            purged += len(chunk) if ok else 0
        return purged

    def put_secret_if_absent(self, name: str, value: str) -> str:
        key = self._record_key(SECRETS, name)
        self._conn.txn([absent(key)], [put_op(key, value.encode())])
        kv = self._get_kv(key)
        if kv is None:  # deleted between the two calls: only by hand
            raise StorageUnavailable(f"secret {name!r} vanished while it was being created")
        return bytes(kv.value).decode()

    def get_secret(self, name: str) -> str | None:
        kv = self._get_kv(self._record_key(SECRETS, name))
        return None if kv is None else bytes(kv.value).decode()


def _conforms(store: EtcdStore) -> Store:
    """Static check (mypy): the etcd store implements the whole ``Store`` protocol."""
    return store
