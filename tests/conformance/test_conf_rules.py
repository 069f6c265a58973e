"""API server rules answered with a Status (422 Invalid, 403 Forbidden), each compared whole with
what a real kube-apiserver 1.32 answers (k8s-reference/rules/ and status/)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from .conftest import WAIT_S

pytestmark = pytest.mark.timeout(90)

RBAC = "rbac.authorization.k8s.io"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
POLL_S = 0.2
IMMUTABLE_MSG = "Forbidden: field is immutable when `immutable` is set"
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
READ_VERBS = "get list watch"
EDIT_VERBS = "create delete deletecollection patch update get list watch"
READ_EDIT_VERBS = "get list watch create delete deletecollection patch update"
ROLLBACK_VERBS = "create delete deletecollection patch update"
RBAC_REST_VERBS = "delete deletecollection list patch update watch"
# What alice (create/get on roles and rolebindings only) lacks of ClusterRole admin, in the
# order kube-apiserver 1.32 lists it (rules/escalation-bind-clusterrole-admin-403.json).
ADMIN_RULES_ALICE_LACKS = (
    ("", "bindings", READ_VERBS),
    ("", "configmaps", EDIT_VERBS),
    ("", "endpoints", EDIT_VERBS),
    ("", "events", EDIT_VERBS),
    ("", "limitranges", READ_VERBS),
    ("", "namespaces", READ_VERBS),
    ("", "namespaces/status", READ_VERBS),
    ("", "persistentvolumeclaims", EDIT_VERBS),
    ("", "persistentvolumeclaims/status", READ_VERBS),
    ("", "pods", EDIT_VERBS),
    ("", "pods/attach", READ_EDIT_VERBS),
    ("", "pods/eviction", "create"),
    ("", "pods/exec", READ_EDIT_VERBS),
    ("", "pods/log", READ_VERBS),
    ("", "pods/portforward", READ_EDIT_VERBS),
    ("", "pods/proxy", READ_EDIT_VERBS),
    ("", "pods/status", READ_VERBS),
    ("", "replicationcontrollers", EDIT_VERBS),
    ("", "replicationcontrollers/scale", EDIT_VERBS),
    ("", "replicationcontrollers/status", READ_VERBS),
    ("", "resourcequotas", READ_VERBS),
    ("", "resourcequotas/status", READ_VERBS),
    ("", "secrets", READ_EDIT_VERBS),
    ("", "serviceaccounts", "impersonate " + EDIT_VERBS),
    ("", "serviceaccounts/token", "create"),
    ("", "services", EDIT_VERBS),
    ("", "services/proxy", READ_EDIT_VERBS),
    ("", "services/status", READ_VERBS),
    ("apps", "controllerrevisions", READ_VERBS),
    ("apps", "daemonsets", EDIT_VERBS),
    ("apps", "daemonsets/status", READ_VERBS),
    ("apps", "deployments", EDIT_VERBS),
    ("apps", "deployments/rollback", ROLLBACK_VERBS),
    ("apps", "deployments/scale", EDIT_VERBS),
    ("apps", "deployments/status", READ_VERBS),
    ("apps", "replicasets", EDIT_VERBS),
    ("apps", "replicasets/scale", EDIT_VERBS),
    ("apps", "replicasets/status", READ_VERBS),
    ("apps", "statefulsets", EDIT_VERBS),
    ("apps", "statefulsets/scale", EDIT_VERBS),
    ("apps", "statefulsets/status", READ_VERBS),
    ("authorization.k8s.io", "localsubjectaccessreviews", "create"),
    ("autoscaling", "horizontalpodautoscalers", EDIT_VERBS),
    ("autoscaling", "horizontalpodautoscalers/status", READ_VERBS),
    ("batch", "cronjobs", EDIT_VERBS),
    ("batch", "cronjobs/status", READ_VERBS),
    ("batch", "jobs", EDIT_VERBS),
    ("batch", "jobs/status", READ_VERBS),
    ("coordination.k8s.io", "leases", "create delete deletecollection get list patch update watch"),
    ("discovery.k8s.io", "endpointslices", READ_VERBS),
    ("extensions", "daemonsets", EDIT_VERBS),
    ("extensions", "daemonsets/status", READ_VERBS),
    ("extensions", "deployments", EDIT_VERBS),
    ("extensions", "deployments/rollback", ROLLBACK_VERBS),
    ("extensions", "deployments/scale", EDIT_VERBS),
    ("extensions", "deployments/status", READ_VERBS),
    ("extensions", "ingresses", EDIT_VERBS),
    ("extensions", "ingresses/status", READ_VERBS),
    ("extensions", "networkpolicies", EDIT_VERBS),
    ("extensions", "replicasets", EDIT_VERBS),
    ("extensions", "replicasets/scale", EDIT_VERBS),
    ("extensions", "replicasets/status", READ_VERBS),
    ("extensions", "replicationcontrollers/scale", EDIT_VERBS),
    ("networking.k8s.io", "ingresses", EDIT_VERBS),
    ("networking.k8s.io", "ingresses/status", READ_VERBS),
    ("networking.k8s.io", "networkpolicies", EDIT_VERBS),
    ("policy", "poddisruptionbudgets", EDIT_VERBS),
    ("policy", "poddisruptionbudgets/status", READ_VERBS),
    (RBAC, "rolebindings", RBAC_REST_VERBS),
    (RBAC, "roles", RBAC_REST_VERBS),
)


def _compact_rule(group: str, resource: str, verbs: str) -> str:
    """rbacv1helpers.CompactString of one missing rule."""
    quoted = " ".join(f'"{v}"' for v in verbs.split())
    return f'{{APIGroups:["{group}"], Resources:["{resource}"], Verbs:[{quoted}]}}'


def _status(code: int, reason: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }


def _invalid(
    kind: str, group: str, name: str, causes: list[tuple[str, str, str]]
) -> dict[str, Any]:
    """A 422 Invalid Status; ``causes`` are (reason, field, message)."""
    parts = list(dict.fromkeys(f"{field}: {msg}" for _, field, msg in causes))
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": r, "message": m, "field": f} for r, f, m in causes]
    return _status(422, "Invalid", f'{qualified} "{name}" is invalid: {joined}', details)


async def _refused(call: Awaitable[Any]) -> tuple[int, Any]:
    """The HTTP status and the Status body of a call that must fail."""
    with pytest.raises(ApiException) as info:
        await call
    return info.value.status, json.loads(info.value.body)


async def _eventually(
    attempt: Callable[[], Awaitable[Any]], what: str, timeout_s: float = WAIT_S
) -> Any:
    """Retry ``attempt`` until it returns without an ApiException (a write is not visible to
    every reader at once: RBAC and admission read informer caches)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await attempt()
        except ApiException:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}") from None
            await asyncio.sleep(POLL_S)


