"""The store's users, tokens, bindings, audit log and settings; the schema upgrade from v1."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from rancher_server.auth.auditlog import AuditWriter
from rancher_server.store import AuditEntry, Conflict, NotFound, SQLiteStore
from rancher_server.store.sqlite import MIGRATIONS


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "db")


def test_users_and_groups(store: SQLiteStore) -> None:
    u = store.create_user("alice", "Alice", "hash", groups=["ops", "devs", "ops"])
    assert u.id.startswith("u-") and u.groups == ("devs", "ops") and u.enabled
    with pytest.raises(Conflict):
        store.create_user("alice", "", "hash")
    assert store.user_by_username("alice") == u and store.user_by_username("bob") is None
    assert store.update_user(u.id, enabled=False, display_name="A").enabled is False
    assert store.set_user_groups(u.id, ["qa"]).groups == ("qa",)
    assert store.count_users() == 1
    with pytest.raises(NotFound):
        store.update_user("u-none", enabled=False)
    with pytest.raises(NotFound):
        store.set_user_groups("u-none", [])


def test_tokens_cascade_with_their_user(store: SQLiteStore) -> None:
    u = store.create_user("alice", "", "hash")
    t = store.create_token(u.id, "sh", kind="login", description="d", expires_at=time.time() - 1)
    keep = store.create_token(u.id, "sh2", kind="api", description="", expires_at=None)
    found = store.token_with_user(t.id)
    assert found is not None and found[1].id == u.id and found[0].secret_hash == "sh"
    store.touch_tokens({keep.id: 123.0})
    assert store.get_token(keep.id).last_used_at == 123.0
    assert store.purge_expired_tokens(time.time()) == 1
    assert [x.id for x in store.list_tokens(u.id)] == [keep.id]
    with pytest.raises(NotFound):
        store.create_token("u-none", "sh", kind="api", description="", expires_at=None)
    store.delete_user(u.id)
    assert store.list_tokens() == [] and store.token_with_user(keep.id) is None


def test_bindings_follow_clusters_and_users(store: SQLiteStore) -> None:
    u = store.create_user("alice", "", "hash", groups=["devs"])
    c = store.create_cluster("c1", "th")
    b1 = store.create_binding(c.id, "user", u.id, "read-only")
    b2 = store.create_binding(c.id, "group", "devs", "cluster-owner")
    with pytest.raises(Conflict):
        store.create_binding(c.id, "group", "devs", "cluster-owner")
    assert {b.id for b in store.bindings_for(u.id, u.groups, c.id)} == {b1.id, b2.id}
    assert [b.id for b in store.bindings_for(u.id, [], c.id)] == [b1.id]
    store.delete_user(u.id)
    assert [b.id for b in store.list_bindings()] == [b2.id]
    store.delete_cluster(c.id)
    assert store.list_bindings() == []


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


def test_settings(store: SQLiteStore) -> None:
    assert store.get_setting("x") is None
    store.set_setting("x", "1")
    store.set_setting("x", "2")
    assert store.get_setting("x") == "2"


async def test_audit_writer_batches_and_flushes_on_close(store: SQLiteStore) -> None:
    writer = AuditWriter(store, flush_interval_s=60.0)  # only close() flushes here
    for i in range(500):
        writer.add(AuditEntry(ts=float(i), user_id="u-a", action="proxy", target=f"/p/{i}",
                              result="200", remote="127.0.0.1"))
    await asyncio.sleep(0)
    assert store.list_audit(10) == []  # queued, not yet written
    await writer.close()
    entries = store.list_audit(1000)
    assert len(entries) == 500 and entries[0].target == "/p/499"
    writer.add(AuditEntry(1.0, "u-a", "late", "", "", ""))  # after close: written directly
    assert store.list_audit(1)[0].action == "late"


async def test_audit_writer_flushes_on_its_interval_with_tokens_last_use(
    store: SQLiteStore,
) -> None:
    u = store.create_user("alice", "", "hash")
    tok = store.create_token(u.id, "sh", kind="api", description="", expires_at=None)
    writer = AuditWriter(store, flush_interval_s=0.05)
    writer.token_used(tok.id, 42.0)
    writer.add(AuditEntry(1.0, "u-a", "proxy", "/x", "200", ""))
    deadline = time.monotonic() + 5
    while not store.list_audit(1) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert store.list_audit(1)[0].target == "/x"
    assert store.get_token(tok.id).last_used_at == 42.0
    await writer.close()


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
