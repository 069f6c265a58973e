"""What the reconciler keeps in a cluster (pure: a store snapshot and the cluster's namespaces)."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from kube_api_auth import hashing
from rancher_server.access.desired import (
    AUTH_TOKENS,
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    PROJECT_ANNOTATION,
    ROLE_BINDINGS,
    SECRETS,
    SERVICE_ACCOUNTS,
    USER_ATTRIBUTES,
    DKey,
    Inputs,
    desired_objects,
)
from rancher_server.access.endpoint_config import AceConfig
from rancher_server.access.templates import Catalog
from rancher_server.store import SQLiteStore, Store


def ns(name: str, project: str = "", terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if project:
        meta["annotations"] = {PROJECT_ANNOTATION: project}
    if terminating:
        meta["deletionTimestamp"] = "2026-12-04T00:00:00Z"
    return {"metadata": meta}


def inputs(s: Store, cid: str, namespaces: list[dict[str, Any]], ace: bool = False,
           now: float | None = None) -> Inputs:
    return Inputs(
        cluster_id=cid, catalog=Catalog.load(s), users=s.list_users(),
        bindings=s.list_bindings(cid), global_bindings=s.list_global_bindings(),
        projects=s.list_projects(cid),
        namespaces={n["metadata"]["name"]: n for n in namespaces},
        ace=AceConfig(enabled=ace), tokens=s.list_tokens(), now=now or time.time(),
    )


def names(objs: dict[DKey, dict[str, Any]], kind: str) -> set[tuple[str, str]]:
    return {(n, name) for (k, n, name) in objs if k == kind}


def role_refs(objs: dict[DKey, dict[str, Any]], kind: str) -> dict[tuple[str, str], str]:
    return {(n, name): o["roleRef"]["name"] for (k, n, name), o in objs.items() if k == kind}


def test_cluster_bindings_bind_each_downstream_role_of_the_template(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "db")
    cid = s.create_cluster("edge", "h").id
    alice = s.create_user("alice", "Alice", "x")
    b = s.create_binding(cid, "user", alice.id, "cluster-member")
    s.create_binding(cid, "group", "ops", "read-only")
    objs = desired_objects(inputs(s, cid, [ns("default")]))
    crbs = role_refs(objs, "ClusterRoleBinding")
    mine = {name: role for (_, name), role in crbs.items() if b.id in name}
    # cluster-member = edit + nodes-view + the rules of its own (PVs, storage classes).
    assert set(mine.values()) == {"edit", "cattle-rt-nodes-view", "cattle-rt-cluster-member"}
    assert all(name == f"cattle-{b.id}-{role}" for name, role in mine.items())
    assert "view" in crbs.values()  # the group's read-only
    # ClusterRoles only for bound templates with downstream rules (not for management-only
    # templates such as projects-create, nor for Kubernetes' own roles).
    assert {n for _, n in names(objs, CLUSTER_ROLES.name)} == {
        "cattle-rt-nodes-view", "cattle-rt-cluster-member", f"cattle-impersonation-{alice.id}"}
    rules = objs[(CLUSTER_ROLES.name, "", "cattle-rt-nodes-view")]["rules"]
    assert rules == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]
    # Every object carries our label.
    assert all(o["metadata"]["labels"] == {"cattle.io/managed-by": "rancher-py"}
               for o in objs.values())
    s.close()


def test_project_bindings_follow_the_namespaces_of_the_project(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "db")
    cid = s.create_cluster("edge", "h").id
    web = s.create_project(cid, "web")
    data = s.create_project(cid, "data")
    bob = s.create_user("bob", "Bob", "x")
    b = s.create_binding(cid, "user", bob.id, "project-member", project_id=web.id)
    spaces = [ns("shop", f"{cid}:{web.id}"), ns("cart", f"{cid}:{web.id}"),
              ns("db", f"{cid}:{data.id}"), ns("gone", f"{cid}:{web.id}", terminating=True),
              ns("alien", f"c-other:{web.id}"), ns("default"), ns("kube-system")]
    objs = desired_objects(inputs(s, cid, spaces))
    rbs = role_refs(objs, ROLE_BINDINGS.name)
    assert {n for n, _ in rbs} == {"shop", "cart"}  # not terminating, not another cluster's
    assert set(rbs.values()) == {"edit", "cattle-rt-projectroletemplatebindings-view"} - {
        "cattle-rt-projectroletemplatebindings-view"}  # management-only rules stay upstream
    assert rbs[("shop", f"cattle-{b.id}-edit")] == "edit"
    # Moving a namespace moves the rights.
    spaces[2] = ns("db", f"{cid}:{web.id}")
    objs = desired_objects(inputs(s, cid, spaces))
    assert {n for n, _ in role_refs(objs, ROLE_BINDINGS.name)} == {"shop", "cart", "db"}
    # The Default project holds "default" until annotated otherwise; System the system ones.
    default = next(p for p in s.list_projects(cid) if p.name == "Default")
    system = next(p for p in s.list_projects(cid) if p.name == "System")
    s.create_binding(cid, "group", "qa", "read-only", project_id=default.id)
    s.create_binding(cid, "group", "sre", "project-owner", project_id=system.id)
    rbs = role_refs(desired_objects(inputs(s, cid, spaces)), ROLE_BINDINGS.name)
    assert {n for n, role in rbs.items() if role == "view"} == {("default", n[1]) for n in rbs
                                                               if n[0] == "default"}
    assert {n for n, role in rbs.items() if role == "admin"} == {
        ("kube-system", n) for (ns_, n) in rbs if ns_ == "kube-system"}
    s.close()


def test_impersonation_accounts_for_members_only(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "db")
    cid = s.create_cluster("edge", "h").id
    other = s.create_cluster("other", "h2").id
    admin = s.create_user("root", "Root", "x", is_admin=True)
    alice = s.create_user("alice", "Alice", "x", groups=["devs"])
    bob = s.create_user("bob", "Bob", "x")  # bound elsewhere only
    carol = s.create_user("carol", "Carol", "x", groups=["ops"])  # through her group
    proj = s.create_project(cid, "web")
    s.create_binding(cid, "user", alice.id, "project-member", project_id=proj.id)
    s.create_binding(other, "user", bob.id, "cluster-owner")
    s.create_binding(cid, "group", "ops", "read-only")
    objs = desired_objects(inputs(s, cid, []))
    accounts = {n for _, n in names(objs, SERVICE_ACCOUNTS.name)}
    assert accounts == {f"cattle-impersonation-{u.id}" for u in (admin, alice, carol)}
    role = objs[(CLUSTER_ROLES.name, "", f"cattle-impersonation-{alice.id}")]
    assert role["rules"][0]["resourceNames"] == [alice.id]
    assert role["rules"][1]["resourceNames"] == ["devs", "system:authenticated"]
    # The global admin is cluster-admin downstream.
    crbs = role_refs(objs, CLUSTER_ROLE_BINDINGS.name)
    admin_crbs = [k for k, r in crbs.items() if r == "cluster-admin"]
    assert len(admin_crbs) == 1
    assert objs[(CLUSTER_ROLE_BINDINGS.name, *admin_crbs[0])]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": admin.id}]
    # A disabled user loses everything downstream; their store bindings stay.
    s.update_user(alice.id, enabled=False)
    objs = desired_objects(inputs(s, cid, [ns("x", f"{cid}:{proj.id}")]))
    assert f"cattle-impersonation-{alice.id}" not in {n for _, n in names(objs, "ServiceAccount")}
    assert not names(objs, ROLE_BINDINGS.name)
    s.close()


def test_authorized_endpoint_objects(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "db")
    cid = s.create_cluster("edge", "h").id
    now = time.time()
    alice = s.create_user("alice", "Alice", "x", groups=["devs"])
    bob = s.create_user("bob", "Bob", "x")  # no binding: not a member
    carol = s.create_user("carol", "Carol", "x", groups=["ops"])
    s.create_binding(cid, "user", alice.id, "read-only")
    s.create_binding(cid, "group", "ops", "cluster-member")
    h = hashing.create_hash("secret")
    live = s.create_token(alice.id, h, kind="api", description="kubeconfig", expires_at=now + 60)
    s.create_token(alice.id, h, kind="api", description="old", expires_at=now - 1)
    s.create_token(alice.id, h, kind="login", description="ui", expires_at=None)
    s.create_token(bob.id, h, kind="api", description="kubeconfig", expires_at=None)
    carols = s.create_token(carol.id, h, kind="api", description="kubeconfig", expires_at=None)

    assert not names(desired_objects(inputs(s, cid, [], ace=False, now=now)), AUTH_TOKENS.name)
    objs = desired_objects(inputs(s, cid, [], ace=True, now=now))
    assert {n for _, n in names(objs, AUTH_TOKENS.name)} == {live.id, carols.id}
    assert names(objs, SECRETS.name) == names(objs, AUTH_TOKENS.name)
    assert {n for _, n in names(objs, USER_ATTRIBUTES.name)} == {alice.id, carol.id}
    secret = objs[(SECRETS.name, "cattle-system", live.id)]
    stored = base64.b64decode(secret["data"]["hash"]).decode()
    assert stored == h and hashing.verify_hash(stored, "secret")
    tok = objs[(AUTH_TOKENS.name, "cattle-system", live.id)]
    assert tok["userName"] == alice.id and tok["clusterName"] == cid and tok["enabled"] is True
    assert tok["expiresAt"].endswith("Z")
    assert objs[(USER_ATTRIBUTES.name, "cattle-system", carol.id)]["groups"] == ["ops"]

    s.update_user(alice.id, enabled=False)
    s.set_user_groups(carol.id, ["ops", "oncall"])
    objs = desired_objects(inputs(s, cid, [], ace=True, now=now))
    assert {n for _, n in names(objs, AUTH_TOKENS.name)} == {carols.id}
    assert sorted(objs[(USER_ATTRIBUTES.name, "cattle-system", carol.id)]["groups"]) == [
        "oncall", "ops"]
    s.close()
