"""The deploy/ manifests agree with the code: flags exist, ports match, RBAC is minimal."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_api_auth import config, crds, watch
from kube_api_auth.constants import DEFAULT_LISTEN_PORT, DEFAULT_NAMESPACE
from kube_api_auth.server import AUTHENTICATE_PATH, HEALTH_PATH

pytestmark = pytest.mark.timeout(10)
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kube-api-auth"


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def rendered(overlay: str) -> list[dict[str, Any]]:
    """What ``kubectl apply -k`` would send (kubectl renders kustomize itself)."""
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY / overlay)], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_daemonset_args_parse_and_match_webhook_config() -> None:
    objs = rendered("overlays/example")
    (ds,) = [d for d in objs if d["kind"] == "DaemonSet"]
    (cm,) = [d for d in objs if d["kind"] == "ConfigMap"]
    container = ds["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for e in container["env"]:
        if "valueFrom" in e:
            ref = e["valueFrom"]["configMapKeyRef"]
            assert ref["name"] == cm["metadata"]["name"]  # the generated (hashed) name
            env[e["name"]] = cm["data"][ref["key"]]
        else:
            env[e["name"]] = e["value"]
    cfg = config.parse(container["args"], env=env)
    assert (cfg.listen_host, cfg.listen_port) == ("127.0.0.1", DEFAULT_LISTEN_PORT)
    assert cfg.cluster_name == "c-example"
    assert cfg.secret_label_selector == "cattle.io/managed-by=rancher-py"
    assert ds["spec"]["template"]["spec"]["hostNetwork"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == HEALTH_PATH
    # The API server's webhook config goes on control-plane nodes, never into the cluster.
    assert all(d.get("kind") != "Config" for d in objs)
    (hook,) = docs("control-plane/kube-api-authn-webhook.yaml")
    server = hook["clusters"][0]["cluster"]["server"]
    assert server == f"http://127.0.0.1:{cfg.listen_port}{AUTHENTICATE_PATH}"


def test_rbac_is_list_watch_of_the_watched_collections_only() -> None:
    objs = {d["kind"]: d for d in docs("base/rbac.yaml")}
    assert "ClusterRole" not in objs and "ClusterRoleBinding" not in objs
    role = objs["Role"]
    assert role["metadata"]["namespace"] == DEFAULT_NAMESPACE
    granted = {
        (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    for rule in role["rules"]:
        assert sorted(rule["verbs"]) == ["list", "watch"]
    wanted = set()
    for res in watch.resources():
        parts = res.path.split("/")
        group = "" if parts[1] == "api" else parts[2]
        wanted.add((group, parts[-1]))
    assert granted == wanted


def test_crds_serve_the_watched_paths() -> None:
    paths = {r.path for r in watch.resources()}
    for crd in crds.manifests():
        spec = crd["spec"]
        assert spec["scope"] == "Namespaced"
        (version,) = spec["versions"]
        path = (
            f"/apis/{spec['group']}/{version['name']}/namespaces/{DEFAULT_NAMESPACE}/"
            f"{spec['names']['plural']}"
        )
        assert path in paths


def test_env_and_flag_precedence() -> None:
    env = {
        "KUBE_API_AUTH_CLUSTER_NAME": "from-env",
        "KUBE_API_AUTH_LISTEN_PORT": "7000",
        "KUBECONFIG": "/tmp/kc",
    }
    cfg = config.parse(["--cluster-name", "from-flag"], env=env)
    assert (cfg.cluster_name, cfg.listen_port, str(cfg.kubeconfig)) == (
        "from-flag",
        7000,
        "/tmp/kc",
    )
    with pytest.raises(SystemExit):
        config.parse(["--tls-cert-file", "/x"], env={})