@asynccontextmanager
async def _client_as(kubeconfig: str, user: str) -> AsyncIterator[client.ApiClient]:
    """An API client that impersonates ``user`` (no groups: the server adds
    system:authenticated)."""
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    async with client.ApiClient(cfg) as api:
        api.set_default_header("Impersonate-User", user)
        yield api


def _role_ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": kind, "name": name}


def _user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": RBAC, "name": name}


def _go_role_ref(kind: str, name: str) -> str:
    return f'rbac.RoleRef{{APIGroup:"{RBAC}", Kind:"{kind}", Name:"{name}"}}'


def _cannot_change(kind: str, name: str) -> tuple[str, str, str]:
    return (
        "FieldValueInvalid",
        "roleRef",
        f"Invalid value: {_go_role_ref(kind, name)}: cannot change roleRef",
    )


# ---------------------------------------------------------------- 1. roleRef is immutable
async def test_cluster_role_binding_role_ref_is_immutable(api_client: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    name = f"conf-rules-{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "subjects": [_user("rules-user")],
        "roleRef": _role_ref("ClusterRole", "view"),
    }
    await rbac.create_cluster_role_binding(body)
    try:
        changed = {**body, "roleRef": _role_ref("ClusterRole", "edit")}
        want = _invalid("ClusterRoleBinding", RBAC, name, [_cannot_change("ClusterRole", "edit")])
        assert await _refused(rbac.replace_cluster_role_binding(name, changed)) == (422, want)
        patch = rbac.patch_cluster_role_binding(
            name, {"roleRef": {"name": "edit"}}, _content_type=MERGE_PATCH
        )
        assert await _refused(patch) == (422, want)
        to_role = rbac.patch_cluster_role_binding(
            name,
            [{"op": "replace", "path": "/roleRef/kind", "value": "Role"}],
            _content_type=JSON_PATCH,
        )
        unsupported = (
            "FieldValueNotSupported",
            "roleRef.kind",
            'Unsupported value: "Role": supported values: "ClusterRole"',
        )
        assert await _refused(to_role) == (
            422,
            _invalid(
                "ClusterRoleBinding",
                RBAC,
                name,
                [unsupported, unsupported, _cannot_change("Role", "view")],
            ),
        )
        more = {
            **body,
            "subjects": [_user("rules-user"), {**_user("rules-group"), "kind": "Group"}],
        }
        updated = await rbac.replace_cluster_role_binding(name, more)
        assert [s.name for s in updated.subjects] == ["rules-user", "rules-group"]
        assert updated.role_ref.name == "view"
    finally:
        await rbac.delete_cluster_role_binding(name)


