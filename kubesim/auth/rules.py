"""RBAC policy-rule and subject matching, as k8s.io/kubernetes/pkg/apis/rbac/v1 helpers do it.

Pure functions over the JSON form of rules and subjects; no store, no I/O.
"""

from __future__ import annotations

from typing import Any

from kubesim.authtypes import RequestAttributes, UserInfo

ALL = "*"
SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"


def str_list(rule: dict[str, Any], key: str) -> list[str]:
    value = rule.get(key) or []
    return [str(v) for v in value] if isinstance(value, list) else []


def verb_matches(rule: dict[str, Any], verb: str) -> bool:
    return any(v in (ALL, verb) for v in str_list(rule, "verbs"))


def api_group_matches(rule: dict[str, Any], group: str) -> bool:
    return any(g in (ALL, group) for g in str_list(rule, "apiGroups"))


def resource_matches(rule: dict[str, Any], combined: str, subresource: str) -> bool:
    """``*``, an exact ``resource[/subresource]`` or ``*/subresource``."""
    for res in str_list(rule, "resources"):
        if res in (ALL, combined):
            return True
        if subresource and res == "*/" + subresource:
            return True
    return False


def resource_name_matches(rule: dict[str, Any], name: str) -> bool:
    names = str_list(rule, "resourceNames")
    return not names or name in names


def non_resource_url_matches(rule: dict[str, Any], path: str) -> bool:
    for url in str_list(rule, "nonResourceURLs"):
        if url in (ALL, path):
            return True
        if url.endswith(ALL) and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(attrs: RequestAttributes, rule: dict[str, Any]) -> bool:
    """Whether one PolicyRule allows the request (rbac ``RuleAllows``)."""
    if not verb_matches(rule, attrs.verb):
        return False
    if not attrs.is_resource_request:
        return non_resource_url_matches(rule, attrs.path)
    combined = attrs.resource + ("/" + attrs.subresource if attrs.subresource else "")
    return (
        api_group_matches(rule, attrs.api_group)
        and resource_matches(rule, combined, attrs.subresource)
        and resource_name_matches(rule, attrs.name)
    )


def sa_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def split_sa_username(username: str) -> tuple[str, str] | None:
    """``system:serviceaccount:<ns>:<name>`` into (ns, name), or None (SplitUsername)."""
    if not username.startswith(SA_PREFIX):
        return None
    parts = username[len(SA_PREFIX) :].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def sa_groups(namespace: str) -> list[str]:
    return [SA_GROUP, f"{SA_GROUP}:{namespace}"]


def subject_key(subject: dict[str, Any], binding_namespace: str) -> tuple[str, str] | None:
    """The (``user``|``group``, name) a binding subject grants to, or None if malformed."""
    kind = subject.get("kind")
    name = str(subject.get("name") or "")
    if not name:
        return None
    if kind == "User":
        return "user", name
    if kind == "Group":
        return "group", name
    if kind == "ServiceAccount":
        namespace = str(subject.get("namespace") or binding_namespace)
        return ("user", sa_username(namespace, name)) if namespace else None
    return None


def describe_subject(subject: dict[str, Any], binding_namespace: str) -> str:
    kind = str(subject.get("kind", ""))
    name = str(subject.get("name", ""))
    if kind == "ServiceAccount":
        namespace = str(subject.get("namespace") or binding_namespace)
        return f'{kind} "{namespace}/{name}"'
    return f'{kind} "{name}"'


def user_keys(user: UserInfo) -> list[tuple[str, str]]:
    return [("user", user.name), *(("group", g) for g in user.groups)]


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions) against labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = [str(v) for v in expr.get("values") or []]
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def compact_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule with empty lists left out, in the key order kube-apiserver serialises."""
    out: dict[str, Any] = {}
    for key in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"):
        if rule.get(key):
            out[key] = list(rule[key])
    return out
