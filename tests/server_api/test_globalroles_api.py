"""/v3/globalrolebindings: who may bind and unbind, one grants only what one holds, the last
administrator cannot be unbound, every change audited."""

from __future__ import annotations

from tests.server_api.conftest import USER_PASSWORD, Api


async def test_bind_and_unbind_global_roles(api: Api) -> None:
    admin = await api.admin()
    bob = await api.new_user(admin, "bob")
    bob_t = await api.login("bob", USER_PASSWORD)
    status, err = await api.call("POST", "/v3/globalrolebindings", bob_t, json={
        "userId": bob["id"], "globalRoleId": "admin"})
    assert status == 403 and "create globalrolebindings" in err["message"]
    status, g = await api.call("POST", "/v3/globalrolebindings", admin, json={
        "userId": bob["id"], "globalRoleId": "users-manage"})
    assert status == 201 and g["globalRoleId"] == "users-manage" and g["id"].startswith("grb-")
    assert g["userPrincipalId"] == f"local://{bob['id']}"
    assert (await api.call("POST", "/v3/globalrolebindings", admin, json={
        "userId": bob["id"], "globalRoleId": "users-manage"}))[0] == 409
    # Now bob manages bindings, but grants only what he holds.
    status, err = await api.call("POST", "/v3/globalrolebindings", bob_t, json={
        "groupPrincipalId": "local_group://ops", "globalRoleId": "admin"})
    assert status == 403 and "which you do not hold" in err["message"]
    status, ops = await api.call("POST", "/v3/globalrolebindings", bob_t, json={
        "groupPrincipalId": "local_group://ops", "globalRoleId": "users-manage"})
    assert status == 201 and ops["groupName"] == "ops"
    _, listed = await api.call("GET", "/v3/globalrolebindings", bob_t)
    assert {x["globalRoleId"] for x in listed["data"]} >= {"admin", "user", "users-manage"}
    assert (await api.call("DELETE", f"/v3/globalrolebindings/{ops['id']}", bob_t))[0] == 200
    # Without the right, one lists one's own only.
    eve = await api.new_user(admin, "eve")
    eve_t = await api.login("eve", USER_PASSWORD)
    _, own = await api.call("GET", "/v3/globalrolebindings", eve_t)
    assert [(x["userId"], x["globalRoleId"]) for x in own["data"]] == [(eve["id"], "user")]
    assert (await api.call("GET", f"/v3/globalrolebindings/{g['id']}", eve_t))[0] == 404
    assert (await api.call("DELETE", f"/v3/globalrolebindings/{g['id']}", eve_t))[0] == 403
    actions = [e.action for e in api.state.store.list_audit(100)]
    assert actions.count("globalrolebinding.create") >= 2
    assert "globalrolebinding.delete" in actions


async def test_validation(api: Api) -> None:
    admin = await api.admin()
    bob = await api.new_user(admin, "bob")
    for body, needle in (
        ({"userId": bob["id"], "globalRoleId": "cluster-owner"}, "'globalRoleId'"),
        ({"userId": bob["id"], "globalRoleId": "nope"}, "'globalRoleId': role template"),
        ({"userId": bob["id"]}, "'globalRoleId' is required"),
        ({"globalRoleId": "user"}, "exactly one of"),
    ):
        status, err = await api.call("POST", "/v3/globalrolebindings", admin, json=body)
        assert status == 422 and needle in err["message"], (body, err)


async def test_the_last_administrator_cannot_be_unbound(api: Api) -> None:
    admin = await api.admin()
    store = api.state.store
    admin_user = store.user_by_username("admin")
    assert admin_user is not None
    mine = next(g for g in store.global_bindings_for(admin_user.id, []) if g.role == "admin")
    status, err = await api.call("DELETE", f"/v3/globalrolebindings/{mine.id}", admin)
    assert status == 409 and "last one" in err["message"]
    # With a second administrator (here through a group), it can go.
    ann = await api.new_user(admin, "ann", groups=["root"])
    status, grp = await api.call("POST", "/v3/globalrolebindings", admin, json={
        "groupPrincipalId": "local_group://root", "globalRoleId": "admin"})
    assert status == 201
    # A disabled user is no administrator anyone can use.
    await api.call("PUT", f"/v3/users/{ann['id']}", admin, json={"enabled": False})
    assert (await api.call("DELETE", f"/v3/globalrolebindings/{mine.id}", admin))[0] == 409
    await api.call("PUT", f"/v3/users/{ann['id']}", admin, json={"enabled": True})
    assert (await api.call("DELETE", f"/v3/globalrolebindings/{mine.id}", admin))[0] == 200
    ann_t = await api.login("ann", USER_PASSWORD)
    status, err = await api.call("DELETE", f"/v3/globalrolebindings/{grp['id']}", ann_t)
    assert status == 409 and "last one" in err["message"]