async def test_role_binding_role_ref_is_immutable(
    api_client: client.ApiClient, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    body: dict[str, Any] = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "rules-rb", "namespace": namespace},
        "subjects": [_user("rules-user")],
        "roleRef": _role_ref("ClusterRole", "view"),
    }
    await rbac.create_namespaced_role_binding(namespace, body)
    changed = {**body, "roleRef": _role_ref("ClusterRole", "edit")}
    want = _invalid("RoleBinding", RBAC, "rules-rb", [_cannot_change("ClusterRole", "edit")])
    put = rbac.replace_namespaced_role_binding("rules-rb", namespace, changed)
    assert await _refused(put) == (422, want)
    patch = rbac.patch_namespaced_role_binding(
        "rules-rb", namespace, {"roleRef": {"name": "edit"}}, _content_type=MERGE_PATCH
    )
    assert await _refused(patch) == (422, want)
    to_role = rbac.patch_namespaced_role_binding(
        "rules-rb",
        namespace,
        {"roleRef": {"kind": "Role", "name": "some-role"}},
        _content_type=MERGE_PATCH,
    )
    assert await _refused(to_role) == (
        422,
        _invalid("RoleBinding", RBAC, "rules-rb", [_cannot_change("Role", "some-role")]),
    )


# ---------------------------------------------------------------- 2. immutable ConfigMap, Secret
async def test_immutable_config_map(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "imm", "namespace": namespace},
        "immutable": True,
        "data": {"k": "v1"},
    }
    await core.create_namespaced_config_map(namespace, body)
    data_refused = _invalid(
        "ConfigMap", "", "imm", [("FieldValueForbidden", "data", IMMUTABLE_MSG)]
    )
    put = core.replace_namespaced_config_map("imm", namespace, {**body, "data": {"k": "v2"}})
    assert await _refused(put) == (422, data_refused)
    patch = core.patch_namespaced_config_map(
        "imm", namespace, {"data": {"k": "v2"}}, _content_type=MERGE_PATCH
    )
    assert await _refused(patch) == (422, data_refused)
    unset = core.patch_namespaced_config_map(
        "imm", namespace, {"immutable": False}, _content_type=MERGE_PATCH
    )
    assert await _refused(unset) == (
        422,
        _invalid("ConfigMap", "", "imm", [("FieldValueForbidden", "immutable", IMMUTABLE_MSG)]),
    )
    labelled = await core.patch_namespaced_config_map(
        "imm", namespace, {"metadata": {"labels": {"x": "y"}}}, _content_type=MERGE_PATCH
    )
    assert labelled.metadata.labels == {"x": "y"}
    assert (labelled.immutable, labelled.data) == (True, {"k": "v1"})


