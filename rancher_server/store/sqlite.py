"""SQLite store: WAL mode, ``synchronous=FULL`` (a commit that returned survives kill -9 and power
loss), schema migrations applied in order at open."""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from pathlib import Path

from rancher_server.store.base import Cluster, NotFound, StoreError

BUSY_TIMEOUT_MS = 5000
CLUSTER_ID_BYTES = 5

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
]


def new_cluster_id() -> str:
    """Rancher-style ids: ``c-`` and a short random lowercase suffix."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "c-" + "".join(secrets.choice(alphabet) for _ in range(CLUSTER_ID_BYTES))


class SQLiteStore:
    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._migrate()

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
        with self._lock:
            for _ in range(10):
                cid = new_cluster_id()
                try:
                    self._db.execute(
                        "INSERT INTO clusters (id, name, token_hash, created_at) VALUES (?,?,?,?)",
                        (cid, name, token_hash, time.time()),
                    )
                except sqlite3.IntegrityError as e:
                    if "clusters.name" in str(e):
                        raise StoreError(f"a cluster named {name!r} already exists") from e
                    continue
                row = self._db.execute("SELECT * FROM clusters WHERE id=?", (cid,)).fetchone()
                return self._cluster(row)
        raise StoreError("could not allocate a cluster id")

    def get_cluster(self, cluster_id: str) -> Cluster:
        with self._lock:
            row = self._db.execute("SELECT * FROM clusters WHERE id=?", (cluster_id,)).fetchone()
        if row is None:
            raise NotFound(f"cluster {cluster_id!r} not found")
        return self._cluster(row)

    def list_clusters(self) -> list[Cluster]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM clusters ORDER BY created_at").fetchall()
        return [self._cluster(r) for r in rows]

    def delete_cluster(self, cluster_id: str) -> None:
        with self._lock:
            cur = self._db.execute("DELETE FROM clusters WHERE id=?", (cluster_id,))
        if cur.rowcount == 0:
            raise NotFound(f"cluster {cluster_id!r} not found")

    def cluster_by_token_hash(self, token_hash: str) -> Cluster | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM clusters WHERE token_hash=?", (token_hash,)
            ).fetchone()
        return None if row is None else self._cluster(row)

    def set_cluster_token_hash(self, cluster_id: str, token_hash: str) -> None:
        with self._lock:
            cur = self._db.execute(
                "UPDATE clusters SET token_hash=? WHERE id=?", (token_hash, cluster_id)
            )
        if cur.rowcount == 0:
            raise NotFound(f"cluster {cluster_id!r} not found")

    def record_registration(self, cluster_id: str, api_endpoint: str, ca_cert: str) -> Cluster:
        with self._lock:
            self._db.execute(
                "UPDATE clusters SET api_endpoint=?, ca_cert=?, registered_at=? WHERE id=?",
                (api_endpoint, ca_cert, time.time(), cluster_id),
            )
            row = self._db.execute("SELECT * FROM clusters WHERE id=?", (cluster_id,)).fetchone()
        if row is None:
            raise NotFound(f"cluster {cluster_id!r} not found")
        return self._cluster(row)

    def close(self) -> None:
        with self._lock:
            self._db.close()
