"""The authorized cluster endpoint end to end: the stand-in configured with kube-api-auth as its
token webhook (as kube-apiserver would be), the server syncing tokens into it through the tunnel,
and kubectl's direct context working while the server is stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.ace_stack import ace_stack
from tests.kube import kubectl, kubectl_json
from tests.procs import ServerProc, wait_until
from tests.rest import Rest

USER_PASSWORD = "user-password-for-ace-1"
SYNC_WITHIN_S = 20.0
# kube-apiserver caches a successful webhook answer for about 10 s; a revocation shows on the
# direct path after that cache, the sync interval and one watch event.
REVOKED_WITHIN_S = 25.0


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[dict[str, object]]:
    with ace_stack(tmp_path) as stack:
        yield stack


def test_direct_context_works_without_the_server_and_revocation_reaches_it(
    procs: dict[str, object],
) -> None:
    tmp = procs["tmp"]
    server = procs["server"]
    admin = procs["admin"]
    cid = procs["cluster"]
    assert isinstance(tmp, Path) and isinstance(server, ServerProc) and isinstance(admin, Rest)
    assert isinstance(cid, str)
    # Turn the endpoint on through the REST API.
    setting = admin.call("PUT", f"/v3/clusters/{cid}/authorizedendpoint", {"enabled": True})
    assert setting["enabled"] is True
    assert admin.call("GET", f"/v3/clusters/{cid}/authorizedendpoint")["enabled"] is True
    user = admin.call("POST", "/v3/users", {"username": "frank", "password": USER_PASSWORD})
    admin.call(
        "POST",
        "/v3/clusterroletemplatebindings",
        {"clusterId": cid, "roleTemplateId": "read-only", "userId": user["id"]},
    )
    frank = Rest(server.url, server.ca_path)
    frank.token = frank.login("frank", USER_PASSWORD)
    out = frank.call("POST", f"/v3/clusters/{cid}?action=generateKubeconfig")
    kc = tmp / "frank.kubeconfig"
    kc.write_text(out["config"])
    contexts = {c["name"] for c in yaml.safe_load(out["config"])["contexts"]}
    assert contexts == {"edge", "edge-direct"}

    def direct_ok() -> bool:
        r = kubectl(
            kc, "--context", "edge-direct", "get", "configmaps", "-n", "default", check=False
        )
        return r.returncode == 0

    wait_until(direct_ok, SYNC_WITHIN_S, 0.5, what="token synced to the cluster")
    who = kubectl_json(kc, "--context", "edge-direct", "auth", "whoami")
    assert who["status"]["userInfo"]["username"] == user["id"]
    # read-only is enforced downstream on the direct path too.
    denied = kubectl(
        kc, "--context", "edge-direct", "create", "configmap", "x", "-n", "default", check=False
    )
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()

    # The server goes away: the direct context keeps working.
    server.stop()
    assert direct_ok()
    # A wrong secret is refused on the direct path.
    bad = yaml.safe_load(kc.read_text())
    bad["users"][0]["user"]["token"] = out["tokenId"] + ":" + "x" * 52
    bad_kc = tmp / "bad.kubeconfig"
    bad_kc.write_text(yaml.safe_dump(bad))
    refused = kubectl(bad_kc, "--context", "edge-direct", "get", "ns", check=False)
    assert refused.returncode != 0
    assert "Unauthorized" in refused.stderr or "logged in" in refused.stderr, refused.stderr

    # Back up; revoke the token: the direct path refuses it within seconds.
    server.start()
    frank.call("DELETE", f"/v3/tokens/{out['tokenId']}", token=admin.token)
    t0 = time.monotonic()
    wait_until(lambda: not direct_ok(), REVOKED_WITHIN_S, 0.5, what="revocation on direct path")
    assert time.monotonic() - t0 < REVOKED_WITHIN_S