async def test_immutable_secret(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "imm", "namespace": namespace},
        "immutable": True,
        "data": {"k": base64.b64encode(b"v1").decode()},
        "type": "Opaque",
    }
    await core.create_namespaced_secret(namespace, body)
    refused = _invalid("Secret", "", "imm", [("FieldValueForbidden", "data", IMMUTABLE_MSG)])
    changed = {**body, "data": {"k": base64.b64encode(b"v2").decode()}}
    assert await _refused(core.replace_namespaced_secret("imm", namespace, changed)) == (
        422,
        refused,
    )
    patch = core.patch_namespaced_secret(
        "imm", namespace, {"stringData": {"k": "v3"}}, _content_type=MERGE_PATCH
    )
    assert await _refused(patch) == (422, refused)
    labelled = await core.patch_namespaced_secret(
        "imm", namespace, {"metadata": {"labels": {"x": "y"}}}, _content_type=MERGE_PATCH
    )
    assert labelled.metadata.labels == {"x": "y"}
    assert labelled.data == body["data"]


# ---------------------------------------------------------------- 3. apps/v1 selectors
def _workload(kind: str, name: str, namespace: str, app: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": app}},
        "template": {
            "metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
        },
    }
    if kind != "DaemonSet":
        spec["replicas"] = 0
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


SELECTOR_SEL2 = (
    'v1.LabelSelector{MatchLabels:map[string]string{"app":"sel2"}, '
    "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
)


@pytest.mark.parametrize("kind", ["Deployment", "DaemonSet", "ReplicaSet"])
async def test_workload_selector_is_immutable(
    api_client: client.ApiClient, namespace: str, kind: str
) -> None:
    apps = client.AppsV1Api(api_client)
    plural = {"Deployment": "deployment", "DaemonSet": "daemon_set", "ReplicaSet": "replica_set"}
    create = getattr(apps, f"create_namespaced_{plural[kind]}")
    replace = getattr(apps, f"replace_namespaced_{plural[kind]}")
    patch = getattr(apps, f"patch_namespaced_{plural[kind]}")
    await create(namespace, _workload(kind, "sel", namespace, "sel"))
    want = _invalid(
        kind,
        "apps",
        "sel",
        [
            (
                "FieldValueInvalid",
                "spec.selector",
                f"Invalid value: {SELECTOR_SEL2}: field is immutable",
            )
        ],
    )
    # no resourceVersion: apps/v1 allows unconditional updates, and a controller may write
    # the object's status meanwhile
    put = replace("sel", namespace, _workload(kind, "sel", namespace, "sel2"))
    assert await _refused(put) == (422, want)
    smp = {
        "spec": {
            "selector": {"matchLabels": {"app": "sel2"}},
            "template": {"metadata": {"labels": {"app": "sel2"}}},
        }
    }
    assert await _refused(patch("sel", namespace, smp, _content_type=STRATEGIC_PATCH)) == (
        422,
        want,
    )


# ---------------------------------------------------------------- 4. Service cluster IP
def _other_ip(ip: str) -> str:
    head, last = ip.rsplit(".", 1)
    return f"{head}.{int(last) % 200 + 20}"


