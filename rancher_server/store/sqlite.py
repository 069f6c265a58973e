"""SQLite store: WAL mode, ``synchronous=FULL`` (a commit that returned survives kill -9 and power
loss), schema migrations applied in order at open."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from rancher_server.store.base import Cluster, Conflict, NotFound, StoreError
from rancher_server.store.sqlite_access import DEFAULT_PROJECTS, AccessMixin
from rancher_server.store.sqlite_auth import UsersMixin
from rancher_server.store.sqlite_common import ID_ALLOCATION_ATTEMPTS, new_id
from rancher_server.store.sqlite_rbac import BindingsMixin
from rancher_server.store.sqlite_shared import SharedRecordsMixin

BUSY_TIMEOUT_MS = 5000
DB_FILE_MODE = 0o600
QUICK_CHECK_MAX_ERRORS = 10  # problems quoted in the refusal to start

# Each entry moves the schema from version i to i+1. Never edit a released entry: append.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE clusters (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token_hash TEXT NOT NULL UNIQUE,
        api_endpoint TEXT NOT NULL DEFAULT '',
        ca_cert TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        registered_at REAL
    );
    """,
    # 2: users, local groups, API tokens, cluster role bindings, audit log, settings.
    """
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL DEFAULT '',
        password_hash TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        is_admin INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE user_groups (
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        group_name TEXT NOT NULL,
        PRIMARY KEY (user_id, group_name)
    );
    CREATE INDEX user_groups_by_group ON user_groups(group_name);
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        secret_hash TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('login', 'api')),
        description TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        expires_at REAL,
        enabled INTEGER NOT NULL DEFAULT 1,
        last_used_at REAL
    );
    CREATE INDEX tokens_by_user ON tokens(user_id);
    CREATE INDEX tokens_by_expiry ON tokens(expires_at);
    CREATE TABLE bindings (
        id TEXT PRIMARY KEY,
        cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
        user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
        group_name TEXT,
        role TEXT NOT NULL CHECK (role IN ('cluster-owner', 'cluster-member', 'read-only')),
        created_at REAL NOT NULL,
        CHECK ((user_id IS NULL) <> (group_name IS NULL))
    );
    CREATE UNIQUE INDEX bindings_unique
        ON bindings(cluster_id, IFNULL(user_id, ''), IFNULL(group_name, ''), role);
    CREATE INDEX bindings_by_user ON bindings(user_id);
    CREATE INDEX bindings_by_group ON bindings(group_name);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        user_id TEXT NOT NULL DEFAULT '',
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        result TEXT NOT NULL DEFAULT '',
        remote TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_by_ts ON audit(ts);
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 3: role templates, projects, project bindings, global role bindings. Bindings name any
    # role template (no fixed list); the old is_admin flag becomes a global "admin" binding and
    # every user gets Rancher's default global role "user".
    """
    CREATE TABLE templates (
        id TEXT PRIMARY KEY,
        doc TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        UNIQUE (cluster_id, name)
    );
    INSERT INTO projects (id, cluster_id, name, description, created_at)
        SELECT 'p-' || lower(hex(randomblob(4))), id, 'Default', 'Namespaces without a project',
               created_at FROM clusters;
    INSERT INTO projects (id, cluster_id, name, description, created_at)
        SELECT 'p-' || lower(hex(randomblob(4))), id, 'System',
               'kube-system and the namespaces of the platform', created_at FROM clusters;
    CREATE TABLE bindings_v3 (
        id TEXT PRIMARY KEY,
        cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
        project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,
        user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
        group_name TEXT,
        role TEXT NOT NULL,
        created_at REAL NOT NULL,
        CHECK ((user_id IS NULL) <> (group_name IS NULL))
    );
    INSERT INTO bindings_v3 (id, cluster_id, user_id, group_name, role, created_at)
        SELECT id, cluster_id, user_id, group_name, role, created_at FROM bindings;
    DROP TABLE bindings;
    ALTER TABLE bindings_v3 RENAME TO bindings;
    CREATE UNIQUE INDEX bindings_unique ON bindings(
        cluster_id, IFNULL(project_id, ''), IFNULL(user_id, ''), IFNULL(group_name, ''), role);
    CREATE INDEX bindings_by_user ON bindings(user_id);
    CREATE INDEX bindings_by_group ON bindings(group_name);
    CREATE INDEX bindings_by_project ON bindings(project_id);
    CREATE TABLE global_bindings (
        id TEXT PRIMARY KEY,
        user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
        group_name TEXT,
        role TEXT NOT NULL,
        created_at REAL NOT NULL,
        CHECK ((user_id IS NULL) <> (group_name IS NULL))
    );
    CREATE UNIQUE INDEX global_bindings_unique
        ON global_bindings(IFNULL(user_id, ''), IFNULL(group_name, ''), role);
    CREATE INDEX global_bindings_by_user ON global_bindings(user_id);
    CREATE INDEX global_bindings_by_group ON global_bindings(group_name);
    INSERT INTO global_bindings (id, user_id, role, created_at)
        SELECT 'grb-' || lower(hex(randomblob(4))), id, 'admin', created_at
        FROM users WHERE is_admin = 1;
    INSERT INTO global_bindings (id, user_id, role, created_at)
        SELECT 'grb-' || lower(hex(randomblob(4))), id, 'user', created_at FROM users;
    """,
    # 4: the cluster agent's own credential (SHA-256 of a 256-bit secret issued at its first
    # registration); NULL until then. Only that credential opens the cluster agent's session.
    """
    ALTER TABLE clusters ADD COLUMN agent_credential_hash TEXT;
    CREATE UNIQUE INDEX clusters_by_agent_credential ON clusters(agent_credential_hash);
    """,
    # 5: failed-login records (shared by replicas, forgotten at expires_at) and the secrets a
    # deployment shares (the serving CA of replicas on one store).
    """
    CREATE TABLE login_failures (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_failure REAL NOT NULL,
        locked_until REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX login_failures_by_expiry ON login_failures(expires_at);
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 6: logins in flight (OAuth state, device logins), shared by replicas; forgotten at
    # expires_at.
    """
    CREATE TABLE pending_logins (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX pending_logins_by_expiry ON pending_logins(expires_at);
    """,
]


