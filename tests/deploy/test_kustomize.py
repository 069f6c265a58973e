"""deploy/ applies as it is: every kustomization renders with ``kubectl kustomize`` and the
stand-in (which keeps kube-apiserver's validation) accepts it with a server-side dry run. Kinds
the stand-in does not serve (the HA overlay's StatefulSet, PodDisruptionBudget, NetworkPolicy)
are checked against kubernetes_asyncio's generated models instead: no unknown field, every
required field present."""

from __future__ import annotations

import re
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
HA = "server/overlays/ha"
PEER_PORT = 8444
_SCALARS: dict[str, type | tuple[type, ...]] = {
    "str": str, "int": int, "bool": bool, "float": (int, float), "object": object,
    "datetime": str, "date": str}


def render(rel: str) -> list[dict[str, Any]]:
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY / rel)], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def served_kinds(kubeconfig: Path) -> set[tuple[str, str]]:
    """(apiVersion, kind) of every resource the stand-in serves."""
    out = kubectl(kubeconfig, "api-resources", "--no-headers").stdout
    return {(cols[-3], cols[-1]) for cols in (line.split() for line in out.splitlines()) if cols}


def check_model(typ: str, value: Any, where: str) -> Any:
    """``value`` as kubernetes_asyncio's model ``typ`` would take it: raises on an unknown field,
    a missing required one or a value of the wrong type."""
    from kubernetes_asyncio.client import models

    if m := re.fullmatch(r"list\[(.+)\]", typ):
        assert isinstance(value, list), (where, value)
        return [check_model(m.group(1), v, f"{where}[{i}]") for i, v in enumerate(value)]
    if m := re.fullmatch(r"dict\(str, (.+)\)", typ):
        assert isinstance(value, dict), (where, value)
        return {k: check_model(m.group(1), v, f"{where}.{k}") for k, v in value.items()}
    if typ in _SCALARS:
        assert isinstance(value, _SCALARS[typ]), (where, typ, value)
        return value
    cls = getattr(models, typ)
    assert isinstance(value, dict), (where, value)
    unknown = set(value) - set(cls.attribute_map.values())
    assert not unknown, f"{where}: unknown fields {sorted(unknown)} for {typ}"
    kwargs = {py: check_model(cls.openapi_types[py], value[js], f"{where}.{js}")
              for py, js in cls.attribute_map.items() if js in value}
    return cls(**kwargs)  # ValueError on a required field left out


def model_name(obj: dict[str, Any]) -> str:
    version = obj["apiVersion"].split("/")[-1]
    return f"{version[0].upper()}{version[1:]}{obj['kind']}"


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
    assert {"server/base", "server/overlays/tls-secret", "server/overlays/ingress", HA,
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
    served = served_kinds(sim.kubeconfig)
    unserved = [o for o in objs if (o["apiVersion"], o["kind"]) not in served]
    for obj in unserved:
        check_model(model_name(obj), obj, f"{rel}: {obj['kind']}/{obj['metadata']['name']}")
    if not unserved:
        out = kubectl(sim.kubeconfig, "apply", "--dry-run=server", "-k", str(DEPLOY / rel))
    else:
        rest = yaml.safe_dump_all([o for o in objs if o not in unserved])
        out = kubectl(sim.kubeconfig, "apply", "--dry-run=server", "-f", "-", input=rest)
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


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_ha_overlay_runs_three_replicas_on_three_etcd_members() -> None:
    objs = render(HA)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    assert "PersistentVolumeClaim" not in by_kind  # the SQLite volume is gone: state is in etcd
    (server,) = by_kind["Deployment"]
    spec, pod = server["spec"], server["spec"]["template"]["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (term,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert all(v.get("persistentVolumeClaim") is None for v in pod["volumes"])
    (c,) = pod["containers"]
    env = _env(c)
    names = [e["name"] for e in c["env"]]
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    # $(VAR) expands only variables defined earlier in the list
    for name in ("RANCHER_REPLICA_NAME", "RANCHER_PEER_ADDRESS", "RANCHER_HOSTNAMES"):
        assert names.index(name) > max(names.index("POD_NAME"), names.index("POD_IP")), name
    assert env["RANCHER_REPLICA_NAME"] == "$(POD_NAME)"
    assert env["RANCHER_PEER_LISTEN"] == f"0.0.0.0:{PEER_PORT}"
    assert env["RANCHER_PEER_ADDRESS"] == f"$(POD_IP):{PEER_PORT}"
    # the peer address must be in the replica's peer certificate, whose SANs are the hostnames
    assert "$(POD_IP)" in env["RANCHER_HOSTNAMES"].split(",")
    # one shared serving certificate: agents pin one CA whichever replica answers
    assert env["RANCHER_TLS_CERT"] and env["RANCHER_TLS_KEY"]
    assert {"name": "peer", "containerPort": PEER_PORT} in c["ports"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]

    (etcd,) = by_kind["StatefulSet"]
    assert etcd["spec"]["replicas"] == 3
    assert etcd["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    args = etcd["spec"]["template"]["spec"]["containers"][0]["command"]
    initial = next(a for a in args if a.startswith("--initial-cluster="))
    members = initial.split("=", 1)[1].split(",")
    assert [m.split("=")[0] for m in members] == [f"rancher-etcd-{i}" for i in range(3)]
    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    assert services[etcd["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    # the replicas list every member (the store fails over between them), by the headless names
    store = env["RANCHER_STORE"].removeprefix("etcd://").split(",")
    assert store == [f"rancher-etcd-{i}.{etcd['spec']['serviceName']}.{NAMESPACE}.svc:2379"
                     for i in range(3)]

    public = services["rancher-server"]["spec"]
    assert [(p["port"], p["targetPort"]) for p in public["ports"]] == [(443, "https")]
    assert all(p["port"] != PEER_PORT and p["targetPort"] not in ("peer", PEER_PORT)
               for s in services.values() if s["spec"].get("selector") == {"app": "rancher-server"}
               for p in s["spec"]["ports"])

    pdbs = {p["spec"]["selector"]["matchLabels"]["app"]: p["spec"] for p in
            by_kind["PodDisruptionBudget"]}
    assert pdbs["rancher-server"]["minAvailable"] == 2 and pdbs["rancher-etcd"]["minAvailable"] == 2
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind["NetworkPolicy"]}
    peer_rule = next(r for r in policies["rancher-server"]["ingress"]
                     if {"port": PEER_PORT, "protocol": "TCP"} in r["ports"])
    assert peer_rule["from"] == [{"podSelector": {"matchLabels": {"app": "rancher-server"}}}]
