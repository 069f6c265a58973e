"""/v3/projects and /v3/projectroletemplatebindings: who sees, creates, changes and deletes
projects; project owners bind members to their project and not to another; a user with only a
project binding lists the cluster and gets a kubeconfig for it."""

from __future__ import annotations

from typing import Any

import yaml

from tests.server_api.conftest import USER_PASSWORD, Api


async def _cluster(api: Api, token: str, name: str) -> str:
    status, c = await api.call("POST", "/v3/clusters", token, json={"name": name})
    assert status == 201, c
    return str(c["id"])


async def _bind(api: Api, token: str, cid: str, user_id: str, role: str) -> None:
    status, b = await api.call("POST", "/v3/clusterroletemplatebindings", token, json={
        "clusterId": cid, "userId": user_id, "roleTemplateId": role})
    assert status == 201, b


async def _project(api: Api, token: str, cid: str, name: str) -> tuple[int, Any]:
    return await api.call("POST", "/v3/projects", token, json={"clusterId": cid, "name": name})


async def test_projects_visibility_and_who_may_create_change_delete(api: Api) -> None:
    admin = await api.admin()
    cid = await _cluster(api, admin, "prod")
    other = await _cluster(api, admin, "other")
    member = await api.new_user(admin, "mia")
    viewer = await api.new_user(admin, "vic")
    await _bind(api, admin, cid, member["id"], "cluster-member")
    await _bind(api, admin, cid, viewer["id"], "read-only")
    mia = await api.login("mia", USER_PASSWORD)
    vic = await api.login("vic", USER_PASSWORD)
    # Every cluster has Default and System; ids are <cluster>:<project>.
    _, listed = await api.call("GET", f"/v3/projects?clusterId={cid}", admin)
    assert {p["name"] for p in listed["data"]} == {"Default", "System"}
    default = next(p for p in listed["data"] if p["name"] == "Default")
    assert default["id"] == f"{cid}:{default['projectId']}" and default["clusterId"] == cid
    assert (await api.call("GET", f"/v3/projects/{default['id']}", admin))[1] == default
    # A cluster member may create a project, and becomes its owner.
    status, web = await _project(api, mia, cid, "web")
    assert status == 201 and web["id"].startswith(f"{cid}:p-")
    mine = api.state.store.list_bindings(cid, web["projectId"])
    assert [(b.subject, b.role) for b in mine] == [(member["id"], "project-owner")]
    assert (await _project(api, mia, cid, "web"))[0] == 409
    # A read-only member may not; on a cluster one has no access to, it is not found.
    status, err = await _project(api, vic, cid, "mine")
    assert status == 403 and "create projects" in err["message"]
    assert (await _project(api, mia, other, "x"))[0] == 404
    # The member sees the cluster's projects (projects-view); nothing of the other cluster.
    _, seen = await api.call("GET", "/v3/projects", mia)
    assert {p["name"] for p in seen["data"]} == {"Default", "System", "web"}
    # Changes and deletion: cluster owners only; Default and System stay.
    status, err = await api.call("PUT", f"/v3/projects/{web['id']}", mia,
                                 json={"description": "shop"})
    assert status == 403 and "update projects" in err["message"]
    status, upd = await api.call("PUT", f"/v3/projects/{web['id']}", admin,
                                 json={"description": "shop"})
    assert status == 200 and upd["description"] == "shop"
    assert (await api.call("DELETE", f"/v3/projects/{web['id']}", mia))[0] == 403
    status, err = await api.call("DELETE", f"/v3/projects/{default['id']}", admin)
    assert status == 422 and "Default" in err["message"]
    assert (await api.call("DELETE", f"/v3/projects/{web['id']}", admin))[0] == 200
    assert api.state.store.list_bindings(cid, web["projectId"]) == []
    # A project id of the wrong cluster, or not in <cluster>:<project> form, is not found.
    assert (await api.call("GET", f"/v3/projects/{other}:{default['projectId']}", admin))[0] \
        == 404
    assert (await api.call("GET", f"/v3/projects/{default['projectId']}", admin))[0] == 404
    actions = [e.action for e in api.state.store.list_audit(100)]
    assert {"project.create", "project.update", "project.delete"} <= set(actions)


