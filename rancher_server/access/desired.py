"""Everything the server keeps in one downstream cluster, computed from the store: a pure function
of a snapshot (:class:`Inputs`), so the reconciler's only job is to make the cluster equal it.

- one ClusterRole ``cattle-rt-<template>`` per bound template with downstream rules;
- per cluster binding, one ClusterRoleBinding per downstream ClusterRole of its template
  (``cattle-<binding id>-<role>``); per project binding, one RoleBinding of the same name in
  each namespace of the project; a global admin binding gives ``cluster-admin``;
- per user who may use the cluster, the impersonation ServiceAccount, ClusterRole and
  ClusterRoleBinding the proxy authenticates with (``cattle-impersonation-<user>``);
- with the authorized endpoint on: the CRDs, per member a ClusterUserAttribute, per API token a
  Secret holding its salted hash and a ClusterAuthToken (the plain secret never leaves us).

A binding's name carries the ClusterRole it binds, so ``roleRef`` never changes under one name.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kube_api_auth.crds import manifests as crd_manifests
from rancher_server.access.endpoint_config import AceConfig
from rancher_server.access.templates import ADMIN, Catalog, cluster_role_name, downstream_rules
from rancher_server.auth.impersonation import impersonation_groups, principal_extras
from rancher_server.auth.principal import Principal
from rancher_server.store import ApiToken, Binding, GlobalBinding, Project, User

MANAGED_LABEL = "cattle.io/managed-by"
MANAGED_VALUE = "rancher-py"
SELECTOR = f"{MANAGED_LABEL}={MANAGED_VALUE}"
PROJECT_ANNOTATION = "field.cattle.io/projectId"
IMPERSONATION_NAMESPACE = "cattle-impersonation-system"
ACE_NAMESPACE = "cattle-system"
ACE_GROUP = "cluster.cattle.io/v3"
RBAC = "rbac.authorization.k8s.io"
RBAC_V1 = f"{RBAC}/v1"
HASH_PREFIX = "$3:"
DEFAULT_PROJECT = "Default"
SYSTEM_PROJECT = "System"
# Namespaces without the annotation belong here (Rancher annotates them at import).
SYSTEM_NAMESPACES = frozenset({
    "kube-system", "kube-public", "kube-node-lease", ACE_NAMESPACE, IMPERSONATION_NAMESPACE,
})
DEFAULT_NAMESPACES = frozenset({"default"})


@dataclass(frozen=True)
class Kind:
    name: str
    list_path: str  # every object of the kind (all namespaces)
    namespaced: bool
    group_version: str

    def collection(self, namespace: str) -> str:
        if not self.namespaced:
            return self.list_path
        prefix = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        return f"{prefix}/namespaces/{namespace}/{self.list_path.rsplit('/', 1)[1]}"

    def item(self, namespace: str, name: str) -> str:
        return f"{self.collection(namespace)}/{name}"


NAMESPACES = Kind("Namespace", "/api/v1/namespaces", False, "v1")
CRDS = Kind("CustomResourceDefinition",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", False,
            "apiextensions.k8s.io/v1")
CLUSTER_ROLES = Kind("ClusterRole", f"/apis/{RBAC_V1}/clusterroles", False, RBAC_V1)
SERVICE_ACCOUNTS = Kind("ServiceAccount", "/api/v1/serviceaccounts", True, "v1")
SECRETS = Kind("Secret", "/api/v1/secrets", True, "v1")
CLUSTER_ROLE_BINDINGS = Kind("ClusterRoleBinding", f"/apis/{RBAC_V1}/clusterrolebindings", False,
                             RBAC_V1)
ROLE_BINDINGS = Kind("RoleBinding", f"/apis/{RBAC_V1}/rolebindings", True, RBAC_V1)
USER_ATTRIBUTES = Kind("ClusterUserAttribute", f"/apis/{ACE_GROUP}/clusteruserattributes", True,
                       ACE_GROUP)
AUTH_TOKENS = Kind("ClusterAuthToken", f"/apis/{ACE_GROUP}/clusterauthtokens", True, ACE_GROUP)

# Watched, labelled kinds in creation order (what is referenced comes first); deletion runs in
# reverse. Namespaces and CRDs are created when missing and never deleted or changed.
MANAGED_KINDS = (CLUSTER_ROLES, SERVICE_ACCOUNTS, SECRETS, CLUSTER_ROLE_BINDINGS, ROLE_BINDINGS,
                 USER_ATTRIBUTES, AUTH_TOKENS)
ACE_KINDS = (USER_ATTRIBUTES, AUTH_TOKENS)
ENSURED_KINDS = (NAMESPACES, CRDS)

DKey = tuple[str, str, str]  # (kind name, namespace, name)


@dataclass(frozen=True)
class Inputs:
    """One consistent look at what decides a cluster's objects."""

    cluster_id: str
    catalog: Catalog
    users: list[User]
    bindings: list[Binding]  # this cluster's, cluster and project bindings
    global_bindings: list[GlobalBinding]
    projects: list[Project]
    namespaces: dict[str, dict[str, Any]]  # name -> slim namespace (annotations, deletion)
    ace: AceConfig
    tokens: list[ApiToken] = field(default_factory=list)
    now: float = 0.0


