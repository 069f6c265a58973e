"""Update rules: what kube-apiserver's update strategies prepare and refuse (422 Invalid).

``check_update`` runs for every write of an object's main resource (PUT, PATCH, apply) before it
is stored:

- a Secret's ``stringData`` is folded into ``data``; a Service keeps its allocated cluster IPs
  when the new object leaves them out (``patchAllocatedValues``, ``normalizeClusterIPs``);
- ``roleRef`` of RoleBindings and ClusterRoleBindings cannot change;
- ConfigMaps and Secrets with ``immutable: true`` keep their data and stay immutable;
- ``spec.selector`` of Deployments, DaemonSets and ReplicaSets cannot change (apps/v1);
- a Service's ``spec.clusterIPs`` cannot change once set.
"""

from __future__ import annotations

import base64
from typing import Any

from . import errors
from .gofmt import go_quote, go_string_map, go_string_slice
from .resources import ResourceType

RBAC_GROUP = "rbac.authorization.k8s.io"
BINDING_ROLE_KINDS = {
    "rolebindings": ("Role", "ClusterRole"),
    "clusterrolebindings": ("ClusterRole",),
}
SELECTOR_IMMUTABLE = frozenset({"deployments", "daemonsets", "replicasets"})
IMMUTABLE_DATA_FIELDS = {"configmaps": ("data", "binaryData"), "secrets": ("data",)}
IMMUTABLE_WHEN_SET_MSG = "Forbidden: field is immutable when `immutable` is set"
FIELD_IMMUTABLE_MSG = "field is immutable"
CANNOT_CHANGE_ROLE_REF_MSG = "cannot change roleRef"
CLUSTER_IP_CHANGE_MSG = "may not change once set"
CLUSTER_IP_UNSET_MSG = "primary clusterIP can not be unset"
EXTERNAL_NAME = "ExternalName"
Cause = dict[str, str]


