"""RBAC escalation prevention, as the RBAC REST storage of kube-apiserver does it.

Writing a Role/ClusterRole is allowed when the writer already holds every permission it
grants (or may ``escalate`` roles); writing a RoleBinding/ClusterRoleBinding is allowed when
the writer holds every permission of the referenced role (or may ``bind`` it). Members of
system:masters are exempt. The API core calls ``admit_rbac_write`` before a create/update.
"""

from __future__ import annotations

import json
from typing import Any

from kubesim.authtypes import RequestAttributes, UserInfo
from kubesim.errors import StatusError, forbidden

from . import rules as r
from .rbac import MASTERS_GROUP, RBAC_GROUP, Authorizer, effective_cluster_rules

ROLE_RESOURCES = {"roles": "Role", "clusterroles": "ClusterRole"}
BINDING_RESOURCES = {"rolebindings": "RoleBinding", "clusterrolebindings": "ClusterRoleBinding"}
Atom = tuple[str, str, str, str, str]  # verb, group, resource, name, url
FULL_AUTHORITY = [
    {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
    {"verbs": ["*"], "nonResourceURLs": ["*"]},
]


def _atoms(rule: dict[str, Any]) -> list[Atom]:
    verbs = [str(v) for v in rule.get("verbs") or []]
    urls = [str(u) for u in rule.get("nonResourceURLs") or []]
    if urls:
        return [(v, "", "", "", u) for v in verbs for u in urls]
    names = [str(n) for n in rule.get("resourceNames") or []] or [""]
    return [
        (v, str(g), str(res), n, "")
        for v in verbs
        for g in rule.get("apiGroups") or []
        for res in rule.get("resources") or []
        for n in names
    ]


def _covers(owner: dict[str, Any], atom: Atom) -> bool:
    """Whether ``owner`` grants the atomic permission (a ``*`` asked needs a ``*`` held)."""
    verb, group, resource, name, url = atom
    if verb not in r.str_list(owner, "verbs") and r.ALL not in r.str_list(owner, "verbs"):
        return False
    if url:
        return any(
            held in (r.ALL, url) or (held.endswith(r.ALL) and url.startswith(held[:-1]))
            for held in r.str_list(owner, "nonResourceURLs")
        )
    if not any(g in (r.ALL, group) for g in r.str_list(owner, "apiGroups")):
        return False
    sub = resource.split("/", 1)[1] if "/" in resource else ""
    if not r.resource_matches(owner, resource, sub):
        return False
    names = r.str_list(owner, "resourceNames")
    return not names or (bool(name) and name in names)


def _q(items: list[str]) -> str:
    return "[" + " ".join(json.dumps(i) for i in items) + "]"


def compact_string(rule: dict[str, Any]) -> str:
    """rbacv1helpers PolicyRule.CompactString."""
    parts = []
    for key, label in (
        ("apiGroups", "APIGroups"),
        ("resources", "Resources"),
        ("nonResourceURLs", "NonResourceURLs"),
        ("resourceNames", "ResourceNames"),
        ("verbs", "Verbs"),
    ):
        if rule.get(key):
            parts.append(f"{label}:{_q(rule[key])}")
    return "{" + ", ".join(parts) + "}"


def _compact(missing: list[Atom]) -> list[dict[str, Any]]:
    merged: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for verb, group, resource, name, url in missing:
        key = (group, resource, name, url)
        if key not in merged:
            rule: dict[str, Any] = (
                {"nonResourceURLs": [url]}
                if url
                else {"apiGroups": [group], "resources": [resource]}
            )
            if name:
                rule["resourceNames"] = [name]
            rule["verbs"] = []
            merged[key] = rule
        if verb not in merged[key]["verbs"]:
            merged[key]["verbs"].append(verb)
    return sorted(merged.values(), key=compact_string)


def _held_rules(authorizer: Authorizer, user: UserInfo, namespace: str) -> list[dict[str, Any]]:
    resource_rules, url_rules, _ = authorizer.rules_for(user, namespace)
    return resource_rules + url_rules


def _role_rules(
    authorizer: Authorizer, ref: dict[str, Any], namespace: str
) -> list[dict[str, Any]]:
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    store = authorizer.store
    if kind == "ClusterRole":
        return effective_cluster_rules(store.list_items(RBAC_GROUP, "clusterroles")).get(name, [])
    role = store.get_item(RBAC_GROUP, "roles", namespace, name)
    return list((role or {}).get("rules") or [])


def _escalation_error(resource: str, name: str, user: UserInfo, missing: list[Atom]) -> StatusError:
    listed = "\n".join(compact_string(rule) for rule in _compact(missing))
    message = (
        f'{resource}.{RBAC_GROUP} "{name}" is forbidden: user "{user.name}" '
        f"(groups={_q(user.groups)}) is attempting to grant RBAC permissions not currently "
        f"held:\n{listed}"
    )
    return forbidden(RBAC_GROUP, resource, name, message)


def admit_rbac_write(
    resource: str, obj: dict[str, Any], user: UserInfo, authorizer: Authorizer
) -> None:
    """Raise 403 when ``user`` may not write this Role/ClusterRole/(Cluster)RoleBinding."""
    if resource not in ROLE_RESOURCES and resource not in BINDING_RESOURCES:
        return
    if authorizer.mode != "RBAC" or MASTERS_GROUP in user.groups:
        return
    md = obj.get("metadata") or {}
    name, namespace = str(md.get("name", "")), str(md.get("namespace", ""))
    if resource in {"clusterroles", "clusterrolebindings"}:
        namespace = ""
    if resource in ROLE_RESOURCES:
        verb, target, target_name, wanted = "escalate", resource, name, list(obj.get("rules") or [])
    else:
        ref = obj.get("roleRef") or {}
        target = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        verb, target_name = "bind", str(ref.get("name", ""))
        wanted = _role_rules(authorizer, ref, namespace)
    attrs = RequestAttributes(
        user=user,
        verb=verb,
        api_group=RBAC_GROUP,
        api_version="v1",
        resource=target,
        namespace=namespace,
        name=target_name,
    )
    if authorizer.authorize(attrs)[0]:
        return
    held = _held_rules(authorizer, user, namespace)
    missing = [a for rule in wanted for a in _atoms(rule) if not any(_covers(h, a) for h in held)]
    if missing:
        raise _escalation_error(resource, name, user, missing)
    # an aggregation rule can gather anything: it takes full authority
    lacks_full = any(
        not any(_covers(h, a) for h in held) for rule in FULL_AUTHORITY for a in _atoms(rule)
    )
    if resource == "clusterroles" and obj.get("aggregationRule") and lacks_full:
        raise forbidden(
            RBAC_GROUP,
            resource,
            name,
            f'{resource}.{RBAC_GROUP} "{name}" is forbidden: must have cluster-admin '
            "privileges to use the aggregationRule",
        )
