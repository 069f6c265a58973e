"""/v3/roletemplates and /v3/globalroles: listing with context and hidden ones, custom templates
created, validated, edited, locked and deleted; built-ins read-only; who may."""

from __future__ import annotations

from typing import Any

from tests.server_api.conftest import USER_PASSWORD, Api

RULES = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}]


async def _template(api: Api, token: str, **body: Any) -> tuple[int, Any]:
    return await api.call("POST", "/v3/roletemplates", token, json={
        "name": "Pod Reader", "context": "project", "rules": RULES, **body})


async def test_list_by_context_and_hidden_only_with_all(api: Api) -> None:
    admin = await api.admin()
    status, listed = await api.call("GET", "/v3/roletemplates", admin)
    ids = {t["id"] for t in listed["data"]}
    assert status == 200 and {"cluster-owner", "project-member", "user", "read-only"} <= ids
    assert "kube-edit" not in ids and "kube-cluster-admin" not in ids  # hidden building blocks
    _, everything = await api.call("GET", "/v3/roletemplates?all=true", admin)
    assert {"kube-edit", "kube-cluster-admin"} <= {t["id"] for t in everything["data"]}
    _, clusters = await api.call("GET", "/v3/roletemplates?context=cluster", admin)
    assert clusters["data"] and {t["context"] for t in clusters["data"]} == {"cluster"}
    status, owner = await api.call("GET", "/v3/roletemplates/cluster-owner", admin)
    assert status == 200 and owner["builtin"] and owner["roleTemplateIds"] == ["kube-cluster-admin"]
    assert owner["downstreamClusterRoles"] == ["cluster-admin"]
    assert (await api.call("GET", "/v3/roletemplates/nope", admin))[0] == 404
    _, globals_ = await api.call("GET", "/v3/globalroles", admin)
    assert {"admin", "user", "user-base"} <= {g["id"] for g in globals_["data"]}
    assert {g["type"] for g in globals_["data"]} == {"globalRole"}
    assert (await api.call("GET", "/v3/globalroles/user", admin))[1]["roleTemplateIds"] == [
        "user-base", "clusters-create"]
    assert (await api.call("GET", "/v3/globalroles/cluster-owner", admin))[0] == 404


async def test_custom_template_lifecycle_and_audit(api: Api) -> None:
    admin = await api.admin()
    status, t = await _template(api, admin, roleTemplateIds=["kube-view"], description="reads pods")
    assert status == 201, t
    assert t["id"].startswith("rt-") and not t["builtin"] and t["rules"] == RULES
    assert t["downstreamClusterRoles"] == sorted(["view", f"cattle-rt-{t['id']}"])
    status, named = await _template(api, admin, id="pod-reader")
    assert status == 201 and named["id"] == "pod-reader"
    assert (await _template(api, admin, id="pod-reader"))[0] == 409
    status, upd = await api.call("PUT", f"/v3/roletemplates/{t['id']}", admin,
                                 json={"name": "Pods", "locked": True})
    assert status == 200 and upd["locked"] and upd["name"] == "Pods" and upd["rules"] == RULES
    assert upd["context"] == "project"
    assert (await api.call("GET", f"/v3/roletemplates/{t['id']}", admin))[1]["locked"]
    status, _ = await api.call("DELETE", f"/v3/roletemplates/{named['id']}", admin)
    assert status == 200
    assert (await api.call("GET", f"/v3/roletemplates/{named['id']}", admin))[0] == 404
    actions = {e.action for e in api.state.store.list_audit(50)}
    assert {"roletemplate.create", "roletemplate.update", "roletemplate.delete"} <= actions