def _labels() -> dict[str, str]:
    return {MANAGED_LABEL: MANAGED_VALUE}


def _meta(name: str, namespace: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": _labels()}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _subject(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "User" if kind == "user" else "Group", "name": name}


def _rfc3339(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def account_name(user_id: str) -> str:
    return f"cattle-impersonation-{user_id}"


def binding_name(binding_id: str, role: str) -> str:
    return f"cattle-{binding_id}-{role}"


def project_namespaces(inputs: Inputs) -> dict[str, list[str]]:
    """Project id -> the names of its live namespaces (annotation first; then Rancher's
    defaults for unannotated ``default`` and system namespaces)."""
    by_name = {p.name: p.id for p in inputs.projects}
    known = {p.id for p in inputs.projects}
    out: dict[str, list[str]] = {p.id: [] for p in inputs.projects}
    for ns, obj in sorted(inputs.namespaces.items()):
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue  # a terminating namespace refuses new objects
        annotation = str((meta.get("annotations") or {}).get(PROJECT_ANNOTATION) or "")
        pid = ""
        if annotation:
            cluster, _, project = annotation.partition(":")
            if cluster == inputs.cluster_id and project in known:
                pid = project
        elif ns in SYSTEM_NAMESPACES:
            pid = by_name.get(SYSTEM_PROJECT, "")
        elif ns in DEFAULT_NAMESPACES:
            pid = by_name.get(DEFAULT_PROJECT, "")
        if pid:
            out[pid].append(ns)
    return out


def _admin_bindings(inputs: Inputs) -> list[GlobalBinding]:
    return [
        g for g in inputs.global_bindings
        if any(t.id == ADMIN for t in inputs.catalog.closure(g.role))
    ]


def members(inputs: Inputs) -> list[User]:
    """Enabled users who may use the cluster: a binding of theirs or of one of their groups (on
    the cluster or one of its projects), or a global admin role."""
    users_bound = {b.subject for b in inputs.bindings if b.subject_kind == "user"}
    groups_bound = {b.subject for b in inputs.bindings if b.subject_kind == "group"}
    admins = _admin_bindings(inputs)
    admin_users = {g.subject for g in admins if g.subject_kind == "user"}
    admin_groups = {g.subject for g in admins if g.subject_kind == "group"}
    return [
        u for u in inputs.users
        if u.enabled and (
            u.id in users_bound or u.id in admin_users
            or any(g in groups_bound or g in admin_groups for g in u.groups)
        )
    ]


def _impersonation(user: User) -> list[tuple[Kind, dict[str, Any]]]:
    principal = Principal(user.id, user.username, user.display_name, user.groups, "", False)
    name = account_name(user.id)
    return [
        (SERVICE_ACCOUNTS, {
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": _meta(name, IMPERSONATION_NAMESPACE),
        }),
        (CLUSTER_ROLES, {
            "apiVersion": RBAC_V1, "kind": "ClusterRole", "metadata": _meta(name),
            "rules": [
                {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"],
                 "resourceNames": [user.id]},
                {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"],
                 "resourceNames": impersonation_groups(principal)},
                {"apiGroups": ["authentication.k8s.io"],
                 "resources": [f"userextras/{k}" for k in sorted(principal_extras(principal))],
                 "verbs": ["impersonate"]},
            ],
        }),
        (CLUSTER_ROLE_BINDINGS, {
            "apiVersion": RBAC_V1, "kind": "ClusterRoleBinding", "metadata": _meta(name),
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name,
                          "namespace": IMPERSONATION_NAMESPACE}],
        }),
    ]


