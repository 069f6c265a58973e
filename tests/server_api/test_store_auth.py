"""The store's users, tokens, bindings, audit log and settings; the schema upgrade from v1."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from rancher_server.store import SQLiteStore
from rancher_server.store.sqlite import MIGRATIONS


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "db")


def test_upgrade_from_schema_v1_keeps_clusters(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "db")
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO clusters (id, name, token_hash, created_at) VALUES "
               "('c-old', 'old', 'h', 1.0)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    s = SQLiteStore(tmp_path / "db")
    assert s.schema_version == len(MIGRATIONS) and s.get_cluster("c-old").name == "old"
    s.create_binding("c-old", "group", "g", "read-only")


def test_reads_do_not_wait_for_a_writers_commit(store: SQLiteStore) -> None:
    """The request path reads on its own connection: a slow commit (an audit batch's fsync)
    holding the writer does not stall token checks."""
    c = store.create_cluster("c", "h")
    entered, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with store._tx():
            entered.set()
            release.wait(5)

    t = threading.Thread(target=slow_writer)
    t.start()
    try:
        assert entered.wait(5)
        started = time.monotonic()
        assert store.get_cluster(c.id).name == "c"
        assert store.list_users() == []
        assert time.monotonic() - started < 0.5
    finally:
        release.set()
        t.join(5)


def test_database_file_is_private(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "private.db")
    s.create_user("a", "", "hash")
    assert (tmp_path / "private.db").stat().st_mode & 0o777 == 0o600
    s.close()


def test_hot_path_reads_see_every_commit_including_other_connections(tmp_path: Path) -> None:
    """token_with_user and bindings_for are cached, but only until anything commits: a write by
    this store, or by another connection (the CLI process), is seen on the very next read."""
    store = SQLiteStore(tmp_path / "db")
    u = store.create_user("alice", "", "hash", groups=["devs"])
    c = store.create_cluster("c", "h")
    t = store.create_token(u.id, "sh", kind="api", description="", expires_at=None)
    assert store.token_with_user(t.id) is not None
    assert store.token_with_user(t.id) is not None  # cached
    assert store.bindings_for(u.id, u.groups, c.id) == []
    store.create_binding(c.id, "group", "devs", "read-only")  # our own writer
    assert [b.role for b in store.bindings_for(u.id, u.groups, c.id)] == ["read-only"]
    other = sqlite3.connect(tmp_path / "db", isolation_level=None)
    other.execute("UPDATE users SET enabled=0 WHERE id=?", (u.id,))
    found = store.token_with_user(t.id)
    assert found is not None and found[1].enabled is False
    other.execute("DELETE FROM tokens WHERE id=?", (t.id,))
    assert store.token_with_user(t.id) is None
    other.close()
    store.close()