async def test_service_cluster_ip_cannot_change(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    spec: dict[str, Any] = {
        "ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080}],
        "selector": {"app": "x"},
        "type": "ClusterIP",
    }
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": namespace},
        "spec": spec,
    }
    created = await core.create_namespaced_service(namespace, body)
    allocated = created.spec.cluster_ip
    assert created.spec.cluster_ips == [allocated]
    other = _other_ip(allocated)
    want = _invalid(
        "Service",
        "",
        "svc",
        [
            (
                "FieldValueInvalid",
                "spec.clusterIPs[0]",
                f'Invalid value: []string{{"{other}"}}: may not change once set',
            )
        ],
    )
    moved = {**body, "spec": {**spec, "clusterIP": other, "clusterIPs": [other]}}
    assert await _refused(core.replace_namespaced_service("svc", namespace, moved)) == (422, want)
    patch = core.patch_namespaced_service(
        "svc", namespace, {"spec": {"clusterIP": other}}, _content_type=MERGE_PATCH
    )
    assert await _refused(patch) == (422, want)
    kept = await core.replace_namespaced_service("svc", namespace, body)
    assert (kept.spec.cluster_ip, kept.spec.cluster_ips) == (allocated, [allocated])


# ---------------------------------------------------------------- 5. names per kind
def _name_invalid(kind: str, group: str, name: str, problem: str) -> dict[str, Any]:
    return _invalid(
        kind,
        group,
        name,
        [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {problem}')],
    )


async def test_namespace_names_are_dns_labels(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    for name, problem in (("bad.name", "must not contain dots"), ("Bad_Name", LABEL_MSG)):
        create = core.create_namespace({"metadata": {"name": name}})
        assert await _refused(create) == (422, _name_invalid("Namespace", "", name, problem))


async def test_config_map_names_are_dns_subdomains(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    created = await core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "dotted.name"}}
    )
    assert created.metadata.name == "dotted.name"
    bad = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "Bad_Name.x"}, "data": {"k": "v"}}
    )
    assert await _refused(bad) == (
        422,
        _name_invalid("ConfigMap", "", "Bad_Name.x", SUBDOMAIN_MSG),
    )


