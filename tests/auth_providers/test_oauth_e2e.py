"""GitHub and OpenID Connect login end to end: the fake authorization server
(``fake_oauth.py``, a real process on loopback: GitHub's Enterprise API shapes and a standard
OIDC issuer) and the whole stack (stand-in with RBAC and kube-api-auth, the server, an imported
agent). Logins go through the real redirects with an HTTP client that follows them and keeps
cookies, as a browser does: configure each provider over the REST API, log in, kubectl through
the proxy with rights bound to a group principal, take the user out of the group in the provider
and see access end after a refresh; state mismatches and bad ID tokens are refused."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.auth_providers.fake_oauth import CLIENT_ID, CLIENT_SECRET, running
from tests.e2e.ace_stack import DIRECT_PATH_CACHE_S, ace_stack
from tests.e2e.test_access_e2e import both, can
from tests.kube import KubeSimProc
from tests.procs import ServerProc, wait_until
from tests.rest import ApiError, Rest

pytestmark = pytest.mark.slow

REFRESH_INTERVAL_S = 2
PROXY_LOST_WITHIN_S = REFRESH_INTERVAL_S + 3.0  # one refresh period and one reconcile pass
WEBHOOK_CACHE_S = DIRECT_PATH_CACHE_S  # the direct path: kube-apiserver's caches on top
GRANTED_WITHIN_S = 8.0
HTTP_TIMEOUT_S = 15.0
GH = "/v3-public/githubProviders/github"
OIDC = "/v3-public/oidcProviders/oidc"
TEAM_DEVS = "github_team://701"
ORG_BOB = "github_org://502"
OIDC_DEVS = "oidc_group://devs"


@dataclass
class Fake:
    proc: subprocess.Popen[str]
    url: str

    def post(self, path: str, body: dict[str, Any]) -> None:
        requests.post(self.url + path, json=body, timeout=HTTP_TIMEOUT_S).raise_for_status()


@dataclass
class Stack:
    tmp: Path
    server: ServerProc
    admin: Rest
    cluster: str
    fake: Fake

    def browser(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE would override the server's CA
        s.verify = str(self.server.ca_path)
        return s

    def login(self, path: str, user: str, *, json_answer: bool = True) -> requests.Response:
        self.fake.post("/test/login_as", {"user": user})
        query = "?responseType=json" if json_answer else ""
        return self.browser().get(f"{self.server.url}{path}/authorize{query}",
                                  timeout=HTTP_TIMEOUT_S)

    def token_of(self, path: str, user: str) -> Rest:
        r = self.login(path, user)
        assert r.status_code == 201, r.text
        return Rest(self.server.url, self.server.ca_path, str(r.json()["token"]))

    def kubeconfig(self, rest: Rest, name: str) -> Path:
        out = rest.call("POST", f"/v3/clusters/{self.cluster}?action=generateKubeconfig")
        kc = self.tmp / f"{name}.kubeconfig"
        kc.write_text(out["config"])
        assert {c["name"] for c in yaml.safe_load(out["config"])["contexts"]} == {
            "edge", "edge-direct"}
        return kc


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    with running() as (proc, port):
        yield Fake(proc, f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake: Fake) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("oauth")
    with ace_stack(tmp) as s:
        admin, cid, server = s["admin"], str(s["cluster"]), s["server"]
        assert isinstance(admin, Rest) and isinstance(server, ServerProc)
        assert isinstance(s["sim"], KubeSimProc)
        admin.call("PUT", f"/v3/clusters/{cid}/authorizedendpoint", {"enabled": True})
        yield Stack(tmp, server, admin, cid, fake)


def github_config(fake: Fake, **over: Any) -> dict[str, Any]:
    return {"enabled": True, "hostname": fake.url.removeprefix("http://"), "tlsEnabled": False,
            "apiPath": "/api/v3", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
            "refreshIntervalS": REFRESH_INTERVAL_S, **over}


def oidc_config(fake: Fake, **over: Any) -> dict[str, Any]:
    return {"enabled": True, "issuer": fake.url + "/oidc", "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET, "scopes": "openid profile offline_access",
            "refreshIntervalS": REFRESH_INTERVAL_S, **over}


def default_project(stack: Stack) -> str:
    for p in stack.admin.call("GET", f"/v3/projects?clusterId={stack.cluster}")["data"]:
        if p["name"] == "Default":
            return str(p["id"])
    raise AssertionError("no Default project")


def test_github_configuration_secret_never_shown_and_test_connection(stack: Stack) -> None:
    admin = stack.admin
    out = admin.call("PUT", "/v3/authconfigs/github", github_config(stack.fake))
    assert out["clientSecret"] == "" and out["secretSet"] is True
    assert out["apiUrl"] == stack.fake.url + "/api/v3"
    got = admin.call("GET", "/v3/authconfigs/github")
    assert got["clientSecret"] == "" and got["clientId"] == CLIENT_ID
    db = sqlite3.connect(stack.server.data_dir / "rancher.db")
    try:
        raw = db.execute("SELECT value FROM settings WHERE name='authconfig.github'").fetchone()
    finally:
        db.close()
    assert CLIENT_SECRET not in raw[0] and "aesgcm:" in raw[0]
    with pytest.raises(ApiError) as e:
        Rest(stack.server.url, stack.server.ca_path).call("GET", "/v3/authconfigs/github")
    assert e.value.status == 401
    ok = admin.call("POST", "/v3/authconfigs/github?action=testConnection", {})
    assert ok["ok"] is True, ok
    bad = admin.call("POST", "/v3/authconfigs/github?action=testConnection",
                     {"clientSecret": "wrong"})
    assert (bad["ok"], bad["stage"]) == (False, "client"), bad
    down = admin.call("POST", "/v3/authconfigs/github?action=testConnection",
                      {"hostname": "127.0.0.1:1"})
    assert (down["ok"], down["stage"]) == (False, "api"), down
    with pytest.raises(ApiError) as e:
        admin.call("PUT", "/v3/authconfigs/github", {"allowedPrincipalIds": ["oidc_user://x"]})
    assert e.value.status == 422
    providers = {p["id"] for p in Rest(stack.server.url, stack.server.ca_path).call(
        "GET", "/v3-public/authProviders")["data"]}
    assert "github" in providers


def test_github_browser_login_sets_the_session_cookie(stack: Stack) -> None:
    r = stack.login(GH, "alice", json_answer=False)
    assert r.status_code == 200 and r.url.endswith("/ui/"), (r.status_code, r.url)
    assert [h.status_code for h in r.history] == [302, 302, 302]
    cookies = {c.name: c for c in r.history[-1].cookies}
    assert cookies["R_SESS"].secure and cookies["R_SESS"].has_nonstandard_attr("HttpOnly")
    s = stack.browser()
    s.cookies.set("R_SESS", cookies["R_SESS"].value or "")
    me = s.get(f"{stack.server.url}/v3/users?me=true", timeout=HTTP_TIMEOUT_S).json()
    user = me["data"][0]
    assert user["username"] == "github_user://1001", user
    full = stack.admin.call("GET", f"/v3/users/{user['id']}")
    assert sorted(full["groups"]) == ["github_org://501", TEAM_DEVS]
    assert CLIENT_SECRET not in (stack.tmp / "server.log").read_text()


def test_state_mismatch_refused(stack: Stack) -> None:
    stack.fake.post("/test/login_as", {"user": "alice"})
    a = stack.browser()
    start = a.get(f"{stack.server.url}{GH}/authorize?responseType=json",
                  allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert start.status_code == 302
    at_idp = requests.get(start.headers["Location"], allow_redirects=False,
                          timeout=HTTP_TIMEOUT_S)
    callback = at_idp.headers["Location"]
    # Another browser (no state cookie) with this callback URL: refused.
    other = stack.browser().get(callback, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert other.status_code == 400, other.text
    # A made-up state: refused.
    forged = a.get(callback.replace("state=", "state=x"), allow_redirects=False,
                   timeout=HTTP_TIMEOUT_S)
    assert forged.status_code == 400, forged.text
    # The state was used up by the first refusal: even the right browser cannot replay it.
    replay = a.get(callback, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert replay.status_code == 400, replay.text


def test_github_team_rights_on_both_paths_then_lost_when_removed(stack: Stack) -> None:
    stack.admin.call("POST", "/v3/projectroletemplatebindings", {
        "projectId": default_project(stack), "groupPrincipalId": TEAM_DEVS,
        "roleTemplateId": "project-member"})
    alice = stack.token_of(GH, "alice")
    kc = stack.kubeconfig(alice, "gh-alice")
    wait_until(lambda: both(kc, "create", "configmap", "default") == (True, True),
               GRANTED_WITHIN_S, 0.3, what="alice (team devs) creates configmaps")
    stack.fake.post("/test/user", {"user": "alice", "teams": []})
    wait_until(lambda: not can(kc, "edge", "create", "configmap", "default"),
               PROXY_LOST_WITHIN_S, 0.2, what="alice out of the team (proxy)")
    wait_until(lambda: not can(kc, "edge-direct", "create", "configmap", "default"),
               PROXY_LOST_WITHIN_S + WEBHOOK_CACHE_S, 0.3,
               what="alice out of the team (direct path)")
    me = alice.call("GET", "/v3/users?me=true")["data"][0]
    assert stack.admin.call("GET", f"/v3/users/{me['id']}")["groups"] == ["github_org://501"]
    # The user's token revoked at GitHub: the next refresh takes access away altogether.
    stack.fake.post("/test/revoke", {"user": "alice"})
    wait_until(lambda: _refused(alice), PROXY_LOST_WITHIN_S, 0.2, what="alice disabled")


def _refused(rest: Rest) -> bool:
    try:
        rest.call("GET", "/v3/users?me=true")
    except ApiError as e:
        return e.status == 401
    return False


def test_github_device_flow_for_a_cli(stack: Stack) -> None:
    anon = Rest(stack.server.url, stack.server.ca_path)
    start = anon.call("POST", f"{GH}?action=deviceCode")
    assert start["userCode"] and start["verificationUri"].endswith("/login/device")
    assert "device_code" not in json.dumps(start)  # GitHub's device code stays in the server
    pending = requests.post(f"{stack.server.url}{GH}?action=deviceLogin",
                            json={"deviceHandle": start["deviceHandle"]},
                            verify=str(stack.server.ca_path), timeout=HTTP_TIMEOUT_S)
    assert pending.status_code == 202 and pending.json()["pending"] is True
    stack.fake.post("/test/login_as", {"user": "bob"})
    stack.fake.post("/login/device", {"user_code": start["userCode"]})
    out = anon.call("POST", f"{GH}?action=deviceLogin", {"deviceHandle": start["deviceHandle"]})
    bob = Rest(stack.server.url, stack.server.ca_path, str(out["token"]))
    assert bob.call("GET", "/v3/users?me=true")["data"][0]["username"] == "github_user://1002"
    with pytest.raises(ApiError) as e:  # used up
        anon.call("POST", f"{GH}?action=deviceLogin", {"deviceHandle": start["deviceHandle"]})
    assert e.value.status == 400


def test_github_allowed_principals(stack: Stack) -> None:
    stack.admin.call("PUT", "/v3/authconfigs/github", {"allowedPrincipalIds": [ORG_BOB]})
    assert stack.login(GH, "alice").status_code == 403
    assert stack.login(GH, "bob").status_code == 201
    stack.admin.call("PUT", "/v3/authconfigs/github", {"allowedPrincipalIds": []})


def test_oidc_configuration_and_test_connection(stack: Stack) -> None:
    admin = stack.admin
    out = admin.call("PUT", "/v3/authconfigs/oidc", oidc_config(stack.fake))
    assert out["clientSecret"] == "" and out["secretSet"] is True
    ok = admin.call("POST", "/v3/authconfigs/oidc?action=testConnection", {})
    assert ok["ok"] is True and [s["stage"] for s in ok["steps"]] == [
        "discovery", "jwks", "client"], ok
    wrong = admin.call("POST", "/v3/authconfigs/oidc?action=testConnection",
                       {"issuer": stack.fake.url + "/nowhere"})
    assert (wrong["ok"], wrong["stage"]) == (False, "discovery"), wrong
    bad = admin.call("POST", "/v3/authconfigs/oidc?action=testConnection",
                     {"clientSecret": "wrong"})
    assert (bad["ok"], bad["stage"]) == (False, "client"), bad


@pytest.mark.parametrize("mode", ["wrong_issuer", "bad_signature", "expired", "wrong_audience"])
def test_oidc_bad_id_token_refused(stack: Stack, mode: str) -> None:
    stack.fake.post("/test/id_token_mode", {"mode": mode})
    try:
        r = stack.login(OIDC, "alice")
    finally:
        stack.fake.post("/test/id_token_mode", {"mode": "ok"})
    assert r.status_code == 401 and "id_token" in r.json()["message"], r.text


def _device_start(stack: Stack, path: str) -> tuple[Rest, dict[str, Any]]:
    anon = Rest(stack.server.url, stack.server.ca_path)
    return anon, anon.call("POST", f"{path}?action=deviceCode")


def test_oidc_device_flow_for_a_cli(stack: Stack) -> None:
    """RFC 8628 at the issuer, through the server (what ``rancher login --provider oidc``
    drives): pending until the user enters the code, then a token for the ID token's subject
    with the groups of its claim; used once; an ID token that fails validation refused at the
    poll; an issuer without a device endpoint named as such."""
    anon, start = _device_start(stack, OIDC)
    assert start["verificationUri"] == stack.fake.url + "/oidc/device"
    assert start["verificationUriComplete"].endswith(f"user_code={start['userCode']}")
    assert "device_code" not in json.dumps(start)  # the issuer's device code stays in the server
    handle = {"deviceHandle": start["deviceHandle"]}
    pending = requests.post(f"{stack.server.url}{OIDC}?action=deviceLogin", json=handle,
                            verify=str(stack.server.ca_path), timeout=HTTP_TIMEOUT_S)
    assert pending.status_code == 202 and pending.json()["pending"] is True
    stack.fake.post("/test/login_as", {"user": "bob"})
    stack.fake.post("/login/device", {"user_code": start["userCode"]})
    out = anon.call("POST", f"{OIDC}?action=deviceLogin", handle)
    bob = Rest(stack.server.url, stack.server.ca_path, str(out["token"]))
    me = bob.call("GET", "/v3/users?me=true")["data"][0]
    assert me["username"] == "oidc_user://sub-bob"
    assert stack.admin.call("GET", f"/v3/users/{me['id']}")["groups"] == ["oidc_group://ops"]
    with pytest.raises(ApiError) as e:  # used up
        anon.call("POST", f"{OIDC}?action=deviceLogin", handle)
    assert e.value.status == 400

    anon, start = _device_start(stack, OIDC)
    stack.fake.post("/login/device", {"user_code": start["userCode"]})
    stack.fake.post("/test/id_token_mode", {"mode": "bad_signature"})
    try:
        with pytest.raises(ApiError) as e:
            anon.call("POST", f"{OIDC}?action=deviceLogin", {"deviceHandle": start["deviceHandle"]})
    finally:
        stack.fake.post("/test/id_token_mode", {"mode": "ok"})
    assert e.value.status == 401 and "id_token" in str(e.value), e.value

    stack.fake.post("/test/id_token_mode", {"mode": "no_device"})
    try:  # a saved configuration reads the discovery document again
        stack.admin.call("PUT", "/v3/authconfigs/oidc", {"refreshIntervalS": REFRESH_INTERVAL_S})
        with pytest.raises(ApiError) as e:
            _device_start(stack, OIDC)
    finally:
        stack.fake.post("/test/id_token_mode", {"mode": "ok"})
        stack.admin.call("PUT", "/v3/authconfigs/oidc", {"refreshIntervalS": REFRESH_INTERVAL_S})
    assert e.value.status == 503 and "offers no device login" in str(e.value), e.value


def test_oidc_group_rights_then_lost_after_refresh(stack: Stack) -> None:
    stack.admin.call("POST", "/v3/projectroletemplatebindings", {
        "projectId": default_project(stack), "groupPrincipalId": OIDC_DEVS,
        "roleTemplateId": "project-member"})
    alice = stack.token_of(OIDC, "alice")
    me = alice.call("GET", "/v3/users?me=true")["data"][0]
    assert me["username"] == "oidc_user://sub-alice"
    full = stack.admin.call("GET", f"/v3/users/{me['id']}")
    assert sorted(full["groups"]) == [OIDC_DEVS, "oidc_group://staff"]
    kc = stack.kubeconfig(alice, "oidc-alice")
    wait_until(lambda: can(kc, "edge", "create", "configmap", "default"), GRANTED_WITHIN_S,
               0.3, what="alice (oidc devs) creates configmaps")
    # Out of devs at the issuer: the refresh (refresh-token grant, new ID token) sees it.
    stack.fake.post("/test/user", {"user": "alice", "groups": ["staff"]})
    wait_until(lambda: not can(kc, "edge", "create", "configmap", "default"),
               PROXY_LOST_WITHIN_S, 0.2, what="alice out of devs (proxy)")
    full = stack.admin.call("GET", f"/v3/users/{me['id']}")
    assert full["groups"] == ["oidc_group://staff"], json.dumps(full)