async def test_project_owner_binds_members_to_their_project_only(api: Api) -> None:
    admin = await api.admin()
    cid = await _cluster(api, admin, "prod")
    far = await _cluster(api, admin, "far")
    olga = await api.new_user(admin, "olga")
    pete = await api.new_user(admin, "pete")
    status, web = await _project(api, admin, cid, "web")
    assert status == 201
    _, api_p = await _project(api, admin, cid, "api")
    far_default = next(p for p in (await api.call("GET", f"/v3/projects?clusterId={far}",
                                                  admin))[1]["data"] if p["name"] == "Default")
    status, ob = await api.call("POST", "/v3/projectroletemplatebindings", admin, json={
        "projectId": web["id"], "userId": olga["id"], "roleTemplateId": "project-owner"})
    assert status == 201 and ob["projectId"] == web["id"] and ob["id"].startswith("prtb-")
    assert "admin" in ob["downstreamClusterRoles"]
    o = await api.login("olga", USER_PASSWORD)
    status, pb = await api.call("POST", "/v3/projectroletemplatebindings", o, json={
        "projectId": web["id"], "userId": pete["id"], "roleTemplateId": "project-member"})
    assert status == 201, pb
    # Another project: one they cannot see is not found; one they are a member of is refused.
    other = {"projectId": api_p["id"], "userId": pete["id"], "roleTemplateId": "project-member"}
    assert (await api.call("POST", "/v3/projectroletemplatebindings", o, json=other))[0] == 404
    await api.call("POST", "/v3/projectroletemplatebindings", admin, json={
        "projectId": api_p["id"], "userId": olga["id"], "roleTemplateId": "project-member"})
    status, err = await api.call("POST", "/v3/projectroletemplatebindings", o, json=other)
    assert status == 403 and "create projectroletemplatebindings" in err["message"]
    assert f"project {api_p['id']}" in err["message"] and "project-member" in err["message"]
    status, _ = await api.call("POST", "/v3/projectroletemplatebindings", o, json={
        "projectId": far_default["id"], "userId": pete["id"], "roleTemplateId": "read-only"})
    assert status == 404
    # Nor may a project owner bind on the whole cluster.
    status, err = await api.call("POST", "/v3/clusterroletemplatebindings", o, json={
        "clusterId": cid, "userId": pete["id"], "roleTemplateId": "read-only"})
    assert status == 403
    # Templates of another context are refused, naming the field.
    status, err = await api.call("POST", "/v3/projectroletemplatebindings", o, json={
        "projectId": web["id"], "userId": pete["id"], "roleTemplateId": "cluster-owner"})
    assert status == 422 and "roleTemplateId" in err["message"]
    assert "not for a project binding" in err["message"]
    # The member lists the project's bindings, but may not delete them; the owner may.
    p = await api.login("pete", USER_PASSWORD)
    _, listed = await api.call("GET", f"/v3/projectroletemplatebindings?projectId={web['id']}",
                               p)
    creator = api.state.store.list_bindings(cid, web["projectId"])[0]  # admin, who created it
    assert {b["id"] for b in listed["data"]} == {creator.id, ob["id"], pb["id"]}
    status, err = await api.call("DELETE", f"/v3/projectroletemplatebindings/{ob['id']}", p)
    assert status == 403 and "delete projectroletemplatebindings" in err["message"]
    assert (await api.call("GET", f"/v3/projectroletemplatebindings/{pb['id']}", o))[0] == 200
    assert (await api.call("DELETE", f"/v3/projectroletemplatebindings/{pb['id']}", o))[0] == 200
    # A project binding is not a cluster binding (and the other way round).
    assert (await api.call("GET", f"/v3/clusterroletemplatebindings/{ob['id']}", admin))[0] \
        == 404
    actions = [e.action for e in api.state.store.list_audit(100)]
    assert actions.count("projectbinding.create") >= 2 and "projectbinding.delete" in actions


async def test_project_binding_validation(api: Api) -> None:
    admin = await api.admin()
    cid = await _cluster(api, admin, "prod")
    bob = await api.new_user(admin, "bob")
    _, listed = await api.call("GET", f"/v3/projects?clusterId={cid}", admin)
    pid = listed["data"][0]["id"]
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"projectId": "p-abc", "userId": bob["id"]}, 422, "'projectId' must match"),
        ({"projectId": pid}, 422, "exactly one of 'userId' and 'groupName'"),
        ({"projectId": pid, "userId": bob["id"], "groupName": "g"}, 422, "exactly one"),
        ({"projectId": pid, "groupPrincipalId": "ldap://x"}, 422, "groupPrincipalId"),
        ({"projectId": pid, "groupPrincipalId": "local_group://system:masters"}, 422,
         "groupPrincipalId"),
        ({"projectId": pid, "userId": "u-nobody"}, 404, "u-nobody"),
        ({"projectId": f"{cid}:p-nope", "userId": bob["id"]}, 404, "not found"),
    ]
    for body, want, needle in cases:
        status, err = await api.call("POST", "/v3/projectroletemplatebindings", admin,
                                     json={"roleTemplateId": "project-member", **body})
        assert status == want, (body, err)
        assert needle in err["message"], (body, err)
    status, g = await api.call("POST", "/v3/projectroletemplatebindings", admin, json={
        "projectId": pid, "groupPrincipalId": "local_group://devs",
        "roleTemplateId": "project-member"})
    assert status == 201 and g["groupName"] == "devs"


async def test_project_member_lists_the_cluster_and_gets_a_kubeconfig(api: Api) -> None:
    admin = await api.admin()
    cid = await _cluster(api, admin, "prod")
    await _cluster(api, admin, "hidden")
    pam = await api.new_user(admin, "pam")
    _, web = await _project(api, admin, cid, "web")
    status, _ = await api.call("POST", "/v3/projectroletemplatebindings", admin, json={
        "projectId": web["id"], "userId": pam["id"], "roleTemplateId": "project-member"})
    assert status == 201
    p = await api.login("pam", USER_PASSWORD)
    _, clusters = await api.call("GET", "/v3/clusters", p)
    assert [(c["id"], c["myRole"]) for c in clusters["data"]] == [(cid, "project-member")]
    _, projects = await api.call("GET", "/v3/projects", p)
    assert [x["id"] for x in projects["data"]] == [web["id"]]  # not Default nor System
    status, kc = await api.call("POST", f"/v3/clusters/{cid}?action=generateKubeconfig", p)
    assert status == 200, kc
    doc = yaml.safe_load(kc["config"])
    assert doc["clusters"][0]["cluster"]["server"].endswith(f"/k8s/clusters/{cid}")
    status, kc = await api.call("GET", "/v3/kubeconfig", p)
    assert status == 200 and len(yaml.safe_load(kc["config"])["clusters"]) == 1
