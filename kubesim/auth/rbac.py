"""RBAC evaluation over the store's Roles, ClusterRoles and bindings, plus role aggregation.

The index maps each subject (``("user", name)`` or ``("group", name)``) to the rules its
bindings grant, cluster-wide and per namespace. It is rebuilt lazily after any change to an
RBAC object (the store tells us through ``subscribe``), so ``authorize`` costs a few dict
lookups and rule matches. ClusterRoles with an ``aggregationRule`` are evaluated with the
union of the rules of the roles their selectors pick, and a small controller also writes
those rules back into the store, as kube-controller-manager's clusterrole-aggregation does.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

from kubesim.authtypes import RequestAttributes, UserInfo
from kubesim.store import Store
from rancher_tunnel.logs import get_logger

from . import rules as r

RBAC_GROUP = "rbac.authorization.k8s.io"
MASTERS_GROUP = "system:masters"
MODE_ALWAYS_ALLOW = "AlwaysAllow"
MODE_RBAC = "RBAC"
MODE_NODE = "Node"
AGGREGATION_MAX_PASSES = 8
SubjectKey = tuple[str, str]

log = get_logger(component="kubesim.auth.rbac")


@dataclass(frozen=True)
class Grant:
    """The rules one binding gives one subject, or the error resolving its role."""

    rules: tuple[dict[str, Any], ...]
    description: str
    error: str = ""


@dataclass
class RuleIndex:
    cluster: dict[SubjectKey, list[Grant]] = field(default_factory=dict)
    namespaced: dict[str, dict[SubjectKey, list[Grant]]] = field(default_factory=dict)

    def grants(self, user: UserInfo, namespace: str) -> list[Grant]:
        keys = r.user_keys(user)
        out = [g for k in keys for g in self.cluster.get(k, [])]
        if namespace:
            per_ns = self.namespaced.get(namespace, {})
            out.extend(g for k in keys for g in per_ns.get(k, []))
        return out


def _name(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def aggregated_rules(
    role: dict[str, Any], roles: list[dict[str, Any]], rules_of: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The rules of the roles ``role``'s selectors pick (clusterroleaggregation's order)."""
    out: list[dict[str, Any]] = []
    selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    by_name = sorted(roles, key=_name)
    for selector in selectors:
        for other in by_name:
            if _name(other) == _name(role) or not r.selector_matches(selector, _labels(other)):
                continue
            for rule in rules_of.get(_name(other), []):
                if rule not in out:
                    out.append(rule)
    return out


