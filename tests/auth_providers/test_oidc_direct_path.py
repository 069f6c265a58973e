"""An OpenID Connect user's group-bound rights on the direct path (kubectl → the downstream API
server → kube-api-auth's TokenReview answer from the ClusterUserAttribute), end to end: the fake
issuer (``fake_oauth.py``, a real process) and the whole stack (the stand-in with RBAC and
kube-api-auth as its token webhook, the server, an imported agent, the authorized endpoint on).

The user's group (from the ID token's ``groups`` claim) is bound to ``cluster-member``; kubectl
works through both contexts of the user's kubeconfig. The issuer then takes the user out of the
group, and once the refresh saw it (the administrator's on-demand
``POST /v3/users/<id>?action=refreshGroups``: one refresh-token grant and a new ID token; or the
periodic refresh alone) both paths refuse:

- a user still a member of the cluster through another group: 403 on both paths (the token
  still authenticates; the group is gone from the ClusterUserAttribute kube-api-auth answers
  with, so RBAC refuses);
- a user whose only membership was that group: 403 on the proxy, 401 on the direct path (no
  longer a member: the ClusterUserAttribute and the token's ClusterAuthToken are taken away
  downstream, kube-api-auth no longer knows the token)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.auth_providers.fake_oauth import CLIENT_ID, CLIENT_SECRET
from tests.e2e.ace_stack import DIRECT_PATH_CACHE_S, ace_stack
from tests.kube import KubeSimProc, kubectl
from tests.procs import ServerProc, wait_until
from tests.rest import Rest

pytestmark = pytest.mark.slow

OIDC = "/v3-public/oidcProviders/oidc"
HTTP_TIMEOUT_S = 15.0
LONG_REFRESH_S = 86_400  # only the on-demand refresh runs in the first test
SHORT_REFRESH_S = 2  # the periodic refresh, for the second test
RECONCILE_S = 3.0  # one reconcile pass of the server, after the store changed
WEBHOOK_CACHE_S = DIRECT_PATH_CACHE_S  # the stand-in (as kube-apiserver) caches an answer twice
GRANTED_WITHIN_S = 10.0
CUA_NAMESPACE = "cattle-system"
FORBIDDEN = "forbidden"
UNAUTHORIZED = "unauthorized"


@dataclass
class Fake:
    url: str

    def post(self, path: str, body: dict[str, Any]) -> None:
        requests.post(self.url + path, json=body, timeout=HTTP_TIMEOUT_S).raise_for_status()


@contextlib.contextmanager
def running_fake() -> Iterator[Fake]:
    """The fake GitHub / OIDC authorization server as a process on loopback."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.auth_providers.fake_oauth"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield Fake(f"http://127.0.0.1:{int(proc.stdout.readline())}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def oidc_config(fake: Fake, refresh_s: int) -> dict[str, Any]:
    return {"enabled": True, "issuer": fake.url + "/oidc", "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET, "scopes": "openid profile offline_access",
            "groupsClaim": "groups", "refreshIntervalS": refresh_s}


@dataclass
class Stack:
    tmp: Path
    sim: KubeSimProc
    server: ServerProc
    admin: Rest
    cluster: str
    fake: Fake

    def login(self, user: str) -> Rest:
        """The redirect login (as a browser: redirects followed, cookies kept), JSON answer."""
        self.fake.post("/test/login_as", {"user": user})
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.server.ca_path)
        r = s.get(f"{self.server.url}{OIDC}/authorize?responseType=json", timeout=HTTP_TIMEOUT_S)
        assert r.status_code == 201, r.text
        return Rest(self.server.url, self.server.ca_path, str(r.json()["token"]))

    def kubeconfig(self, rest: Rest, name: str) -> Path:
        out = rest.call("POST", f"/v3/clusters/{self.cluster}?action=generateKubeconfig")
        kc = self.tmp / f"{name}.kubeconfig"
        kc.write_text(out["config"])
        contexts = {c["name"]: c for c in yaml.safe_load(out["config"])["contexts"]}
        assert set(contexts) == {"edge", "edge-direct"}, contexts
        return kc

    def attribute_groups(self, user_id: str) -> list[str] | None:
        """The groups of the user's ClusterUserAttribute downstream (what kube-api-auth
        answers the API server with); None while there is none."""
        r = kubectl(self.sim.kubeconfig, "get", "clusteruserattributes", "-n", CUA_NAMESPACE,
                    user_id, "-o", "json", check=False)
        if r.returncode != 0:
            return None
        return list(json.loads(r.stdout).get("groups") or [])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("oidc-direct")
    with running_fake() as fake, ace_stack(tmp) as s:
        admin, cid, server, sim = s["admin"], str(s["cluster"]), s["server"], s["sim"]
        assert isinstance(admin, Rest) and isinstance(server, ServerProc)
        assert isinstance(sim, KubeSimProc)
        admin.call("PUT", f"/v3/clusters/{cid}/authorizedendpoint", {"enabled": True})
        yield Stack(tmp, sim, server, admin, cid, fake)


def answer(kc: Path, context: str) -> tuple[bool, str]:
    """(allowed, kubectl's error) of listing nodes (cluster-scoped: only a cluster role gives
    it) through one context of the kubeconfig."""
    r = kubectl(kc, "--context", context, "get", "nodes", "-o", "name", check=False)
    return r.returncode == 0, r.stderr.strip().lower()


