"""REST authorization from global roles: the principal's roles and admin flag, the 403 that says
what is missing, a "user" creates clusters and owns them, a "user-base" cannot, users endpoints
need users/*."""

from __future__ import annotations

from rancher_server.access.templates import ADMIN, BUILTIN_TEMPLATES, Catalog
from rancher_server.auth import authenticate_bearer
from rancher_server.auth.global_roles import includes_admin
from rancher_server.store import RoleTemplate
from tests.server_api.conftest import USER_PASSWORD, Api


def _set_global_roles(api: Api, user_id: str, *roles: str) -> None:
    store = api.state.store
    for g in store.global_bindings_for(user_id, []):
        store.delete_global_binding(g.id)
    for role in roles:
        store.create_global_binding("user", user_id, role)


async def test_only_admin_among_built_ins_makes_an_administrator(api: Api) -> None:
    """auth/ may not import the catalog: its admin test must agree with it."""
    store = api.state.store
    cat = Catalog.load(store)
    for t in BUILTIN_TEMPLATES:
        in_closure = any(x.id == ADMIN for x in cat.closure(t.id)) and t.context == "global"
        assert includes_admin(store, (t.id,)) == in_closure, t.id
    store.create_template(RoleTemplate(id="super", display_name="S", context="global",
                                       inherits=(ADMIN,)))
    store.create_template(RoleTemplate(id="super2", display_name="S2", context="global",
                                       inherits=("super",)))
    assert includes_admin(store, ("super2",)) and not includes_admin(store, ("user",))


async def test_principal_carries_global_roles_and_admin_through_groups(api: Api) -> None:
    admin = await api.admin()
    p = await authenticate_bearer(api.state, f"Bearer {admin}")
    assert p is not None and p.is_admin and p.global_roles == ("admin", "user")
    carl = await api.new_user(admin, "carl", groups=["root-ish"])
    token = await api.login("carl", USER_PASSWORD)
    p = await authenticate_bearer(api.state, f"Bearer {token}")
    assert p is not None and not p.is_admin and p.global_roles == ("user",)
    status, _ = await api.call("POST", "/v3/globalrolebindings", admin, json={
        "groupPrincipalId": "local_group://root-ish", "globalRoleId": "admin"})
    assert status == 201
    p = await authenticate_bearer(api.state, f"Bearer {token}")  # seen on the next request
    assert p is not None and p.is_admin and p.global_roles == ("admin", "user")
    assert (await api.call("GET", "/v3/auditlogs", token))[0] == 200
    assert carl["admin"] is False  # the user resource's flag: a direct admin binding only


async def test_user_creates_a_cluster_and_owns_it_user_base_cannot(api: Api) -> None:
    admin = await api.admin()
    uma = await api.new_user(admin, "uma")
    ben = await api.new_user(admin, "ben")
    _set_global_roles(api, ben["id"], "user-base")
    uma_t = await api.login("uma", USER_PASSWORD)
    ben_t = await api.login("ben", USER_PASSWORD)
    status, err = await api.call("POST", "/v3/clusters", ben_t, json={"name": "nope"})
    assert status == 403
    assert err["message"] == ("forbidden: create clusters (management.cattle.io) needs a global "
                              "role that allows it; your global roles: user-base")
    status, c = await api.call("POST", "/v3/clusters", uma_t, json={"name": "umas"})
    assert status == 201 and c["myRole"] == "cluster-owner" and c["registrationToken"]
    owners = api.state.store.list_bindings(c["id"])
    assert [(b.subject, b.role) for b in owners] == [(uma["id"], "cluster-owner")]
    status, listed = await api.call("GET", "/v3/clusters", uma_t)
    assert [x["id"] for x in listed["data"]] == [c["id"]]
    assert listed["data"][0]["myRole"] == "cluster-owner"
    # The owner manages it: binds a member, edits its endpoint, deletes it.
    status, b = await api.call("POST", "/v3/clusterroletemplatebindings", uma_t, json={
        "clusterId": c["id"], "userId": ben["id"], "roleTemplateId": "cluster-member"})
    want = list(Catalog.load(api.state.store).downstream_roles("cluster-member"))
    assert status == 201 and b["downstreamClusterRoles"] == want and "edit" in want
    status, _ = await api.call("PUT", f"/v3/clusters/{c['id']}/authorizedendpoint", uma_t,
                               json={"enabled": False})
    assert status == 200
    status, err = await api.call("PUT", f"/v3/clusters/{c['id']}/authorizedendpoint", ben_t,
                                 json={"enabled": True})
    assert status == 403 and "update clusters" in err["message"]
    assert (await api.call("DELETE", f"/v3/clusters/{c['id']}", uma_t))[0] == 200
    log = api.state.store.list_audit(20)
    assert any(e.action == "binding.create" and "(creator)" in e.result for e in log)


async def test_users_endpoints_need_users_rights(api: Api) -> None:
    admin = await api.admin()
    mgr = await api.new_user(admin, "mgr")
    eve = await api.new_user(admin, "eve")
    _set_global_roles(api, mgr["id"], "user", "users-manage")
    mgr_t = await api.login("mgr", USER_PASSWORD)
    eve_t = await api.login("eve", USER_PASSWORD)
    status, err = await api.call("POST", "/v3/users", eve_t, json={
        "username": "x1", "password": USER_PASSWORD})
    assert status == 403 and "create users" in err["message"] and "user" in err["message"]
    assert (await api.call("DELETE", f"/v3/users/{mgr['id']}", eve_t))[0] == 403
    assert (await api.call("GET", f"/v3/users/{mgr['id']}", eve_t))[0] == 404
    # A user manager manages users ...
    status, x = await api.call("POST", "/v3/users", mgr_t, json={
        "username": "x2", "password": USER_PASSWORD})
    assert status == 201
    listed = (await api.call("GET", "/v3/users", mgr_t))[1]["data"]
    assert {u["username"] for u in listed} == {"admin", "mgr", "eve", "x2"}
    assert (await api.call("PUT", f"/v3/users/{x['id']}", mgr_t, json={"enabled": False}))[0] \
        == 200
    assert (await api.call("DELETE", f"/v3/users/{x['id']}", mgr_t))[0] == 200
    # ... but neither makes an administrator nor touches one.
    status, err = await api.call("POST", "/v3/users", mgr_t, json={
        "username": "x3", "password": USER_PASSWORD, "admin": True})
    assert status == 403 and "which you do not hold" in err["message"]
    admin_id = api.state.store.user_by_username("admin")
    assert admin_id is not None
    status, _ = await api.call("POST", f"/v3/users/{admin_id.id}?action=setpassword", mgr_t,
                               json={"newPassword": "taken-over-12345"})
    assert status == 403
    assert (await api.call("PUT", f"/v3/users/{eve['id']}", mgr_t, json={"admin": True}))[0] \
        == 403
