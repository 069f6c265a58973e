"""Admission that depends on who writes: RBAC escalation prevention for Roles, ClusterRoles and
their bindings (the RBAC REST storage of kube-apiserver checks it before validation).

The pipeline records the request's user under ``USER_KEY``; the verbs call ``admit_write`` with
the object about to be stored (and the stored one, for an update).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .authhooks import AuthHooks
from .authtypes import UserInfo
from .resources import ResourceType

USER_KEY: web.RequestKey[UserInfo] = web.RequestKey("kubesim.user", UserInfo)
RBAC_GROUP = "rbac.authorization.k8s.io"
# rbacregistry.IsOnlyMutatingGCFields: the garbage collector may always write these
GC_FIELDS = ("ownerReferences", "finalizers")
# bookkeeping the comparison ignores (set by the server, not by the writer)
SERVER_FIELDS = ("resourceVersion", "managedFields", "generation")


def _without(obj: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    md = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in fields}
    return {**obj, "metadata": md}


def _only_gc_fields(old: dict[str, Any], new: dict[str, Any]) -> bool:
    ignored = GC_FIELDS + SERVER_FIELDS
    return _without(old, ignored) == _without(new, ignored)


def admit_write(
    request: web.Request,
    auth: AuthHooks,
    rt: ResourceType,
    new: dict[str, Any],
    old: dict[str, Any] | None,
) -> None:
    """Raise 403 Forbidden when the request's user may not write this RBAC object."""
    if rt.group != RBAC_GROUP or rt.crd is not None:
        return
    user = request.get(USER_KEY)
    if user is None or (old is not None and _only_gc_fields(old, new)):
        return
    auth.admit_rbac_write(rt.resource, new, user)