def refused(kc: Path, context: str) -> str:
    """kubectl's error once the context is refused; '' while it is still allowed."""
    ok, err = answer(kc, context)
    return "" if ok else err or "refused"


def default_project(stack: Stack) -> str:
    for p in stack.admin.call("GET", f"/v3/projects?clusterId={stack.cluster}")["data"]:
        if p["name"] == "Default":
            return str(p["id"])
    raise AssertionError("no Default project")


def grant_and_check(stack: Stack, user: str, group: str) -> tuple[Rest, str, Path]:
    """``group`` bound to cluster-member; the user logs in and lists nodes on both paths."""
    stack.admin.call("POST", "/v3/clusterroletemplatebindings", {
        "clusterId": stack.cluster, "groupPrincipalId": f"oidc_group://{group}",
        "roleTemplateId": "cluster-member"})
    rest = stack.login(user)
    me = rest.call("GET", "/v3/users?me=true")["data"][0]
    assert me["username"] == f"oidc_user://sub-{user}"
    assert f"oidc_group://{group}" in stack.admin.call("GET", f"/v3/users/{me['id']}")["groups"]
    kc = stack.kubeconfig(rest, user)
    wait_until(lambda: answer(kc, "edge")[0] and answer(kc, "edge-direct")[0],
               GRANTED_WITHIN_S, 0.3, what=f"{user} (oidc {group}) lists nodes on both paths")
    assert f"oidc_group://{group}" in (stack.attribute_groups(me["id"]) or [])
    return rest, str(me["id"]), kc


def lost_on_both(stack: Stack, kc: Path, user_id: str, group: str,
                 within_s: float) -> tuple[str, str]:
    """kubectl's errors on the proxy, then the direct path, once each refuses (the group gone
    from the ClusterUserAttribute in between, or the attribute gone)."""
    t0 = time.monotonic()
    proxy_err = wait_until(lambda: refused(kc, "edge"), within_s, 0.2,
                           what="refused on the proxy")
    proxy_s = time.monotonic() - t0
    wait_until(lambda: f"oidc_group://{group}" not in (stack.attribute_groups(user_id) or []),
               within_s, 0.2, what="the group gone from the ClusterUserAttribute")
    direct_err = wait_until(lambda: refused(kc, "edge-direct"), within_s + WEBHOOK_CACHE_S, 0.3,
                            what="refused on the direct path")
    print(f"oidc {group} lost: proxy {proxy_s:.1f} s, direct {time.monotonic() - t0:.1f} s")
    return proxy_err, direct_err


def test_oidc_group_removed_direct_path_forbidden_after_on_demand_refresh(stack: Stack) -> None:
    """alice stays a member of the cluster through staff (read-only on Default): once out of
    devs, the ClusterUserAttribute keeps her (groups: staff only) and both paths answer 403."""
    stack.admin.call("PUT", "/v3/authconfigs/oidc", oidc_config(stack.fake, LONG_REFRESH_S))
    stack.admin.call("POST", "/v3/projectroletemplatebindings", {
        "projectId": default_project(stack), "groupPrincipalId": "oidc_group://staff",
        "roleTemplateId": "read-only"})
    alice, alice_id, kc = grant_and_check(stack, "alice", "devs")
    stack.fake.post("/test/user", {"user": "alice", "groups": ["staff"]})
    # Nothing refreshes by itself (a day's period): both paths still allow.
    assert answer(kc, "edge")[0] and answer(kc, "edge-direct")[0]
    out = stack.admin.call("POST", f"/v3/users/{alice_id}?action=refreshGroups")
    assert out["groups"] == ["oidc_group://staff"], out
    proxy_err, direct_err = lost_on_both(stack, kc, alice_id, "devs", RECONCILE_S)
    assert FORBIDDEN in proxy_err, proxy_err
    assert FORBIDDEN in direct_err, direct_err
    assert stack.attribute_groups(alice_id) == ["oidc_group://staff"]
    # What staff gives is still there on both paths, and alice is still logged in.
    for ctx in ("edge", "edge-direct"):
        r = kubectl(kc, "--context", ctx, "get", "configmaps", "-n", "default", check=False)
        assert r.returncode == 0, (ctx, r.stderr)
    assert alice.call("GET", "/v3/users?me=true")["data"][0]["id"] == alice_id


def test_oidc_only_group_removed_direct_path_unauthorized_after_periodic_refresh(
        stack: Stack) -> None:
    """bob's only membership is ops: out of it, he is no member of the cluster any more. The
    periodic refresh (2 s) alone sees it; the proxy answers 403, the direct path 401."""
    stack.admin.call("PUT", "/v3/authconfigs/oidc", oidc_config(stack.fake, SHORT_REFRESH_S))
    _, bob_id, kc = grant_and_check(stack, "bob", "ops")
    stack.fake.post("/test/user", {"user": "bob", "groups": []})
    proxy_err, direct_err = lost_on_both(stack, kc, bob_id, "ops",
                                         SHORT_REFRESH_S + RECONCILE_S)
    assert FORBIDDEN in proxy_err, proxy_err
    assert UNAUTHORIZED in direct_err, direct_err
    assert stack.attribute_groups(bob_id) is None
    assert stack.admin.call("GET", f"/v3/users/{bob_id}")["groups"] == []
