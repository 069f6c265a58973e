"""deploy/ applies as it is: every kustomization renders with ``kubectl kustomize`` and the
stand-in (which keeps kube-apiserver's validation) accepts it with a server-side dry run."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_api_auth import crds
from tests.kube import KubeSimProc, kubectl

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATIONS = sorted(
    str(p.parent.relative_to(DEPLOY)) for p in DEPLOY.rglob("kustomization.yaml")
)
NAMESPACE = "cattle-system"


def render(rel: str) -> list[dict[str, Any]]:
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY / rel)], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProc]:
    proc = KubeSimProc(tmp_path_factory.mktemp("deploy"), ["--nodes", "1"]).start()
    try:
        # A server-side dry run creates nothing: the namespace the objects go to must exist.
        kubectl(proc.kubeconfig, "create", "namespace", NAMESPACE)
        yield proc
    finally:
        proc.stop()


def test_every_base_and_overlay_is_found() -> None:
    assert {"server/base", "server/overlays/tls-secret", "server/overlays/ingress",
            "kube-api-auth/base", "kube-api-auth/overlays/example"} <= set(KUSTOMIZATIONS)


@pytest.mark.parametrize("rel", KUSTOMIZATIONS)
def test_renders_and_is_accepted_by_a_server_side_dry_run(sim: KubeSimProc, rel: str) -> None:
    objs = render(rel)
    assert objs, rel
    for obj in objs:
        ns = obj["metadata"].get("namespace")
        assert ns in (None, NAMESPACE), (rel, obj["kind"], ns)
        for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            assert ":" in c["image"], (rel, c["image"])  # a pinned tag, set by the base
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False and sc.get(
                "readOnlyRootFilesystem") is True, (rel, c["name"])
            assert c.get("readinessProbe") and c.get("livenessProbe"), (rel, c["name"])
    if rel == "kube-api-auth/base":
        return  # the cluster's id is empty until an overlay sets it: not for applying
    out = kubectl(sim.kubeconfig, "apply", "--dry-run=server", "-k", str(DEPLOY / rel))
    assert "(server dry run)" in out.stdout, out.stdout


def test_the_webhook_config_is_kept_out_of_the_applied_folders() -> None:
    for rel in KUSTOMIZATIONS:
        assert all(o.get("kind") != "Config" for o in render(rel)), rel
    assert (DEPLOY / "kube-api-auth/control-plane/kube-api-authn-webhook.yaml").exists()


def test_deploy_crds_are_the_packaged_ones() -> None:
    shipped = {c["metadata"]["name"]: c for c in crds.manifests()}
    rendered = {o["metadata"]["name"]: o for o in render("kube-api-auth/base")
                if o["kind"] == "CustomResourceDefinition"}
    assert rendered.keys() == shipped.keys()
    for name, crd in shipped.items():
        got = dict(rendered[name])
        got["metadata"] = {k: v for k, v in got["metadata"].items() if k != "labels"}
        want = dict(crd)
        want["metadata"] = {k: v for k, v in crd["metadata"].items() if k != "labels"}
        assert got == want, name