async def test_validation_errors_name_the_problem(api: Api) -> None:
    admin = await api.admin()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"context": "galaxy"}, "'context' must be one of"),
        ({"name": ""}, "'name'"),
        ({"rules": [{"apiGroups": ["apps"], "resources": ["pods"]}]}, "verbs"),
        ({"rules": [{"verbs": ["get"], "resources": ["pods"], "colour": ["red"]}]}, "colour"),
        ({"rules": "all"}, "'rules' must be an array"),
        ({"roleTemplateIds": ["cluster-owner"]}, "'cluster-owner' is a cluster template"),
        ({"roleTemplateIds": ["ghost"]}, "'ghost' not found"),
        ({"id": "cluster-owner"}, "built-in"),
        ({"id": "Bad_Id"}, "'id'"),
    ]
    for extra, needle in cases:
        status, err = await _template(api, admin, **extra)
        assert status == 422, (extra, err)
        assert needle in err["message"], (extra, err)


async def test_built_ins_are_read_only(api: Api) -> None:
    admin = await api.admin()
    for method, body in (("PUT", {"locked": True}), ("DELETE", None)):
        status, err = await api.call(method, "/v3/roletemplates/project-owner", admin, json=body)
        assert status == 403 and "built in and read-only" in err["message"], err


async def test_delete_refused_while_bound(api: Api) -> None:
    admin = await api.admin()
    _, t = await _template(api, admin)
    cid = (await api.call("POST", "/v3/clusters", admin, json={"name": "c"}))[1]["id"]
    bob = await api.new_user(admin, "bob")
    status, b = await api.call("POST", "/v3/clusterroletemplatebindings", admin, json={
        "clusterId": cid, "userId": bob["id"], "roleTemplateId": t["id"]})
    assert status == 201
    status, err = await api.call("DELETE", f"/v3/roletemplates/{t['id']}", admin)
    assert status == 409 and "bound" in err["message"]
    await api.call("DELETE", f"/v3/clusterroletemplatebindings/{b['id']}", admin)
    assert (await api.call("DELETE", f"/v3/roletemplates/{t['id']}", admin))[0] == 200


async def test_locked_templates_refuse_new_bindings(api: Api) -> None:
    admin = await api.admin()
    _, t = await _template(api, admin, locked=True)
    cid = (await api.call("POST", "/v3/clusters", admin, json={"name": "c"}))[1]["id"]
    bob = await api.new_user(admin, "bob")
    status, err = await api.call("POST", "/v3/clusterroletemplatebindings", admin, json={
        "clusterId": cid, "userId": bob["id"], "roleTemplateId": t["id"]})
    assert status == 422 and "locked" in err["message"] and "roleTemplateId" in err["message"]
    default = next(p for p in (await api.call("GET", f"/v3/projects?clusterId={cid}", admin))[1][
        "data"] if p["name"] == "Default")
    status, err = await api.call("POST", "/v3/projectroletemplatebindings", admin, json={
        "projectId": default["id"], "userId": bob["id"], "roleTemplateId": t["id"]})
    assert status == 422 and "locked" in err["message"]
    # Unlocked, it binds again.
    await api.call("PUT", f"/v3/roletemplates/{t['id']}", admin, json={"locked": False})
    status, _ = await api.call("POST", "/v3/projectroletemplatebindings", admin, json={
        "projectId": default["id"], "userId": bob["id"], "roleTemplateId": t["id"]})
    assert status == 201


async def test_who_may_change_templates(api: Api) -> None:
    admin = await api.admin()
    bob = await api.new_user(admin, "bob")
    bob_t = await api.login("bob", USER_PASSWORD)
    assert (await api.call("GET", "/v3/roletemplates", bob_t))[0] == 200  # user-base reads
    status, err = await _template(api, bob_t)
    assert status == 403 and "create roletemplates" in err["message"]
    status, _ = await api.call("POST", "/v3/globalrolebindings", admin, json={
        "userId": bob["id"], "globalRoleId": "roles-manage"})
    assert status == 201
    status, t = await _template(api, bob_t)
    assert status == 201
    assert (await api.call("DELETE", f"/v3/roletemplates/{t['id']}", bob_t))[0] == 200
