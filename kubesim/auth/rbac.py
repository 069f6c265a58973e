"""RBAC evaluation over the store's Roles, ClusterRoles and bindings, plus role aggregation.

The index maps each subject (``("user", name)`` or ``("group", name)``) to the rules its
bindings grant, cluster-wide and per namespace. It is kept current one store event at a time
(the store tells us through ``subscribe``; a change under role aggregation rebuilds it whole),
so ``authorize`` costs a few dict lookups and rule matches. ClusterRoles with an
``aggregationRule`` are evaluated with the union of the rules of the roles their selectors
pick, and a small controller also writes those rules back into the store, as
kube-controller-manager's clusterrole-aggregation does.
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
    source: tuple[str, str] = ("", "")  # (namespace, name) of the binding


BindingKey = tuple[str, str]  # (namespace or "", name)


@dataclass
class RuleIndex:
    cluster: dict[SubjectKey, list[Grant]] = field(default_factory=dict)
    namespaced: dict[str, dict[SubjectKey, list[Grant]]] = field(default_factory=dict)
    cluster_rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    roles: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    bindings: dict[BindingKey, dict[str, Any]] = field(default_factory=dict)
    # Selectors of the ClusterRoles that aggregate others, and every ClusterRole's labels: a
    # change that aggregation may see rebuilds the index whole.
    selectors: list[dict[str, Any]] = field(default_factory=list)
    role_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    def _aggregation_sees(self, name: str, obj: dict[str, Any]) -> bool:
        if obj.get("aggregationRule"):
            return True
        for labels in (self.role_labels.get(name, {}), _labels(obj)):
            if any(r.selector_matches(sel, labels) for sel in self.selectors):
                return True
        return False

    def add_binding(self, binding: dict[str, Any]) -> None:
        ns = str(binding.get("metadata", {}).get("namespace", ""))
        source = (ns, _name(binding))
        self.bindings[source] = binding
        target = self.cluster if not ns else self.namespaced.setdefault(ns, {})
        ref = binding.get("roleRef") or {}
        kind, role_name = str(ref.get("kind", "")), str(ref.get("name", ""))
        found: list[dict[str, Any]] | None
        if kind == "ClusterRole":
            found = self.cluster_rules.get(role_name)
            error = f'clusterrole.rbac.authorization.k8s.io "{role_name}" not found'
        elif kind == "Role" and ns:
            found = self.roles.get((ns, role_name))
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
            grant = (Grant(tuple(found), desc, "", source) if found is not None
                     else Grant((), desc, error, source))
            target.setdefault(key, []).append(grant)

    def remove_binding(self, source: BindingKey) -> None:
        binding = self.bindings.pop(source, None)
        if binding is None:
            return
        ns = source[0]
        target = self.cluster if not ns else self.namespaced.get(ns, {})
        for subject in binding.get("subjects") or []:
            key = r.subject_key(subject, ns)
            grants = target.get(key) if key is not None else None
            if grants is None:
                continue
            kept = [g for g in grants if g.source != source]
            if kept:
                target[key] = kept  # type: ignore[index]
            else:
                target.pop(key, None)  # type: ignore[arg-type]

    def _rebind(self, kind: str, namespace: str, role_name: str) -> None:
        """Re-resolve every binding that references this role (its rules changed)."""
        for source, binding in list(self.bindings.items()):
            ref = binding.get("roleRef") or {}
            if ref.get("kind") != kind or ref.get("name") != role_name:
                continue
            if kind == "Role" and source[0] != namespace:
                continue
            self.remove_binding(source)
            self.add_binding(binding)

    def apply(self, event_type: str, resource: str, obj: dict[str, Any]) -> bool:
        """Update the index for one store event; False: it cannot, rebuild it whole."""
        ns = str(obj.get("metadata", {}).get("namespace", ""))
        name = _name(obj)
        deleted = event_type == "DELETED"
        if resource in ("clusterrolebindings", "rolebindings"):
            self.remove_binding((ns, name))
            if not deleted:
                self.add_binding(obj)
            return True
        if resource == "clusterroles":
            if self._aggregation_sees(name, obj):
                return False
            if deleted:
                self.cluster_rules.pop(name, None)
                self.role_labels.pop(name, None)
            else:
                self.cluster_rules[name] = list(obj.get("rules") or [])
                self.role_labels[name] = _labels(obj)
            self._rebind("ClusterRole", "", name)
            return True
        if resource == "roles":
            if deleted:
                self.roles.pop((ns, name), None)
            else:
                self.roles[(ns, name)] = list(obj.get("rules") or [])
            self._rebind("Role", ns, name)
            return True
        return False

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
    index = RuleIndex(
        cluster_rules=effective_cluster_rules(cluster_roles),
        roles={
            (str(x["metadata"].get("namespace", "")), _name(x)): list(x.get("rules") or [])
            for x in store.list_items(RBAC_GROUP, "roles")
        },
        selectors=[sel for c in cluster_roles
                   for sel in (c.get("aggregationRule") or {}).get("clusterRoleSelectors") or []],
        role_labels={_name(c): _labels(c) for c in cluster_roles},
    )
    for crb in store.list_items(RBAC_GROUP, "clusterrolebindings"):
        index.add_binding(crb)
    for rb in store.list_items(RBAC_GROUP, "rolebindings"):
        index.add_binding(rb)
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
        # Kept current one event at a time (kube-apiserver's authorizer reads informer caches;
        # a full rebuild per write made thousands of RBAC writes quadratic).
        self._decisions = {}
        if self._index is not None and not self._index.apply(event_type, resource, obj):
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