async def test_service_names_are_dns1035_labels(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    for name in ("dotted.name", "1abc"):
        create = core.create_namespaced_service(
            namespace, {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}
        )
        assert await _refused(create) == (422, _name_invalid("Service", "", name, DNS1035_MSG))


async def test_rbac_names_are_path_segments(api_client: client.ApiClient, namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    cluster_role = f"system:conf-rules-{uuid.uuid4().hex[:8]}"
    created = await rbac.create_cluster_role({"metadata": {"name": cluster_role}, "rules": []})
    try:
        assert created.metadata.name == cluster_role
        role = await rbac.create_namespaced_role(
            namespace, {"metadata": {"name": "Team:Readers_1"}, "rules": []}
        )
        assert role.metadata.name == "Team:Readers_1"
        slash = rbac.create_namespaced_role(namespace, {"metadata": {"name": "a/b"}, "rules": []})
        assert await _refused(slash) == (
            422,
            _name_invalid("Role", RBAC, "a/b", "may not contain '/'"),
        )
    finally:
        await rbac.delete_cluster_role(cluster_role)


# ---------------------------------------------------------------- 6. terminating namespace
async def test_terminating_namespace_refuses_new_content(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    ns = f"conf-doomed-{uuid.uuid4().hex[:8]}"
    await core.create_namespace({"metadata": {"name": ns}})
    # content with a finalizer keeps the namespace Terminating until the test releases it
    holder = {"metadata": {"name": "holder", "finalizers": ["conformance.example.com/hold"]}}
    await _eventually(lambda: core.create_namespaced_config_map(ns, holder), "namespace ready")
    try:
        await core.delete_namespace(ns)
        late = {"metadata": {"name": "late"}}

        async def refused_late() -> tuple[int, Any]:
            return await _refused(core.create_namespaced_config_map(ns, late))

        # admission reads namespaces from a cache: wait until it sees the deletion
        status = await _eventually(refused_late, "the namespace to be seen Terminating")
        cause = {
            "reason": "NamespaceTerminating",
            "message": f"namespace {ns} is being terminated",
            "field": "metadata.namespace",
        }
        assert status == (
            403,
            _status(
                403,
                "Forbidden",
                f'configmaps "late" is forbidden: unable to create new content in namespace '
                f"{ns} because it is being terminated",
                {"name": "late", "kind": "configmaps", "causes": [cause]},
            ),
        )
        role = rbac.create_namespaced_role(ns, {"metadata": {"name": "late"}, "rules": []})
        assert await _refused(role) == (
            403,
            _status(
                403,
                "Forbidden",
                f'roles.{RBAC} "late" is forbidden: unable to create new content in namespace '
                f"{ns} because it is being terminated",
                {"name": "late", "group": RBAC, "kind": "roles", "causes": [cause]},
            ),
        )
    finally:
        await core.patch_namespaced_config_map(
            "holder", ns, {"metadata": {"finalizers": None}}, _content_type=MERGE_PATCH
        )


# ---------------------------------------------------------------- 7. RBAC escalation prevention
def _role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules}


def _binding(name: str, role_kind: str, role: str, user: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": _role_ref(role_kind, role),
        "subjects": [_user(user)],
    }


def _not_held(resource: str, name: str, missing: str) -> dict[str, Any]:
    return _status(
        403,
        "Forbidden",
        f'{resource}.{RBAC} "{name}" is forbidden: user "alice" (groups=["system:authenticated"]) '
        f"is attempting to grant RBAC permissions not currently held:\n{missing}",
        {"name": name, "group": RBAC, "kind": resource},
    )


async def test_rbac_escalation_prevention(
    api_client: client.ApiClient, kubeconfig: str, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    writer = [
        {"apiGroups": [RBAC], "resources": ["roles", "rolebindings"], "verbs": ["create", "get"]}
    ]
    await rbac.create_namespaced_role(namespace, _role("rbac-writer", writer))
    await rbac.create_namespaced_role_binding(
        namespace, _binding("alice-rbac-writer", "Role", "rbac-writer", "alice")
    )
    cm_reader = _role(
        "cm-reader", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
    )
    admin_binding = _binding("alice-admin", "ClusterRole", "admin", "alice")
    async with _client_as(kubeconfig, "alice") as alice_api:
        alice = client.RbacAuthorizationV1Api(alice_api)
        subset = _role("subset", [{"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["get"]}])
        await _eventually(
            lambda: alice.create_namespaced_role(namespace, subset), "alice's RBAC grant"
        )
        assert await _refused(alice.create_namespaced_role(namespace, cm_reader)) == (
            403,
            _not_held(
                "roles",
                "cm-reader",
                _compact_rule("", "configmaps", "get list"),
            ),
        )
        code, status = await _refused(
            alice.create_namespaced_role_binding(namespace, admin_binding)
        )
        assert (code, status["reason"], status["details"]) == (
            403,
            "Forbidden",
            {"name": "alice-admin", "group": RBAC, "kind": "rolebindings"},
        )
        assert (
            status["message"]
            == _not_held(
                "rolebindings",
                "alice-admin",
                "\n".join(_compact_rule(*rule) for rule in ADMIN_RULES_ALICE_LACKS),
            )["message"]
        )
        escalator = [
            {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["escalate"]},
            {
                "apiGroups": [RBAC],
                "resources": ["clusterroles"],
                "verbs": ["bind"],
                "resourceNames": ["admin"],
            },
        ]
        await rbac.create_namespaced_role(namespace, _role("rbac-escalator", escalator))
        await rbac.create_namespaced_role_binding(
            namespace, _binding("alice-rbac-escalator", "Role", "rbac-escalator", "alice")
        )
        made = await _eventually(
            lambda: alice.create_namespaced_role(namespace, cm_reader), "alice's escalate grant"
        )
        assert made.metadata.name == "cm-reader"
        bound = await _eventually(
            lambda: alice.create_namespaced_role_binding(namespace, admin_binding),
            "alice's bind grant",
        )
        assert bound.role_ref.name == "admin"
