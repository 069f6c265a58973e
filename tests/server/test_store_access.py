"""The store's access-control records: the upgrade from schema v2, role templates, projects,
project and global role bindings, change listeners and the revision."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from rancher_server.store import Conflict, NotFound, RoleTemplate, SQLiteStore, StoreError
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


def test_new_users_get_user_and_admins_get_admin(store: SQLiteStore) -> None:
    a = store.create_user("root", "", "h", is_admin=True)
    u = store.create_user("u", "", "h")
    assert a.is_admin and not u.is_admin
    assert sorted(g.role for g in store.global_bindings_for(a.id, [])) == ["admin", "user"]
    assert [g.role for g in store.global_bindings_for(u.id, [])] == ["user"]
    assert store.update_user(u.id, is_admin=True).is_admin
    assert not store.update_user(u.id, is_admin=False).is_admin
    assert [g.role for g in store.global_bindings_for(u.id, [])] == ["user"]


def test_templates_crud_and_delete_refused_while_bound(store: SQLiteStore) -> None:
    t = store.create_template(RoleTemplate(id="", display_name="Pods", context="project",
                                           rules=RULES, description="d"))
    assert t.id.startswith("rt-") and not t.builtin and t.created_at > 0
    assert store.get_template(t.id) == t
    assert [x.id for x in store.list_templates()] == [t.id]
    named = store.create_template(RoleTemplate(id="auditor", display_name="A", context="global"))
    with pytest.raises(Conflict):
        store.create_template(RoleTemplate(id="auditor", display_name="B", context="global"))
    locked = store.update_template(RoleTemplate(
        id=t.id, display_name="Pods!", context="project", rules=RULES, locked=True,
        inherits=("view",)))
    assert locked.locked and locked.display_name == "Pods!" and locked.inherits == ("view",)
    assert locked.created_at == t.created_at
    with pytest.raises(NotFound):
        store.update_template(RoleTemplate(id="rt-none", display_name="x", context="global"))
    c = store.create_cluster("c", "h")
    u = store.create_user("u", "", "h")
    b = store.create_binding(c.id, "user", u.id, t.id)
    g = store.create_global_binding("group", "auditors", named.id)
    with pytest.raises(Conflict, match="bound"):
        store.delete_template(t.id)
    with pytest.raises(Conflict, match="bound"):
        store.delete_template(named.id)
    store.delete_binding(b.id)
    store.delete_global_binding(g.id)
    store.delete_template(t.id)
    store.delete_template(named.id)
    assert store.list_templates() == []
    with pytest.raises(NotFound):
        store.delete_template(t.id)
    with pytest.raises(NotFound):
        store.get_template(t.id)


def test_projects_unique_per_cluster_and_cascade(store: SQLiteStore) -> None:
    c1 = store.create_cluster("one", "h1")
    c2 = store.create_cluster("two", "h2")
    assert [p.name for p in store.list_projects(c1.id)] == [DEFAULT_PROJECT, SYSTEM_PROJECT]
    p = store.create_project(c1.id, "web", "the shop")
    assert p.id.startswith("p-") and p.cluster_id == c1.id and p.description == "the shop"
    with pytest.raises(Conflict, match="already has a project"):
        store.create_project(c1.id, "web")
    assert store.create_project(c2.id, "web").cluster_id == c2.id  # unique per cluster only
    with pytest.raises(NotFound):
        store.create_project("c-none", "web")
    assert store.create_project(c1.id, "fixed", project_id="p-fixed").id == "p-fixed"
    with pytest.raises(Conflict):
        store.create_project(c2.id, "other", project_id="p-fixed")
    assert store.update_project(p.id, description="new").description == "new"
    assert store.get_project(p.id).description == "new"
    with pytest.raises(NotFound):
        store.update_project("p-none", description="x")
    assert len(store.list_projects()) == 3 + 2 + 2
    # A project's bindings go with it.
    u = store.create_user("u", "", "h")
    pb = store.create_binding(c1.id, "user", u.id, "project-member", project_id=p.id)
    cb = store.create_binding(c1.id, "user", u.id, "read-only")
    store.delete_project(p.id)
    assert [b.id for b in store.list_bindings(c1.id)] == [cb.id]
    with pytest.raises(NotFound):
        store.get_binding(pb.id)
    with pytest.raises(NotFound):
        store.delete_project(p.id)
    # A cluster's projects (and their bindings) go with it.
    q = store.create_project(c1.id, "api")
    store.create_binding(c1.id, "group", "devs", "project-owner", project_id=q.id)
    store.delete_cluster(c1.id)
    assert store.list_projects(c1.id) == [] and store.list_bindings(c1.id) == []
    with pytest.raises(NotFound):
        store.get_project(q.id)


def test_project_bindings_must_name_a_project_of_the_cluster(store: SQLiteStore) -> None:
    c1 = store.create_cluster("one", "h1")
    c2 = store.create_cluster("two", "h2")
    u = store.create_user("u", "", "h", groups=["devs"])
    p1 = store.create_project(c1.id, "web")
    b = store.create_binding(c1.id, "user", u.id, "project-owner", project_id=p1.id)
    assert b.id.startswith("prtb-") and b.project_id == p1.id and b.cluster_id == c1.id
    with pytest.raises(NotFound, match="not found in cluster"):
        store.create_binding(c2.id, "user", u.id, "project-owner", project_id=p1.id)
    with pytest.raises(NotFound):
        store.create_binding(c1.id, "user", u.id, "project-owner", project_id="p-none")
    with pytest.raises(Conflict):
        store.create_binding(c1.id, "user", u.id, "project-owner", project_id=p1.id)
    # The same template cluster-wide is another binding.
    crtb = store.create_binding(c1.id, "user", u.id, "project-owner")
    assert crtb.id.startswith("crtb-") and crtb.project_id is None
    g = store.create_binding(c1.id, "group", "devs", "project-member", project_id=p1.id)
    assert [x.id for x in store.list_bindings(c1.id, p1.id)] == [b.id, g.id]
    assert {x.id for x in store.bindings_for(u.id, u.groups, c1.id)} == {b.id, crtb.id, g.id}
    assert store.bindings_for(u.id, u.groups, c2.id) == []
    with pytest.raises(StoreError, match="subject kind"):
        store.create_binding(c1.id, "robot", "r2", "project-owner", project_id=p1.id)


def test_global_bindings(store: SQLiteStore) -> None:
    u = store.create_user("u", "", "h", groups=["ops"])
    g = store.create_global_binding("group", "ops", "users-manage")
    mine = store.global_bindings_for(u.id, u.groups)
    assert {(x.subject_kind, x.role) for x in mine} == {("user", "user"),
                                                        ("group", "users-manage")}
    assert store.get_global_binding(g.id) == g and g.id.startswith("grb-")
    with pytest.raises(Conflict):
        store.create_global_binding("group", "ops", "users-manage")
    with pytest.raises(NotFound):
        store.create_global_binding("user", "u-none", "admin")
    with pytest.raises(StoreError):
        store.create_global_binding("robot", "r2", "admin")
    assert [x.role for x in store.global_bindings_for(u.id, [])] == ["user"]
    store.delete_global_binding(g.id)
    with pytest.raises(NotFound):
        store.delete_global_binding(g.id)
    with pytest.raises(NotFound):
        store.get_global_binding(g.id)
    assert len(store.list_global_bindings()) == 1


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
    other = sqlite3.connect(tmp_path / "db", isolation_level=None)
    other.execute("INSERT INTO settings (name, value) VALUES ('x', '1')")
    other.close()
    assert store.revision != rev
    store.close()
