"""The store conformance suite: every test runs on SQLite and on etcd (``tests/store/conftest.py``)
and asserts the same answers: clusters, users and groups, tokens, cluster/project and global
bindings, role templates, projects, the audit log, settings, listeners and the revision, the login
throttle's failure records and the secrets replicas share."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rancher_server.auth.auditlog import AuditWriter
from rancher_server.store import (
    AuditEntry,
    Conflict,
    LoginFailures,
    NotFound,
    RoleTemplate,
    SQLiteStore,
    Store,
    StoreError,
)
from rancher_server.store.sqlite_access import DEFAULT_PROJECT, SYSTEM_PROJECT

TAKERS = 8  # threads racing to take one pending login
RULES = ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},)


def test_cluster_crud_and_token_lookup(store: Store) -> None:
    s = store
    c = s.create_cluster("a", "h1")
    assert c.id.startswith("c-") and c.name == "a"
    assert s.cluster_by_token_hash("h1") == c
    assert s.cluster_by_token_hash("nope") is None
    with pytest.raises(StoreError, match="already exists"):
        s.create_cluster("a", "h2")
    s.set_cluster_token_hash(c.id, "h3")
    assert s.cluster_by_token_hash("h1") is None
    reg = s.record_registration(c.id, "10.0.0.1:6443", "PEM")
    assert reg.api_endpoint == "10.0.0.1:6443" and reg.registered_at is not None
    s.delete_cluster(c.id)
    with pytest.raises(NotFound):
        s.get_cluster(c.id)
    with pytest.raises(NotFound):
        s.delete_cluster(c.id)


def test_new_users_get_user_and_admins_get_admin(store: Store) -> None:
    a = store.create_user("root", "", "h", is_admin=True)
    u = store.create_user("u", "", "h")
    assert a.is_admin and not u.is_admin
    assert sorted(g.role for g in store.global_bindings_for(a.id, [])) == ["admin", "user"]
    assert [g.role for g in store.global_bindings_for(u.id, [])] == ["user"]
    assert store.update_user(u.id, is_admin=True).is_admin
    assert not store.update_user(u.id, is_admin=False).is_admin
    assert [g.role for g in store.global_bindings_for(u.id, [])] == ["user"]


def test_templates_crud_and_delete_refused_while_bound(store: Store) -> None:
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


def test_projects_unique_per_cluster_and_cascade(store: Store) -> None:
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


def test_project_bindings_must_name_a_project_of_the_cluster(store: Store) -> None:
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


def test_global_bindings(store: Store) -> None:
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


def test_users_and_groups(store: Store) -> None:
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


def test_tokens_cascade_with_their_user(store: Store) -> None:
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


def test_bindings_follow_clusters_and_users(store: Store) -> None:
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


def test_settings(store: Store) -> None:
    assert store.get_setting("x") is None
    store.set_setting("x", "1")
    store.set_setting("x", "2")
    assert store.get_setting("x") == "2"


async def test_audit_writer_batches_and_flushes_on_close(store: Store) -> None:
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
    store: Store,
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


def test_listeners_fire_after_changes_and_revision_grows(store: Store) -> None:
    seen: list[int] = []
    store.add_listener(lambda: seen.append(1))
    before = store.revision
    c = store.create_cluster("one", "h")
    assert seen and store.revision > before
    fired = len(seen)
    with pytest.raises(Conflict):
        store.create_cluster("one", "h2")  # nothing written: nobody is told
    with pytest.raises(NotFound):
        store.delete_project("p-none")
    assert len(seen) == fired
    store.create_project(c.id, "web")
    assert len(seen) > fired


def test_audit_pages_newest_first_and_purge(store: Store) -> None:
    store.append_audit([AuditEntry(float(i), "u-a", "proxy", f"/p/{i}", "200", "127.0.0.1")
                        for i in range(300)])
    first = store.list_audit(100)
    assert [e.target for e in first[:2]] == ["/p/299", "/p/298"] and len(first) == 100
    second = store.list_audit(100, before_id=first[-1].id)
    assert second[0].target == "/p/199" and second[-1].target == "/p/100"
    assert store.purge_audit(150.0) == 150
    assert [e.target for e in store.list_audit(1000)][-1] == "/p/150"


def test_token_revocation_and_disabled_user_seen_on_next_read(store: Store) -> None:
    u = store.create_user("alice", "", "hash", groups=["devs"])
    t = store.create_token(u.id, "sh", kind="api", description="", expires_at=None)
    assert store.token_with_user(t.id) is not None
    store.update_user(u.id, enabled=False)
    found = store.token_with_user(t.id)
    assert found is not None and found[1].enabled is False
    store.delete_token(t.id)
    assert store.token_with_user(t.id) is None
    with pytest.raises(NotFound):
        store.delete_token(t.id)


def test_agent_credential_first_registration_wins(store: Store) -> None:
    c = store.create_cluster("c", "h")
    assert not store.has_agent_credential(c.id)
    assert store.issue_agent_credential(c.id, "cred1")
    assert not store.issue_agent_credential(c.id, "cred2")
    assert store.cluster_by_agent_credential_hash("cred1") == store.get_cluster(c.id)
    assert store.cluster_by_agent_credential_hash("cred2") is None
    store.clear_agent_credential(c.id)
    assert store.cluster_by_agent_credential_hash("cred1") is None
    assert store.issue_agent_credential(c.id, "cred2")
    with pytest.raises(NotFound):
        store.has_agent_credential("c-none")


def test_login_failure_records_update_read_clear_and_expire(store: Store) -> None:
    seen: list[int] = []
    store.add_listener(lambda: seen.append(1))
    before = store.revision
    assert store.login_failure("pair/k") is None
    calls: list[LoginFailures | None] = []

    def bump(rec: LoginFailures | None) -> LoginFailures:
        calls.append(rec)
        n = 1 if rec is None else rec.failures + 1
        return LoginFailures(n, 100.0 + n, 0.0, 1000.0 + n)

    assert store.update_login_failure("pair/k", bump) == LoginFailures(1, 101.0, 0.0, 1001.0)
    assert store.update_login_failure("pair/k", bump) == LoginFailures(2, 102.0, 0.0, 1002.0)
    assert calls[-1] == LoginFailures(1, 101.0, 0.0, 1001.0)  # change() got what was stored
    assert store.login_failure("pair/k") == LoginFailures(2, 102.0, 0.0, 1002.0)
    assert store.update_login_failure("pair/k", lambda rec: None) is None  # None deletes
    assert store.login_failure("pair/k") is None
    store.update_login_failure("pair/k", bump)
    store.update_login_failure("address/k", lambda _: LoginFailures(1, 1.0, 2.0, 5000.0))
    store.clear_login_failure("pair/k")
    store.clear_login_failure("pair/never")  # clearing what is not there is fine
    assert store.login_failure("pair/k") is None
    for i in range(5):
        store.update_login_failure(f"account/{i}", lambda _, i=i: LoginFailures(
            1, 1.0, 0.0, 10.0 * i))
    assert store.purge_login_failures(25.0) == 3  # expires_at 0, 10, 20
    assert [store.login_failure(f"account/{i}") is None for i in range(5)] == [
        True, True, True, False, False]
    assert store.login_failure("address/k") == LoginFailures(1, 1.0, 2.0, 5000.0)
    # Bookkeeping: nothing computed from the store depends on it (etcd's revision is etcd's,
    # which every write moves, as audit entries do).
    assert seen == []
    if isinstance(store, SQLiteStore):
        assert store.revision == before


def test_pending_logins_put_take_once_replace_expire_and_bound(store: Store) -> None:
    seen: list[int] = []
    store.add_listener(lambda: seen.append(1))
    before = store.revision
    now = 1000.0
    assert store.get_pending_login("s1", now) is None
    store.put_pending_login("s1", "first", now + 600, keep=10)
    assert store.get_pending_login("s1", now) == "first"
    assert store.replace_pending_login("s1", "second", now) is True
    assert store.get_pending_login("s1", now + 600) == "second"  # the expiry was kept
    assert store.get_pending_login("s1", now + 601) is None  # past it: as good as absent
    assert store.replace_pending_login("s1", "late", now + 601) is False
    assert store.take_pending_login("s1", now) == "second"
    assert store.take_pending_login("s1", now) is None  # used once
    assert store.replace_pending_login("s1", "again", now) is False  # not brought back
    assert store.get_pending_login("s1", now) is None
    store.put_pending_login("old", "x", now + 1, keep=10)
    assert store.take_pending_login("old", now + 2) is None  # expired: taken, but not valid
    assert store.get_pending_login("old", now) is None
    # A bound: the records expiring first go.
    for i in range(5):
        store.put_pending_login(f"k{i}", str(i), now + 100 + i, keep=3)
    assert [store.get_pending_login(f"k{i}", now) for i in range(5)] == [
        None, None, "2", "3", "4"]
    assert store.purge_pending_logins(now + 103.5) == 2  # k2, k3
    assert [store.get_pending_login(f"k{i}", now) for i in range(5)] == [
        None, None, None, None, "4"]
    assert seen == []
    if isinstance(store, SQLiteStore):
        assert store.revision == before


def test_pending_login_taken_by_exactly_one_of_many(store: Store) -> None:
    store.put_pending_login("race", "v", 2000.0, keep=10)
    got: list[str | None] = []
    barrier = threading.Barrier(TAKERS)

    def take() -> None:
        barrier.wait()
        got.append(store.take_pending_login("race", 1000.0))

    threads = [threading.Thread(target=take) for _ in range(TAKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (got.count("v"), got.count(None), len(got)) == (1, TAKERS - 1, TAKERS)


def test_secret_put_if_absent_keeps_the_first(store: Store) -> None:
    assert store.get_secret("serving-ca") is None
    assert store.put_secret_if_absent("serving-ca", "first") == "first"
    assert store.put_secret_if_absent("serving-ca", "second") == "first"
    assert store.get_secret("serving-ca") == "first"
    assert store.get_setting("serving-ca") is None  # not a setting