def _ace(inputs: Inputs, member_users: Iterable[User]) -> list[tuple[Kind, dict[str, Any]]]:
    out: list[tuple[Kind, dict[str, Any]]] = []
    ids = set()
    for user in member_users:
        ids.add(user.id)
        out.append((USER_ATTRIBUTES, {
            "apiVersion": ACE_GROUP, "kind": "ClusterUserAttribute",
            "metadata": _meta(user.id, ACE_NAMESPACE),
            "groups": list(user.groups), "enabled": True,
        }))
    for tok in inputs.tokens:
        if not (
            tok.kind == "api" and tok.enabled and tok.user_id in ids
            and (tok.expires_at is None or tok.expires_at > inputs.now)
            and tok.secret_hash.startswith(HASH_PREFIX)
        ):
            continue
        out.append((SECRETS, {
            "apiVersion": "v1", "kind": "Secret", "metadata": _meta(tok.id, ACE_NAMESPACE),
            "type": "Opaque",
            "data": {"hash": base64.b64encode(tok.secret_hash.encode()).decode()},
        }))
        out.append((AUTH_TOKENS, {
            "apiVersion": ACE_GROUP, "kind": "ClusterAuthToken",
            "metadata": _meta(tok.id, ACE_NAMESPACE),
            "userName": tok.user_id, "enabled": True, "expiresAt": _rfc3339(tok.expires_at),
            "clusterName": inputs.cluster_id, "secretRef": {"name": tok.id, "key": "hash"},
        }))
    return out


def desired_objects(inputs: Inputs) -> dict[DKey, dict[str, Any]]:
    """(kind, namespace, name) -> the object, for everything the cluster should hold of ours."""
    catalog = inputs.catalog
    objs: list[tuple[Kind, dict[str, Any]]] = []
    enabled = {u.id for u in inputs.users if u.enabled}
    templates: set[str] = set()
    ns_of = project_namespaces(inputs)
    for b in inputs.bindings:
        if b.subject_kind == "user" and b.subject not in enabled:
            continue  # a disabled user keeps their bindings in the store, not downstream
        roles = catalog.downstream_roles(b.role)
        templates.update(t.id for t in catalog.closure(b.role))
        namespaces = [""] if b.project_id is None else ns_of.get(b.project_id, [])
        for role in roles:
            for ns in namespaces:
                kind = CLUSTER_ROLE_BINDINGS if not ns else ROLE_BINDINGS
                objs.append((kind, {
                    "apiVersion": RBAC_V1, "kind": kind.name,
                    "metadata": _meta(binding_name(b.id, role), ns),
                    "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
                    "subjects": [_subject(b.subject_kind, b.subject)],
                }))
    for g in _admin_bindings(inputs):
        if g.subject_kind == "user" and g.subject not in enabled:
            continue
        objs.append((CLUSTER_ROLE_BINDINGS, {
            "apiVersion": RBAC_V1, "kind": "ClusterRoleBinding",
            "metadata": _meta(binding_name(g.id, "cluster-admin")),
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [_subject(g.subject_kind, g.subject)],
        }))
    for tid in sorted(templates):
        t = catalog.by_id[tid]
        if not t.external and downstream_rules(t):
            objs.append((CLUSTER_ROLES, {
                "apiVersion": RBAC_V1, "kind": "ClusterRole",
                "metadata": _meta(cluster_role_name(t.id)), "rules": downstream_rules(t),
            }))
    member_users = members(inputs)
    for user in member_users:
        objs.extend(_impersonation(user))
    if inputs.ace.enabled:
        objs.extend(_ace(inputs, member_users))
    out: dict[DKey, dict[str, Any]] = {}
    for kind, obj in objs:
        meta = obj["metadata"]
        out[(kind.name, meta.get("namespace", ""), meta["name"])] = obj
    return out


def ensured_objects(inputs: Inputs, desired: dict[DKey, dict[str, Any]]) -> list[
    tuple[Kind, dict[str, Any]]
]:
    """Namespaces and CRDs the desired objects live in or need (created once, never changed)."""
    out: list[tuple[Kind, dict[str, Any]]] = []
    namespaces = {ns for (_, ns, _) in desired if ns in (IMPERSONATION_NAMESPACE, ACE_NAMESPACE)}
    if inputs.ace.enabled:
        namespaces.add(ACE_NAMESPACE)
    for ns in sorted(namespaces):
        out.append((NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns)}))
    if inputs.ace.enabled:
        out.extend((CRDS, crd) for crd in crd_manifests())
    return out