def _corrupt_message(path: Path | str, detail: str) -> str:
    return (
        f"the database {path} is damaged ({detail}). Stop every process using it, then restore "
        f"it from a backup (with its -wal file), or try `sqlite3 {path} .recover | sqlite3 "
        f"new.db` and move new.db in its place; moving it aside starts an empty server."
    )


def new_cluster_id() -> str:
    """Rancher-style ids: ``c-`` and a short random lowercase suffix."""
    return new_id("c-")


def _connect(path: Path | str) -> sqlite3.Connection:
    db = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return db


class SQLiteStore(UsersMixin, BindingsMixin, AccessMixin, SharedRecordsMixin):
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:" and not os.path.exists(path):
            # Password and token hashes live here: readable by the server's user only (SQLite
            # gives the -wal and -shm files the same mode).
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, DB_FILE_MODE))
        self._lock = threading.Lock()
        self._listeners = []
        try:
            self._db = _connect(path)
        except sqlite3.DatabaseError as e:
            raise StoreError(_corrupt_message(path, str(e))) from e
        try:
            self._check_integrity(path)
            self._migrate()
        except BaseException:
            self._db.close()
            raise
        self._rlock = threading.Lock()
        self._cache = {}
        self._rdb = _connect(path)
        self._rdb.execute("PRAGMA query_only=ON")

    def _check_integrity(self, path: Path | str) -> None:
        """``PRAGMA quick_check`` at open: a corrupt file stops the server, saying what to do."""
        try:
            rows = self._db.execute(f"PRAGMA quick_check({QUICK_CHECK_MAX_ERRORS})").fetchall()
        except sqlite3.DatabaseError as e:
            raise StoreError(_corrupt_message(path, str(e))) from e
        problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
        if problems:
            raise StoreError(_corrupt_message(path, "; ".join(problems)))

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._lock:
            current = self.schema_version
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"database schema version {current} is newer than this server "
                    f"({len(MIGRATIONS)}); refusing to start"
                )
            for version in range(current, len(MIGRATIONS)):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in MIGRATIONS[version].split(";"):
                        if stmt.strip():
                            self._db.execute(stmt)
                    self._db.execute(f"PRAGMA user_version={version + 1}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    @staticmethod
    def _cluster(row: sqlite3.Row) -> Cluster:
        return Cluster(
            id=row["id"],
            name=row["name"],
            created_at=row["created_at"],
            api_endpoint=row["api_endpoint"],
            ca_cert=row["ca_cert"],
            registered_at=row["registered_at"],
        )

    def create_cluster(self, name: str, token_hash: str) -> Cluster:
        """The cluster with its ``Default`` and ``System`` projects, in one transaction."""
        with self._tx() as db:
            for _ in range(ID_ALLOCATION_ATTEMPTS):
                cid = new_cluster_id()
                try:
                    db.execute(
                        "INSERT INTO clusters (id, name, token_hash, created_at) VALUES (?,?,?,?)",
                        (cid, name, token_hash, time.time()),
                    )
                except sqlite3.IntegrityError as e:
                    if "clusters.name" in str(e):
                        raise Conflict(f"a cluster named {name!r} already exists") from e
                    continue
                for project, description in DEFAULT_PROJECTS:
                    self._insert_project(db, cid, project, description, None)
                row = db.execute("SELECT * FROM clusters WHERE id=?", (cid,)).fetchone()
                return self._cluster(row)
        raise StoreError("could not allocate a cluster id")

    def get_cluster(self, cluster_id: str) -> Cluster:
        row = self._read_one("SELECT * FROM clusters WHERE id=?", (cluster_id,))
        if row is None:
            raise NotFound(f"cluster {cluster_id!r} not found")
        return self._cluster(row)

    def list_clusters(self) -> list[Cluster]:
        rows = self._read("SELECT * FROM clusters ORDER BY created_at")
        return [self._cluster(r) for r in rows]

    def delete_cluster(self, cluster_id: str) -> None:
        with self._tx() as db:
            cur = db.execute("DELETE FROM clusters WHERE id=?", (cluster_id,))
        if cur.rowcount == 0:
            raise NotFound(f"cluster {cluster_id!r} not found")

    def cluster_by_token_hash(self, token_hash: str) -> Cluster | None:
        row = self._read_one("SELECT * FROM clusters WHERE token_hash=?", (token_hash,))
        return None if row is None else self._cluster(row)

    def set_cluster_token_hash(self, cluster_id: str, token_hash: str) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE clusters SET token_hash=? WHERE id=?", (token_hash, cluster_id)
            )
        if cur.rowcount == 0:
            raise NotFound(f"cluster {cluster_id!r} not found")

    def cluster_by_agent_credential_hash(self, credential_hash: str) -> Cluster | None:
        row = self._read_one(
            "SELECT * FROM clusters WHERE agent_credential_hash=?", (credential_hash,)
        )
        return None if row is None else self._cluster(row)

    def has_agent_credential(self, cluster_id: str) -> bool:
        row = self._read_one(
            "SELECT agent_credential_hash FROM clusters WHERE id=?", (cluster_id,)
        )
        if row is None:
            raise NotFound(f"cluster {cluster_id!r} not found")
        return row[0] is not None

    def issue_agent_credential(self, cluster_id: str, credential_hash: str) -> bool:
        """Set the agent credential only if the cluster has none yet (first registration wins)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE clusters SET agent_credential_hash=? "
                "WHERE id=? AND agent_credential_hash IS NULL",
                (credential_hash, cluster_id),
            )
        return cur.rowcount == 1

    def clear_agent_credential(self, cluster_id: str) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE clusters SET agent_credential_hash=NULL WHERE id=?", (cluster_id,)
            )
        if cur.rowcount == 0:
            raise NotFound(f"cluster {cluster_id!r} not found")

    def record_registration(self, cluster_id: str, api_endpoint: str, ca_cert: str) -> Cluster:
        with self._tx() as db:
            db.execute(
                "UPDATE clusters SET api_endpoint=?, ca_cert=?, registered_at=? WHERE id=?",
                (api_endpoint, ca_cert, time.time(), cluster_id),
            )
            row = db.execute("SELECT * FROM clusters WHERE id=?", (cluster_id,)).fetchone()
        if row is None:
            raise NotFound(f"cluster {cluster_id!r} not found")
        return self._cluster(row)

    def close(self) -> None:
        with self._rlock:
            self._rdb.close()
        with self._lock:
            self._db.close()
