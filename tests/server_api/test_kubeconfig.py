"""Kubeconfig documents: valid for kubectl, pointing at the proxy, CA embedded."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from rancher_server.auth import authenticate_bearer
from rancher_server.clusters.kubeconfig import KubeconfigCluster, build_kubeconfig
from tests.server_api.conftest import USER_PASSWORD, Api

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KUBECTL_TIMEOUT_S = 30


def kubectl_view(path: Path) -> dict[str, object]:
    out = subprocess.run(
        ["kubectl", "config", "view", "--raw", "-o", "json", "--kubeconfig", str(path)],
        check=True, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S)
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


def test_build_kubeconfig_is_valid_for_kubectl(tmp_path: Path) -> None:
    text = build_kubeconfig("https://rancher.example:8443/", CA,
                            [KubeconfigCluster("c-aaaaa", "prod"),
                             KubeconfigCluster("c-bbbbb", "dev")], "token-x:secret", "alice")
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    doc = kubectl_view(path)
    assert doc["current-context"] == "prod"
    clusters = {c["name"]: c["cluster"] for c in doc["clusters"]}  # type: ignore[attr-defined]
    assert clusters["prod"]["server"] == "https://rancher.example:8443/k8s/clusters/c-aaaaa"
    assert clusters["dev"]["server"] == "https://rancher.example:8443/k8s/clusters/c-bbbbb"
    assert base64.b64decode(clusters["prod"]["certificate-authority-data"]) == CA
    users = doc["users"]
    assert users == [{"name": "alice", "user": {"token": "token-x:secret"}}]
    out = subprocess.run(["kubectl", "config", "get-contexts", "-o", "name", "--kubeconfig",
                          str(path)], check=True, capture_output=True, text=True,
                         timeout=KUBECTL_TIMEOUT_S)
    assert out.stdout.split() == ["dev", "prod"]


def test_build_kubeconfig_needs_a_cluster() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_kubeconfig("https://x", CA, [], "t", "u")


async def test_generate_kubeconfig_api_issues_a_working_token(api: Api, tmp_path: Path) -> None:
    admin = await api.admin()
    bob = await api.new_user(admin, "bob")
    c1 = (await api.call("POST", "/v3/clusters", admin, json={"name": "one"}))[1]["id"]
    c2 = (await api.call("POST", "/v3/clusters", admin, json={"name": "two"}))[1]["id"]
    await api.call("POST", "/v3/clusters", admin, json={"name": "hidden"})
    for cid in (c1, c2):
        await api.call("POST", "/v3/clusterroletemplatebindings", admin, json={
            "clusterId": cid, "userId": bob["id"], "roleTemplateId": "cluster-member"})
    token = await api.login("bob", USER_PASSWORD)
    status, one = await api.call("POST", f"/v3/clusters/{c1}?action=generateKubeconfig", token,
                                 json={})
    assert status == 200, one
    path = tmp_path / "one.yaml"
    path.write_text(one["config"])
    doc = kubectl_view(path)
    assert [c["name"] for c in doc["clusters"]] == ["one"]  # type: ignore[attr-defined]
    assert base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]) \
        == api.state.tls.ca_pem  # type: ignore[index]
    kube_token = yaml.safe_load(one["config"])["users"][0]["user"]["token"]
    assert kube_token != token
    principal = await authenticate_bearer(api.state, f"Bearer {kube_token}")
    assert principal is not None and principal.username == "bob"
    tok = api.state.store.get_token(kube_token.split(":")[0])
    assert tok.description == "kubeconfig" and tok.kind == "api" and tok.expires_at is not None
    status, every = await api.call("GET", "/v3/kubeconfig", token)
    assert status == 200
    contexts = [c["name"] for c in yaml.safe_load(every["config"])["contexts"]]
    assert contexts == ["one", "two"]  # not "hidden"
    hidden_id = next(c.id for c in api.state.store.list_clusters() if c.name == "hidden")
    assert (await api.call("POST", f"/v3/clusters/{hidden_id}?action=generateKubeconfig",
                           token, json={}))[0] == 404