def check_update(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Prepare ``new`` (in place) as the update strategies do, then refuse forbidden changes."""
    if rt.group == "" and rt.resource == "secrets":
        _fold_string_data(new)
    if rt.group == "" and rt.resource == "services":
        _keep_cluster_ips(old, new)
    causes = _update_causes(rt, old, new)
    if causes:
        name = str((new.get("metadata") or {}).get("name", ""))
        raise errors.invalid(rt.group, rt.kind, name, causes)


def _update_causes(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    if rt.group == RBAC_GROUP and rt.resource in BINDING_ROLE_KINDS:
        return _binding_causes(rt.resource, old, new)
    if rt.group == "" and rt.resource in IMMUTABLE_DATA_FIELDS:
        return _immutable_data_causes(IMMUTABLE_DATA_FIELDS[rt.resource], old, new)
    if rt.group == "apps" and rt.resource in SELECTOR_IMMUTABLE:
        return _selector_causes(old, new)
    if rt.group == "" and rt.resource == "services":
        return _cluster_ip_causes(old, new)
    return []


# ---------------------------------------------------------------- RBAC bindings
def _role_ref(obj: dict[str, Any]) -> tuple[str, str, str]:
    ref = obj.get("roleRef") or {}
    return str(ref.get("apiGroup", "")), str(ref.get("kind", "")), str(ref.get("name", ""))


def _not_supported(field: str, value: str, supported: tuple[str, ...]) -> Cause:
    listed = ", ".join(go_quote(s) for s in supported)
    return {
        "reason": "FieldValueNotSupported",
        "message": f"Unsupported value: {go_quote(value)}: supported values: {listed}",
        "field": field,
    }


def _role_ref_causes(resource: str, obj: dict[str, Any]) -> list[Cause]:
    """ValidateRoleBinding / ValidateClusterRoleBinding on roleRef."""
    group, kind, name = _role_ref(obj)
    causes = []
    if group != RBAC_GROUP:
        causes.append(_not_supported("roleRef.apiGroup", group, (RBAC_GROUP,)))
    if kind not in BINDING_ROLE_KINDS[resource]:
        causes.append(_not_supported("roleRef.kind", kind, BINDING_ROLE_KINDS[resource]))
    if not name:
        causes.append(
            {"reason": "FieldValueRequired", "message": "Required value", "field": "roleRef.name"}
        )
    return causes


def _binding_causes(resource: str, old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    # The strategy validates the new object, then ValidateUpdate validates it again: each
    # roleRef problem is reported twice (the message lists it once), as the real server does.
    causes = _role_ref_causes(resource, new) * 2
    if _role_ref(old) != _role_ref(new):
        group, kind, name = _role_ref(new)
        shown = (
            f"rbac.RoleRef{{APIGroup:{go_quote(group)}, Kind:{go_quote(kind)}, "
            f"Name:{go_quote(name)}}}"
        )
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {shown}: {CANNOT_CHANGE_ROLE_REF_MSG}",
                "field": "roleRef",
            }
        )
    return causes


# ---------------------------------------------------------------- immutable ConfigMaps, Secrets
def _fold_string_data(secret: dict[str, Any]) -> None:
    string_data = secret.pop("stringData", None)
    if not isinstance(string_data, dict) or not string_data:
        return
    data = secret.get("data")
    if not isinstance(data, dict):
        data = {}
        secret["data"] = data
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()


def _immutable_data_causes(
    fields: tuple[str, ...], old: dict[str, Any], new: dict[str, Any]
) -> list[Cause]:
    """ValidateConfigMapUpdate / ValidateSecretUpdate for ``immutable: true`` objects."""
    if old.get("immutable") is not True:
        return []
    forbidden = [] if new.get("immutable") is True else ["immutable"]
    forbidden += [f for f in fields if (old.get(f) or {}) != (new.get(f) or {})]
    return [
        {"reason": "FieldValueForbidden", "message": IMMUTABLE_WHEN_SET_MSG, "field": f}
        for f in forbidden
    ]


# ---------------------------------------------------------------- apps/v1 selectors
def _selector_key(selector: Any) -> Any:
    """Semantic equality: an empty map or list equals an unset one."""
    if not isinstance(selector, dict):
        return selector
    return (selector.get("matchLabels") or {}, selector.get("matchExpressions") or [])


def _go_requirement(req: Any) -> str:
    req = req if isinstance(req, dict) else {}
    return (
        f"v1.LabelSelectorRequirement{{Key:{go_quote(req.get('key', ''))}, "
        f"Operator:{go_quote(req.get('operator', ''))}, "
        f"Values:{go_string_slice(req.get('values'))}}}"
    )


def _go_label_selector(selector: Any) -> str:
    if not isinstance(selector, dict):
        return "nil"
    exprs = selector.get("matchExpressions")
    shown_exprs = (
        "[]v1.LabelSelectorRequirement(nil)"
        if exprs is None
        else "[]v1.LabelSelectorRequirement{" + ", ".join(_go_requirement(e) for e in exprs) + "}"
    )
    return (
        f"v1.LabelSelector{{MatchLabels:{go_string_map(selector.get('matchLabels'))}, "
        f"MatchExpressions:{shown_exprs}}}"
    )


def _selector_causes(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """The apps/v1 strategies' ValidateImmutableField on spec.selector."""
    old_sel = (old.get("spec") or {}).get("selector")
    new_sel = (new.get("spec") or {}).get("selector")
    if _selector_key(old_sel) == _selector_key(new_sel):
        return []
    return [
        {
            "reason": "FieldValueInvalid",
            "message": f"Invalid value: {_go_label_selector(new_sel)}: {FIELD_IMMUTABLE_MSG}",
            "field": "spec.selector",
        }
    ]


# ---------------------------------------------------------------- Service cluster IPs
def _needs_cluster_ip(spec: dict[str, Any]) -> bool:
    return spec.get("type") != EXTERNAL_NAME


def _keep_cluster_ips(old: dict[str, Any], new: dict[str, Any]) -> None:
    """patchAllocatedValues then normalizeClusterIPs (the Service REST storage's beforeUpdate)."""
    old_spec = old.get("spec") or {}
    spec = new.get("spec")
    if not isinstance(spec, dict):
        spec = {}
        new["spec"] = spec
    if _needs_cluster_ip(old_spec) and _needs_cluster_ip(spec):
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
        for key in ("ipFamilies", "ipFamilyPolicy"):
            if key not in spec and key in old_spec:
                spec[key] = old_spec[key]
    old_ips, new_ips = old_spec.get("clusterIPs") or [], spec.get("clusterIPs") or []
    if old_ips and new_ips and old_ips == new_ips:
        if not spec.get("clusterIP"):
            spec.pop("clusterIPs", None)
        elif spec["clusterIP"] != old_spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]


def _cluster_ip_causes(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """validateUpgradeDowngradeClusterIPs: the primary and secondary IPs are fixed."""
    old_spec, spec = old.get("spec") or {}, new.get("spec") or {}
    if not _needs_cluster_ip(old_spec) or not _needs_cluster_ip(spec):
        return []
    old_ips, new_ips = old_spec.get("clusterIPs") or [], spec.get("clusterIPs")
    shown = go_string_slice(new_ips)
    causes = [
        {
            "reason": "FieldValueInvalid",
            "message": f"Invalid value: {shown}: {CLUSTER_IP_CHANGE_MSG}",
            "field": f"spec.clusterIPs[{i}]",
        }
        for i, ip in enumerate(old_ips)
        if i < len(new_ips or []) and ip != (new_ips or [])[i]
    ]
    if old_ips and not new_ips:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {shown}: {CLUSTER_IP_UNSET_MSG}",
                "field": "spec.clusterIPs[0]",
            }
        )
    return causes
