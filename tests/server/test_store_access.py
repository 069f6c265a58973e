"""The store's access-control records: the upgrade from schema v2, role templates, projects,
project and global role bindings, change listeners and the revision."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from rancher_server.store import Conflict, NotFound, SQLiteStore
from rancher_server.store.sqlite import MIGRATIONS
from rancher_server.store.sqlite_access import DEFAULT_PROJECT, SYSTEM_PROJECT

V2 = 2
RULES = ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "db")
    yield s
    s.close()


def _v2_database(path: Path) -> None:
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:V2]:
        db.executescript(script)
    db.executescript("""
        INSERT INTO clusters (id, name, token_hash, created_at) VALUES ('c-old', 'old', 'h', 1.0);
        INSERT INTO users (id, username, password_hash, is_admin, created_at)
            VALUES ('u-adm', 'admin', 'x', 1, 1.0), ('u-bob', 'bob', 'x', 0, 2.0);
        INSERT INTO user_groups (user_id, group_name) VALUES ('u-bob', 'devs');
        INSERT INTO bindings (id, cluster_id, user_id, group_name, role, created_at)
            VALUES ('crtb-b1', 'c-old', 'u-bob', NULL, 'cluster-member', 3.0),
                   ('crtb-g1', 'c-old', NULL, 'devs', 'read-only', 4.0);
    """)
    db.execute(f"PRAGMA user_version={V2}")
    db.commit()
    db.close()


def test_upgrade_from_v2_admin_flag_becomes_bindings_and_clusters_get_projects(
    tmp_path: Path,
) -> None:
    _v2_database(tmp_path / "db")
    s = SQLiteStore(tmp_path / "db")
    assert s.schema_version == len(MIGRATIONS)
    roles = {(g.subject, g.role) for g in s.list_global_bindings()}
    assert roles == {("u-adm", "admin"), ("u-adm", "user"), ("u-bob", "user")}
    assert s.get_user("u-adm").is_admin and not s.get_user("u-bob").is_admin
    assert {p.name for p in s.list_projects("c-old")} == {DEFAULT_PROJECT, SYSTEM_PROJECT}
    assert all(p.id.startswith("p-") for p in s.list_projects("c-old"))
    # The old bindings keep working: same ids, cluster-wide, found for the user and the group.
    got = {(b.id, b.role, b.project_id) for b in s.bindings_for("u-bob", ["devs"], "c-old")}
    assert got == {("crtb-b1", "cluster-member", None), ("crtb-g1", "read-only", None)}
    # Bindings now name any template (the v2 CHECK on three roles is gone).
    assert s.create_binding("c-old", "user", "u-bob", "nodes-view").role == "nodes-view"
    # Deleting the user still cascades to its bindings.
    s.delete_user("u-bob")
    assert [b.id for b in s.list_bindings("c-old")] == ["crtb-g1"]
    assert all(g.subject != "u-bob" for g in s.list_global_bindings())
    s.close()


def test_listeners_fire_after_commits_only_and_revision_changes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    seen: list[list[str]] = []

    def listener() -> None:
        # Called after the commit: another connection already sees the write.
        other = sqlite3.connect(tmp_path / "db")
        seen.append([r[0] for r in other.execute("SELECT name FROM clusters")])
        other.close()

    store.add_listener(listener)
    before = store.revision
    c = store.create_cluster("one", "h")
    assert seen == [["one"]]
    assert store.revision != before
    with pytest.raises(Conflict):
        store.create_cluster("one", "h2")  # rolled back: nobody is told
    with pytest.raises(NotFound):
        store.delete_project("p-none")
    assert len(seen) == 1
    store.create_project(c.id, "web")
    store.create_global_binding("group", "ops", "user")
    assert len(seen) == 3
    store.remove_listener(listener)
    store.remove_listener(listener)  # removing twice is harmless
    store.create_project(c.id, "api")
    assert len(seen) == 3
    # A commit by another process (the CLI) moves the revision too.
    rev = store.revision
    other = SQLiteStore(tmp_path / "db")  # the CLI writes through the same store code
    other.set_setting("x", "1")
    other.close()
    assert store.revision != rev
    store.close()
