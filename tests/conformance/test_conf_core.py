"""Core API behaviour, written once and run against the stand-in or any kube-apiserver."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from .conftest import POLL_S, WAIT_S, Kubectl, get_json, kubectl_argv, namespace_manifest, wait_for

pytestmark = pytest.mark.timeout(90)

WATCH_TIMEOUT_S = 10


def cm(
    name: str, ns: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> str:
    md: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        md["labels"] = labels
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data or {}})


def deployment(name: str, ns: str, replicas: int, image: str = "nginx:1.27") -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "main", "image": image}]},
                },
            },
        }
    )


def test_create_get_delete_configmap(kubectl: Kubectl, namespace: str) -> None:
    out = kubectl("apply", "-f", "-", input=cm("alpha", namespace, {"k": "v"})).stdout
    assert out.strip() == "configmap/alpha created"
    got = get_json(kubectl, "configmap", "alpha", "-n", namespace)
    assert got["data"] == {"k": "v"}
    assert got["metadata"]["uid"] and got["metadata"]["resourceVersion"]
    table = kubectl("get", "configmaps", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "DATA", "AGE"]
    assert any(line.split()[:2] == ["alpha", "1"] for line in table[1:])
    assert kubectl("delete", "configmap", "alpha", "-n", namespace).stdout.strip() == (
        'configmap "alpha" deleted'
    )
    missing = kubectl("get", "configmap", "alpha", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert 'configmaps "alpha" not found' in missing.stderr


def test_create_existing_is_already_exists(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "-f", "-", input=cm("dup", namespace))
    again = kubectl("create", "-f", "-", input=cm("dup", namespace), check=False)
    assert again.returncode == 1
    assert 'configmaps "dup" already exists' in again.stderr


def test_apply_client_side(kubectl: Kubectl, namespace: str) -> None:
    assert kubectl("apply", "-f", "-", input=deployment("web", namespace, 2)).stdout.strip() == (
        "deployment.apps/web created"
    )
    assert kubectl("apply", "-f", "-", input=deployment("web", namespace, 2)).stdout.strip() == (
        "deployment.apps/web unchanged"
    )
    assert kubectl("apply", "-f", "-", input=deployment("web", namespace, 3)).stdout.strip() == (
        "deployment.apps/web configured"
    )
    got = get_json(kubectl, "deployment", "web", "-n", namespace)
    assert got["spec"]["replicas"] == 3
    assert got["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]


def test_apply_server_side_and_conflict(kubectl: Kubectl, namespace: str) -> None:
    out = kubectl("apply", "--server-side", "-f", "-", input=deployment("ssa", namespace, 2))
    assert out.stdout.strip() == "deployment.apps/ssa serverside-applied"
    got = get_json(kubectl, "deployment", "ssa", "-n", namespace, "--show-managed-fields")
    managers = {(m["manager"], m["operation"]) for m in got["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    conflict = kubectl(
        "apply",
        "--server-side",
        "--field-manager=other-manager",
        "-f",
        "-",
        input=deployment("ssa", namespace, 5),
        check=False,
    )
    assert conflict.returncode == 1
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas' in conflict.stderr
    )
    forced = kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=other-manager",
        "-f",
        "-",
        input=deployment("ssa", namespace, 5),
    )
    assert "serverside-applied" in forced.stdout
    assert get_json(kubectl, "deployment", "ssa", "-n", namespace)["spec"]["replicas"] == 5


def test_patch_types(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-f", "-", input=deployment("p", namespace, 1))

    def patch(patch_type: str, body: Any) -> subprocess.CompletedProcess[str]:
        return kubectl(
            "patch",
            "deployment",
            "p",
            "-n",
            namespace,
            f"--type={patch_type}",
            "-p",
            json.dumps(body),
        )

    patch(
        "strategic",
        {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}},
    )
    names = [
        c["name"]
        for c in get_json(kubectl, "deployment", "p", "-n", namespace)["spec"]["template"]["spec"][
            "containers"
        ]
    ]
    assert names == ["side", "main"]  # the patch's items first (test_conf_contract.py)
    patch("merge", {"metadata": {"labels": {"extra": "yes"}}})
    patch("json", [{"op": "replace", "path": "/spec/replicas", "value": 4}])
    got = get_json(kubectl, "deployment", "p", "-n", namespace)
    assert got["metadata"]["labels"] == {"app": "p", "extra": "yes"}
    assert got["spec"]["replicas"] == 4
    noop = patch("merge", {"spec": {"replicas": 4}})
    assert "(no change)" in noop.stdout


def test_label_and_field_selectors(kubectl: Kubectl, namespace: str) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        kubectl("apply", "-f", "-", input=cm(name, namespace, labels={"tier": tier}))
    names = kubectl("get", "cm", "-n", namespace, "-l", "tier=web", "-o", "name").stdout.split()
    assert names == ["configmap/a", "configmap/c"]
    names = kubectl(
        "get", "cm", "-n", namespace, "-l", "tier in (db),tier!=web", "-o", "name"
    ).stdout.split()
    assert names == ["configmap/b"]
    names = kubectl(
        "get", "cm", "-n", namespace, "--field-selector", "metadata.name=b", "-o", "name"
    ).stdout.split()
    assert names == ["configmap/b"]
    names = kubectl(
        "get",
        "cm",
        "-A",
        "--field-selector",
        f"metadata.namespace={namespace},metadata.name!=kube-root-ca.crt",
        "-l",
        "tier",
        "-o",
        "name",
    ).stdout.split()
    assert names == ["configmap/a", "configmap/b", "configmap/c"]
    bad = kubectl("get", "cm", "-n", namespace, "--field-selector", "data.k=v", check=False)
    assert bad.returncode == 1
    assert '"data.k" is not a known field selector: only "metadata.name"' in bad.stderr


async def test_watch_sees_create_update_delete_in_order(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    listed = await core.list_namespaced_config_map(namespace)
    rv = listed.metadata.resource_version
    name = f"w-{uuid.uuid4().hex[:6]}"

    async def mutate() -> None:
        await core.create_namespaced_config_map(
            namespace, {"metadata": {"name": name}, "data": {"k": "1"}}
        )
        await core.patch_namespaced_config_map(name, namespace, {"data": {"k": "2"}})
        await core.delete_namespaced_config_map(name, namespace)

    seen: list[tuple[str, str | None]] = []
    task = asyncio.create_task(mutate())
    try:
        async with watch.Watch() as w, asyncio.timeout(WATCH_TIMEOUT_S):
            async for ev in w.stream(
                core.list_namespaced_config_map,
                namespace,
                resource_version=rv,
                timeout_seconds=WATCH_TIMEOUT_S,
            ):
                obj = ev["object"]
                if obj.metadata.name != name:
                    continue
                seen.append((ev["type"], (obj.data or {}).get("k")))
                if ev["type"] == "DELETED":
                    break
    finally:
        await task
    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]


async def test_update_with_stale_resource_version_is_409(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    created = await core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "cc"}, "data": {"k": "1"}}
    )
    stale = created.metadata.resource_version
    await core.patch_namespaced_config_map("cc", namespace, {"data": {"k": "2"}})
    body = {"metadata": {"name": "cc", "resourceVersion": stale}, "data": {"k": "3"}}
    with pytest.raises(ApiException) as info:
        await core.replace_namespaced_config_map("cc", namespace, body)
    assert info.value.status == 409
    status = json.loads(info.value.body)
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "cc": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


async def test_list_pagination(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    # the root CA ConfigMap comes from a controller, a little after the namespace
    deadline = time.monotonic() + WAIT_S
    while not (await core.list_namespaced_config_map(namespace)).items:
        assert time.monotonic() < deadline, "no kube-root-ca.crt in the new namespace"
        await asyncio.sleep(POLL_S)
    for i in range(5):
        await core.create_namespaced_config_map(namespace, {"metadata": {"name": f"page-{i}"}})
    names: list[str] = []
    page = await core.list_namespaced_config_map(namespace, limit=2)
    assert page.metadata.remaining_item_count == 4  # 6 items incl. kube-root-ca.crt
    names += [i.metadata.name for i in page.items]
    while page.metadata._continue:
        page = await core.list_namespaced_config_map(
            namespace, limit=2, _continue=page.metadata._continue
        )
        names += [i.metadata.name for i in page.items]
    assert names == sorted(names)
    assert [n for n in names if n.startswith("page-")] == [f"page-{i}" for i in range(5)]


def _crd(group: str, scope: str) -> str:
    plural = "widgets" if scope == "Namespaced" else "gadgets"
    kind = "Widget" if scope == "Namespaced" else "Gadget"
    return json.dumps(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {
                "group": group,
                "scope": scope,
                "names": {
                    "plural": plural,
                    "singular": kind.lower(),
                    "kind": kind,
                    "shortNames": [kind.lower()[:3] + "x"],
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": {
                                            "size": {"type": "integer"},
                                            "color": {"type": "string"},
                                        },
                                    }
                                },
                            }
                        },
                        "additionalPrinterColumns": [
                            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}
                        ],
                    }
                ],
            },
        }
    )


@pytest.mark.parametrize("scope", ["Namespaced", "Cluster"])
def test_crd_round_trip(kubectl: Kubectl, namespace: str, scope: str) -> None:
    group = f"g{uuid.uuid4().hex[:6]}.example.com"
    plural = "widgets" if scope == "Namespaced" else "gadgets"
    kind = "Widget" if scope == "Namespaced" else "Gadget"
    kubectl("apply", "-f", "-", input=_crd(group, scope))
    try:
        kubectl("wait", "--for=condition=Established", f"crd/{plural}.{group}", "--timeout=20s")
        wait_for(
            lambda: plural in kubectl("api-resources", f"--api-group={group}").stdout,
            "the CRD in discovery",
        )
        # the OpenAPI document serves a new CRD's schema some 0.4-0.7 s after discovery does
        # (a real kube-apiserver): explain, like any client, retries until it is there
        explained = wait_for(
            lambda: kubectl("explain", f"{plural}.{group}.spec", check=False).stdout,
            "the CRD's schema in the OpenAPI document",
        )
        assert f"KIND:       {kind}" in explained and "size\t<integer>" in explained
        md: dict[str, Any] = {"name": "one"}
        ns_args: list[str] = []
        if scope == "Namespaced":
            md["namespace"] = namespace
            ns_args = ["-n", namespace]
        obj = {
            "apiVersion": f"{group}/v1",
            "kind": kind,
            "metadata": md,
            "spec": {"size": 3, "color": "blue"},
        }
        assert kubectl("apply", "-f", "-", input=json.dumps(obj)).stdout.strip() == (
            f"{kind.lower()}.{group}/one created"
        )
        got = get_json(kubectl, f"{plural}.{group}", "one", *ns_args)
        assert got["spec"] == {"size": 3, "color": "blue"}
        assert got["metadata"]["generation"] == 1
        table = kubectl("get", f"{plural}.{group}", *ns_args).stdout.splitlines()
        assert table[0].split()[:2] == ["NAME", "SIZE"]
        assert table[1].split()[:2] == ["one", "3"]
        kubectl(
            "patch",
            f"{plural}.{group}",
            "one",
            *ns_args,
            "--type=merge",
            "-p",
            '{"spec":{"size":4}}',
        )
        got = get_json(kubectl, f"{plural}.{group}", "one", *ns_args)
        assert got["spec"]["size"] == 4 and got["metadata"]["generation"] == 2
        bad = dict(obj, spec={"size": 3, "bogus": True})
        rejected = kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
        assert rejected.returncode == 1
        assert 'unknown field "spec.bogus"' in rejected.stderr
        mistyped = dict(obj, spec={"size": "three"})
        rejected = kubectl("apply", "-f", "-", input=json.dumps(mistyped), check=False)
        assert rejected.returncode == 1
        assert 'spec.size in body must be of type integer: "string"' in rejected.stderr
        kubectl("delete", f"{plural}.{group}", "one", *ns_args)
    finally:
        kubectl("delete", "crd", f"{plural}.{group}", "--ignore-not-found")
    wait_for(
        lambda: plural not in kubectl("api-resources", f"--api-group={group}", check=False).stdout,
        "the CRD to leave discovery",
    )


def test_namespace_deletion_cascades(kubectl: Kubectl) -> None:
    ns = f"doomed-{uuid.uuid4().hex[:6]}"
    kubectl("apply", "-f", "-", input=namespace_manifest(ns))
    kubectl("apply", "-f", "-", input=cm("held", ns))
    kubectl("apply", "-f", "-", input=deployment("d", ns, 0))
    out = kubectl("delete", "namespace", ns, "--timeout=60s")
    assert out.stdout.strip() == f'namespace "{ns}" deleted'
    gone = kubectl("get", "namespace", ns, check=False)
    assert gone.returncode == 1 and f'namespaces "{ns}" not found' in gone.stderr
    left = kubectl("get", "configmaps,deployments", "-n", ns, "-o", "name").stdout.split()
    assert left == []


def test_finalizer_holds_deletion(kubectl: Kubectl, namespace: str) -> None:
    obj = json.loads(cm("held", namespace))
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    kubectl("apply", "-f", "-", input=json.dumps(obj))
    kubectl("delete", "cm", "held", "-n", namespace, "--wait=false")
    got = get_json(kubectl, "cm", "held", "-n", namespace)
    assert got["metadata"]["deletionTimestamp"]
    kubectl(
        "patch",
        "cm",
        "held",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    wait_for(
        lambda: kubectl("get", "cm", "held", "-n", namespace, check=False).returncode == 1,
        "the configmap to go",
    )


def test_explain(kubectl: Kubectl) -> None:
    out = kubectl("explain", "deployment.spec.replicas").stdout
    assert "KIND:       Deployment" in out
    assert "FIELD: replicas <integer>" in out
    out = kubectl("explain", "configmaps").stdout
    assert "VERSION:    v1" in out and "data\t<map[string]string>" in out


def test_api_resources(kubectl: Kubectl) -> None:
    out = kubectl("api-resources").stdout.splitlines()
    assert out[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows = {tuple(line.split()) for line in out[1:]}
    for row in (
        ("configmaps", "cm", "v1", "true", "ConfigMap"),
        ("namespaces", "ns", "v1", "false", "Namespace"),
        ("deployments", "deploy", "apps/v1", "true", "Deployment"),
        ("clusterroles", "rbac.authorization.k8s.io/v1", "false", "ClusterRole"),
        ("leases", "coordination.k8s.io/v1", "true", "Lease"),
        (
            "customresourcedefinitions",
            "crd,crds",
            "apiextensions.k8s.io/v1",
            "false",
            "CustomResourceDefinition",
        ),
        ("selfsubjectreviews", "authentication.k8s.io/v1", "false", "SelfSubjectReview"),
    ):
        assert row in rows, row


def test_get_watch_with_request_timeout(
    kubectl: Kubectl, kubeconfig: str, kubectl_cache_dir: str, namespace: str
) -> None:
    proc = subprocess.Popen(
        kubectl_argv(
            kubeconfig,
            kubectl_cache_dir,
            "get",
            "cm",
            "-n",
            namespace,
            "-w",
            "--request-timeout=4s",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        kubectl("apply", "-f", "-", input=cm("during-watch", namespace, {"k": "v"}))
        out, _err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE"]
    assert any(line.split()[:2] == ["kube-root-ca.crt", "1"] for line in lines)
    assert any(line.split()[:2] == ["during-watch", "1"] for line in lines)


def test_dry_run_create_stores_nothing(kubectl: Kubectl, namespace: str) -> None:
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=cm("dry", namespace))
    assert "(server dry run)" in out.stdout
    assert kubectl("get", "cm", "dry", "-n", namespace, check=False).returncode == 1


def test_strict_field_validation(kubectl: Kubectl, namespace: str) -> None:
    obj = json.loads(cm("strict", namespace))
    obj["bogus"] = 1
    res = kubectl("apply", "-f", "-", input=json.dumps(obj), check=False)
    assert res.returncode == 1
    assert 'unknown field "bogus"' in res.stderr


def test_server_side_apply_rejects_undeclared_fields(kubectl: Kubectl, namespace: str) -> None:
    obj = json.loads(cm("ssa-strict", namespace))
    obj["bogus"] = 1
    res = kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj), check=False)
    assert res.returncode == 1
    assert ".bogus: field not declared in schema" in res.stderr


def test_apply_a_list(kubectl: Kubectl, namespace: str) -> None:
    items = [json.loads(cm(f"l{i}", namespace, {"k": str(i)})) for i in range(3)]
    doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    out = kubectl("apply", "-f", "-", input=doc).stdout.split("\n")
    assert [line for line in out if line] == [f"configmap/l{i} created" for i in range(3)]
    names = kubectl("get", "cm", "-n", namespace, "-o", "name").stdout.split()
    assert [n for n in names if n.startswith("configmap/l")] == [
        f"configmap/l{i}" for i in range(3)
    ]


def test_delete_cascades_to_owned_objects(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-f", "-", input=deployment("casc", namespace, 1))
    wait_for(
        lambda: kubectl("get", "rs", "-n", namespace, "-l", "app=casc", "-o", "name").stdout,
        "the deployment's ReplicaSet",
    )
    out = kubectl("delete", "deployment", "casc", "-n", namespace, "--cascade=foreground")
    assert out.stdout.strip() == 'deployment.apps "casc" deleted'
    wait_for(
        lambda: not kubectl("get", "rs", "-n", namespace, "-l", "app=casc", "-o", "name").stdout,
        "the ReplicaSet to be garbage collected",
    )