def effective_cluster_rules(roles: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rules per ClusterRole name, aggregated roles resolved to a fixpoint."""
    rules_of = {_name(c): list(c.get("rules") or []) for c in roles}
    aggregated = [c for c in roles if c.get("aggregationRule")]
    for _ in range(AGGREGATION_MAX_PASSES):
        changed = False
        for role in aggregated:
            new = aggregated_rules(role, roles, rules_of)
            if new != rules_of[_name(role)]:
                rules_of[_name(role)] = new
                changed = True
        if not changed:
            break
    return rules_of


def build_index(store: Store) -> RuleIndex:
    cluster_roles = store.list_items(RBAC_GROUP, "clusterroles")
    cluster_rules = effective_cluster_rules(cluster_roles)
    roles = {
        (str(x["metadata"].get("namespace", "")), _name(x)): list(x.get("rules") or [])
        for x in store.list_items(RBAC_GROUP, "roles")
    }
    index = RuleIndex()

    def add(target: dict[SubjectKey, list[Grant]], binding: dict[str, Any], ns: str) -> None:
        ref = binding.get("roleRef") or {}
        kind, role_name = str(ref.get("kind", "")), str(ref.get("name", ""))
        found: list[dict[str, Any]] | None
        if kind == "ClusterRole":
            found = cluster_rules.get(role_name)
            error = f'clusterrole.rbac.authorization.k8s.io "{role_name}" not found'
        elif kind == "Role" and ns:
            found = roles.get((ns, role_name))
            error = f'role.rbac.authorization.k8s.io "{role_name}" not found'
        else:
            found, error = None, f"unsupported role reference kind: {kind!r}"
        what = "ClusterRoleBinding" if not ns else "RoleBinding"
        shown = _name(binding) if not ns else f"{_name(binding)}/{ns}"
        for subject in binding.get("subjects") or []:
            key = r.subject_key(subject, ns)
            if key is None:
                continue
            desc = f'{what} "{shown}" of {kind} "{role_name}" to {r.describe_subject(subject, ns)}'
            grant = Grant(tuple(found), desc) if found is not None else Grant((), desc, error)
            target.setdefault(key, []).append(grant)

    for crb in store.list_items(RBAC_GROUP, "clusterrolebindings"):
        add(index.cluster, crb, "")
    for rb in store.list_items(RBAC_GROUP, "rolebindings"):
        ns = str(rb["metadata"].get("namespace", ""))
        add(index.namespaced.setdefault(ns, {}), rb, ns)
    return index


def reconcile_aggregation(store: Store) -> int:
    """Write the aggregated rules into ClusterRoles that have an aggregationRule.

    Returns how many roles were updated. Loops until nothing changes, as the controller's
    repeated syncs converge (admin picks up edit's rules after edit picked up view's).
    """
    updated = 0
    for _ in range(AGGREGATION_MAX_PASSES):
        roles = store.list_items(RBAC_GROUP, "clusterroles")
        rules_of = {_name(c): list(c.get("rules") or []) for c in roles}
        changed = 0
        for role in roles:
            if not role.get("aggregationRule"):
                continue
            new_rules = aggregated_rules(role, roles, rules_of)
            if new_rules == (role.get("rules") or []):
                continue
            new = copy.deepcopy(role)
            new["rules"] = new_rules
            store.update_item(RBAC_GROUP, "clusterroles", new)
            changed += 1
        updated += changed
        if not changed:
            break
    return updated


MAX_CACHED_DECISIONS = 10_000


class Authorizer:
    """``AlwaysAllow`` or ``RBAC`` (with the system:masters bypass kube-apiserver puts first)."""

    def __init__(self, store: Store, mode: str = MODE_RBAC) -> None:
        # kube-apiserver's --authorization-mode list; Node (kubelets) is not simulated
        modes = {m.strip() for m in mode.split(",") if m.strip()}
        unknown = modes - {MODE_ALWAYS_ALLOW, MODE_RBAC, MODE_NODE}
        if unknown or not modes & {MODE_ALWAYS_ALLOW, MODE_RBAC}:
            raise ValueError(f"unsupported authorization mode {mode!r}")
        self.store = store
        self.mode = MODE_ALWAYS_ALLOW if MODE_ALWAYS_ALLOW in modes else MODE_RBAC
        self._index: RuleIndex | None = None
        # Decisions of the current rule index (cleared with it on any RBAC change).
        self._decisions: dict[tuple[Any, ...], tuple[bool, str]] = {}
        self._decisions_of: RuleIndex | None = None
        self._aggregation_pending = False
        self._unsubscribe = store.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def _on_event(self, event_type: str, group: str, resource: str, obj: dict[str, Any]) -> None:
        if group != RBAC_GROUP:
            return
        self._index = None
        if resource == "clusterroles" and not self._aggregation_pending:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop (plain unit tests): the index still aggregates on its own
            self._aggregation_pending = True
            loop.call_soon(self._run_aggregation)

    def _run_aggregation(self) -> None:
        self._aggregation_pending = False
        try:
            reconcile_aggregation(self.store)
        except Exception:
            log.exception("aggregation_failed")

    def index(self) -> RuleIndex:
        if self._index is None:
            self._index = build_index(self.store)
        return self._index

    def authorize(self, attrs: RequestAttributes) -> tuple[bool, str]:
        """(allowed, reason) as kube-apiserver's authorizer chain returns them."""
        if self.mode == MODE_ALWAYS_ALLOW or MASTERS_GROUP in attrs.user.groups:
            return True, ""
        index = self.index()
        if self._decisions_of is not index or len(self._decisions) >= MAX_CACHED_DECISIONS:
            self._decisions = {}
            self._decisions_of = index
        key = (
            attrs.user.name,
            tuple(attrs.user.groups),
            attrs.verb,
            attrs.api_group,
            attrs.resource,
            attrs.subresource,
            attrs.namespace,
            attrs.name,
            attrs.path,
            attrs.is_resource_request,
        )
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decisions[key] = self._evaluate(index, attrs)
        return decision

    def _evaluate(self, index: RuleIndex, attrs: RequestAttributes) -> tuple[bool, str]:
        errors: list[str] = []
        for grant in index.grants(attrs.user, attrs.namespace):
            if grant.error:
                errors.append(grant.error)
                continue
            if any(r.rule_allows(attrs, rule) for rule in grant.rules):
                return True, f"RBAC: allowed by {grant.description}"
        if not errors:
            return False, ""
        joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        return False, f"RBAC: {joined}"

    def rules_for(
        self, user: UserInfo, namespace: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
        """(resourceRules, nonResourceRules, evaluationError) for a SelfSubjectRulesReview."""
        if self.mode == MODE_ALWAYS_ALLOW:
            everything = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
            return everything, [{"verbs": ["*"], "nonResourceURLs": ["*"]}], ""
        resource_rules: list[dict[str, Any]] = []
        url_rules: list[dict[str, Any]] = []
        errors: list[str] = []
        for grant in self.index().grants(user, namespace):
            errors.extend([grant.error] if grant.error else [])
            for rule in grant.rules:
                if rule.get("nonResourceURLs"):
                    out = {"verbs": list(rule.get("verbs") or [])}
                    out["nonResourceURLs"] = list(rule["nonResourceURLs"])
                    url_rules.append(out)
                else:
                    item = r.compact_rule({**rule, "nonResourceURLs": []})
                    item.setdefault("apiGroups", [])
                    resource_rules.append(item)
        error = "" if not errors else "[" + ", ".join(errors) + "]"
        return resource_rules, url_rules, error
