"""RBAC objects written straight into a ``kubesim.store.Store`` (roles and their bindings)."""

from __future__ import annotations

from typing import Any

from kubesim.store import Store

RBAC = "rbac.authorization.k8s.io"


def user_subject(name: str) -> dict[str, Any]:
    return {"kind": "User", "name": name}


def group_subject(name: str) -> dict[str, Any]:
    return {"kind": "Group", "name": name}


def create_role(store: Store, name: str, rules: list[dict[str, Any]], ns: str = "") -> None:
    """A Role in ``ns``, or a ClusterRole without one."""
    resource = "roles" if ns else "clusterroles"
    md: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    store.create_item(RBAC, resource, {"metadata": md, "rules": rules})


def create_binding(
    store: Store, name: str, role: str, subjects: list[dict[str, Any]], ns: str = "", kind: str = ""
) -> None:
    """A RoleBinding in ``ns`` (to a Role unless ``kind`` says otherwise), or a
    ClusterRoleBinding (to a ClusterRole) without one."""
    resource = "rolebindings" if ns else "clusterrolebindings"
    md: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    ref = {"apiGroup": RBAC, "kind": kind or ("Role" if ns else "ClusterRole"), "name": role}
    store.create_item(RBAC, resource, {"metadata": md, "roleRef": ref, "subjects": subjects})
