"""Who may do what: admins manage clusters and users; users see only the clusters they are bound
to; cluster owners manage their cluster's bindings; bad input gets a clear 4xx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from rancher_server.access.roles import cluster_role
from rancher_server.auth import Principal
from rancher_server.tunnel.agent_auth import AgentIdentity
from rancher_tunnel.messages import Message, PictureBegin, PictureMark
from tests.server_api.conftest import USER_PASSWORD, Api


async def test_admin_creates_cluster_and_gets_registration_command_once(api: Api) -> None:
    admin = await api.admin()
    status, c = await api.call("POST", "/v3/clusters", admin, json={"name": "prod"})
    assert status == 201, c
    assert c["id"].startswith("c-") and c["state"] == "pending"
    assert c["registrationToken"] and f"CATTLE_TOKEN={c['registrationToken']}" in c["command"]
    assert c["caChecksum"] == api.state.tls.ca_checksum
    status, got = await api.call("GET", f"/v3/clusters/{c['id']}", admin)
    assert status == 200 and "registrationToken" not in got and got["state"] == "pending"
    api.state.store.record_registration(c["id"], "10.0.0.1:6443", "")
    status, got = await api.call("GET", f"/v3/clusters/{c['id']}", admin)
    # registered once, no agent session now
    assert got["state"] == "unavailable", got
    assert got["transitioningMessage"] == "the cluster agent is not connected"
    assert (await api.call("POST", "/v3/clusters", admin, json={"name": "prod"}))[0] == 409


async def test_user_base_cannot_create_or_delete_and_sees_only_bound_clusters(api: Api) -> None:
    admin = await api.admin()
    bob = await api.new_user(admin, "bob")
    store = api.state.store
    for g in store.global_bindings_for(bob["id"], []):
        store.delete_global_binding(g.id)
    store.create_global_binding("user", bob["id"], "user-base")
    bob_token = await api.login("bob", USER_PASSWORD)
    status, err = await api.call("POST", "/v3/clusters", bob_token, json={"name": "x"})
    assert status == 403 and "create clusters" in err["message"]
    assert "user-base" in err["message"]
    ids = [(await api.call("POST", "/v3/clusters", admin, json={"name": n}))[1]["id"]
           for n in ("one", "two")]
    status, listed = await api.call("GET", "/v3/clusters", bob_token)
    assert status == 200 and listed["data"] == []
    assert (await api.call("GET", f"/v3/clusters/{ids[0]}", bob_token))[0] == 404
    status, b = await api.call("POST", "/v3/clusterroletemplatebindings", admin, json={
        "clusterId": ids[0], "userId": bob["id"], "roleTemplateId": "read-only"})
    assert status == 201 and b["downstreamClusterRoles"] == ["view"]
    status, listed = await api.call("GET", "/v3/clusters", bob_token)
    assert [c["id"] for c in listed["data"]] == [ids[0]]
    assert listed["data"][0]["myRole"] == "read-only"
    status, err = await api.call("DELETE", f"/v3/clusters/{ids[0]}", bob_token)
    assert status == 403 and "delete clusters" in err["message"]
    # A read-only member cannot grant roles on the cluster (and is told what is missing).
    status, err = await api.call("POST", "/v3/clusterroletemplatebindings", bob_token, json={
        "clusterId": ids[0], "userId": bob["id"], "roleTemplateId": "cluster-owner"})
    assert status == 403 and "create clusterroletemplatebindings" in err["message"]
    assert "read-only" in err["message"]
    # On a cluster they cannot see, they cannot tell it exists.
    status, _ = await api.call("POST", "/v3/clusterroletemplatebindings", bob_token, json={
        "clusterId": ids[1], "userId": bob["id"], "roleTemplateId": "read-only"})
    assert status == 404


async def test_cluster_role_strongest_of_user_and_group_bindings(api: Api) -> None:
    admin = await api.admin()
    dave = await api.new_user(admin, "dave", groups=["devs"])
    cid = (await api.call("POST", "/v3/clusters", admin, json={"name": "shared"}))[1]["id"]
    p = Principal(dave["id"], "dave", "dave", ("devs",), "token-x", False)
    assert cluster_role(api.state, p, cid) is None
    await api.call("POST", "/v3/clusterroletemplatebindings", admin, json={
        "clusterId": cid, "userId": dave["id"], "roleTemplateId": "read-only"})
    assert cluster_role(api.state, p, cid) == "read-only"
    status, gb = await api.call("POST", "/v3/clusterroletemplatebindings", admin, json={
        "clusterId": cid, "groupName": "devs", "roleTemplateId": "cluster-member"})
    assert status == 201 and gb["groupName"] == "devs"
    assert cluster_role(api.state, p, cid) == "cluster-member"
    admin_p = Principal("u-admin", "admin", "admin", (), "token-y", True)
    assert cluster_role(api.state, admin_p, cid) == "cluster-owner"
    # Deleting the cluster deletes its bindings.
    assert (await api.call("DELETE", f"/v3/clusters/{cid}", admin))[0] == 200
    assert api.state.store.list_bindings(cid) == []
    assert cluster_role(api.state, p, cid) is None


async def test_cluster_owner_manages_its_clusters_bindings(api: Api) -> None:
    admin = await api.admin()
    owner = await api.new_user(admin, "olga")
    other = await api.new_user(admin, "otto")
    cid = (await api.call("POST", "/v3/clusters", admin, json={"name": "team"}))[1]["id"]
    await api.call("POST", "/v3/clusterroletemplatebindings", admin, json={
        "clusterId": cid, "userId": owner["id"], "roleTemplateId": "cluster-owner"})
    olga = await api.login("olga", USER_PASSWORD)
    status, b = await api.call("POST", "/v3/clusterroletemplatebindings", olga, json={
        "clusterId": cid, "userId": other["id"], "roleTemplateId": "cluster-member"})
    assert status == 201, b
    status, listed = await api.call("GET", f"/v3/clusterroletemplatebindings?clusterId={cid}",
                                    olga)
    # The creator's (admin's) cluster-owner binding, olga's and otto's.
    assert len(listed["data"]) == 3
    otto = await api.login("otto", USER_PASSWORD)
    # A cluster member sees the cluster's bindings but may not delete one (not even their own).
    status, err = await api.call("DELETE", f"/v3/clusterroletemplatebindings/{b['id']}", otto)
    assert status == 403 and "delete clusterroletemplatebindings" in err["message"]
    assert (await api.call("DELETE", f"/v3/clusterroletemplatebindings/{b['id']}", olga))[0] \
        == 200
    assert (await api.call("GET", "/v3/clusters", otto))[1]["data"] == []


async def test_user_admin_operations(api: Api) -> None:
    admin = await api.admin()
    eve = await api.new_user(admin, "eve", name="Eve", groups=["qa"])
    assert eve["groups"] == ["qa"] and eve["admin"] is False and eve["name"] == "Eve"
    eve_token = await api.login("eve", USER_PASSWORD)
    assert (await api.call("GET", "/v3/users", eve_token))[1]["data"][0]["id"] == eve["id"]
    assert (await api.call("POST", "/v3/users", eve_token, json={
        "username": "mallory", "password": "p" * 16}))[0] == 403
    status, upd = await api.call("PUT", f"/v3/users/{eve['id']}", admin,
                                 json={"groups": ["qa", "ops"]})
    assert status == 200 and upd["groups"] == ["ops", "qa"]
    status, _ = await api.call("POST", f"/v3/users/{eve['id']}?action=setpassword", admin,
                               json={"newPassword": "another-password-1"})
    assert status == 200 and await api.login("eve", "another-password-1")
    status, listed = await api.call("GET", "/v3/users", admin)
    assert {u["username"] for u in listed["data"]} == {"admin", "eve"}
    me = (await api.call("GET", "/v3/users?me=true", admin))[1]["data"][0]
    assert (await api.call("DELETE", f"/v3/users/{me['id']}", admin))[0] == 422
    assert (await api.call("PUT", f"/v3/users/{me['id']}", admin, json={"enabled": False}))[0] \
        == 422
    assert (await api.call("DELETE", f"/v3/users/{eve['id']}", admin))[0] == 200
    assert (await api.call("GET", "/v3/users?me=true", eve_token))[0] == 401  # tokens went too


async def test_bad_input_gets_clear_4xx(api: Api) -> None:
    admin = await api.admin()
    cases = [
        ("POST", "/v3/clusters", {"name": "Not A DNS Label"}, 422, "name"),
        ("POST", "/v3/clusters", {}, 422, "'name' is required"),
        ("POST", "/v3/users", {"username": "x", "password": "short"}, 422, "password"),
        ("POST", "/v3/users", {"username": "u1", "password": "p" * 16,
                               "groups": ["system:masters"]}, 422, "groups"),
        ("POST", "/v3/users", {"username": "u2", "password": "p" * 16, "admin": "yes"}, 422,
         "true or false"),
        ("POST", "/v3/clusterroletemplatebindings", {"clusterId": "c-x",
                                                     "roleTemplateId": "god"}, 422,
         "'roleTemplateId': role template 'god' not found"),
        ("POST", "/v3/clusterroletemplatebindings", {"clusterId": "c-x",
                                                     "roleTemplateId": "God!"}, 422,
         "roleTemplateId"),
        ("POST", "/v3/clusterroletemplatebindings", {"clusterId": "c-x",
                                                     "roleTemplateId": "user"}, 422,
         "global template, not for a cluster binding"),
        ("POST", "/v3/tokens?action=fly", {}, 400, "unknown action"),
        ("POST", "/v3/tokens", {"ttl": -5}, 422, ">= 0"),
    ]
    for method, path, body, want, needle in cases:
        status, got = await api.call(method, path, admin, json=body)
        assert status == want, (path, body, got)
        assert needle in got["message"], got
    resp = await api.client.post("/v3/clusters", data=b"{not json",
                                 headers={"Authorization": f"Bearer {admin}",
                                          "Content-Type": "application/json"})
    assert resp.status == 400
    resp = await api.client.post("/v3/clusters", data=b"x" * (65 * 1024),
                                 headers={"Authorization": f"Bearer {admin}",
                                          "Content-Type": "application/json"})
    assert resp.status == 413


async def test_chunked_bodies_are_read_whole_and_bounded(api: Api) -> None:
    admin = await api.admin()
    headers = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}

    async def chunks(doc: bytes, size: int) -> AsyncIterator[bytes]:
        for i in range(0, len(doc), size):
            yield doc[i:i + size]
            await asyncio.sleep(0)

    big_but_ok = json.dumps({"description": "d" * 200, "pad": "x" * 40_000}).encode()
    resp = await api.client.post("/v3/tokens", data=chunks(big_but_ok, 1000), headers=headers)
    assert resp.status == 201, await resp.text()
    too_big = json.dumps({"pad": "x" * 100_000}).encode()
    resp = await api.client.post("/v3/tokens", data=chunks(too_big, 4096), headers=headers)
    assert resp.status == 413


class FakeSession:
    """Stands in for an agent's tunnel session in the registry."""

    def __init__(self) -> None:
        self.closed = False
        self.close_reason = ""
        self._closed = asyncio.Event()
        self._callbacks: list[Callable[[], None]] = []
        self.sent: list[Message] = []

    async def close(self, code: int, reason: str) -> None:
        self.closed = True
        self.close_reason = reason
        self._closed.set()
        for callback in self._callbacks:
            callback()

    def add_close_callback(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def send_message(self, msg: Message) -> None:
        self.sent.append(msg)


async def test_cluster_state_follows_its_agent_session_and_delete_disconnects(api: Api) -> None:
    admin = await api.admin()
    cid = (await api.call("POST", "/v3/clusters", admin, json={"name": "live"}))[1]["id"]
    session = FakeSession()
    identity = AgentIdentity(cluster=api.state.store.get_cluster(cid), role="cluster")
    await api.state.sessions.add(identity, session)  # type: ignore[arg-type]
    status, listed = await api.call("GET", "/v3/clusters", admin)
    assert listed["data"][0]["state"] == "unavailable"  # connected, no picture yet
    report = api.state.sessions.report_for(cid)  # the agent's snapshot: empty, then synced
    report.apply(PictureBegin(generation=1))
    report.apply(PictureMark(generation=1, seq=0, count=0, synced=True))
    status, listed = await api.call("GET", "/v3/clusters", admin)
    assert status == 200 and listed["data"][0]["state"] == "active"
    assert listed["data"][0]["connected"] is True
    assert (await api.call("DELETE", f"/v3/clusters/{cid}", admin))[0] == 200
    assert session.closed and session.close_reason == "cluster deleted"
    assert (await api.call("GET", f"/v3/clusters/{cid}", admin))[0] == 404
