"""Role templates: named sets of Kubernetes RBAC rules for one context (``global``, ``cluster``,
``project``), built in (Rancher's, with the meanings Rancher gives them) or custom (the store).

A template's rules are PolicyRule dicts. Rules on the API group ``management.cattle.io`` are the
server's own (what the REST API lets a holder do); all other rules are written downstream as one
ClusterRole per template (``cattle-rt-<id>``). A template may inherit other templates of the same
context; ``external`` templates name a ClusterRole every cluster already has (``cluster-admin``,
``admin``, ``edit``, ``view``) that is bound, never written. Binding a template therefore binds
each downstream ClusterRole in its inheritance closure (:meth:`Catalog.downstream_roles`), so a
binding's ``roleRef`` never has to change when a template's rules do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rancher_server.store import NotFound, RoleTemplate, Store

MANAGEMENT_GROUP = "management.cattle.io"
CLUSTER_ROLE_PREFIX = "cattle-rt-"
KUBE_PREFIX = "kube-"  # external templates: "kube-edit" binds Kubernetes' ClusterRole "edit"
MAX_INHERITANCE_DEPTH = 16
TEMPLATE_ID_PATTERN = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
ALL = ["*"]
READ = ["get", "list", "watch"]

GLOBAL, CLUSTER, PROJECT = "global", "cluster", "project"

# Global roles.
ADMIN = "admin"
USER = "user"
USER_BASE = "user-base"
# Cluster roles.
CLUSTER_OWNER = "cluster-owner"
CLUSTER_MEMBER = "cluster-member"
# Project roles ("read-only" is a project template that may also be bound on a whole cluster).
PROJECT_OWNER = "project-owner"
PROJECT_MEMBER = "project-member"
READ_ONLY = "read-only"
CREATE_NS = "create-ns"


def _rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def _mgmt(resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return _rule(MANAGEMENT_GROUP, resources, verbs)


def _t(
    tid: str, name: str, context: str, rules: Iterable[dict[str, Any]] = (),
    inherits: Iterable[str] = (), *, external: bool = False, hidden: bool = False,
    description: str = "",
) -> RoleTemplate:
    return RoleTemplate(
        id=tid, display_name=name, context=context, rules=tuple(rules),
        inherits=tuple(inherits), external=external, builtin=True, hidden=hidden,
        description=description,
    )


BUILTIN_TEMPLATES: tuple[RoleTemplate, ...] = (
    # Kubernetes' own ClusterRoles, bound by the templates below (never written downstream).
    # Their ids carry a prefix: "admin" is also the global administrator role.
    _t(KUBE_PREFIX + "cluster-admin", "Kubernetes cluster-admin", CLUSTER, external=True,
       hidden=True),
    _t(KUBE_PREFIX + "admin", "Kubernetes admin", PROJECT, external=True, hidden=True),
    _t(KUBE_PREFIX + "edit", "Kubernetes edit", PROJECT, external=True, hidden=True),
    _t(KUBE_PREFIX + "view", "Kubernetes view", PROJECT, external=True, hidden=True),
    # Global roles: what the server's REST API allows.
    _t(ADMIN, "Admin", GLOBAL, [_mgmt(ALL, ALL), {"nonResourceURLs": ALL, "verbs": ALL}],
       description="Everything, on every cluster (cluster-owner of each)"),
    _t(USER_BASE, "User Base", GLOBAL,
       [_mgmt(["preferences"], ALL), _mgmt(["roletemplates", "settings"], READ)],
       description="Log in and see what one is bound to; nothing else"),
    _t("clusters-create", "Create Clusters", GLOBAL, [_mgmt(["clusters"], ["create"])]),
    _t("users-manage", "Manage Users", GLOBAL,
       [_mgmt(["users", "globalrolebindings"], ALL)]),
    _t("roles-manage", "Manage Role Templates", GLOBAL, [_mgmt(["roletemplates"], ALL)]),
    _t(USER, "Standard User", GLOBAL, [], [USER_BASE, "clusters-create"],
       description="May create clusters; sees only what they are bound to"),
    # Cluster roles.
    _t("nodes-view", "View Nodes", CLUSTER, [_rule("", ["nodes"], READ)]),
    _t("nodes-manage", "Manage Nodes", CLUSTER, [_rule("", ["nodes"], ALL)]),
    _t("storage-manage", "Manage Storage", CLUSTER,
       [_rule("", ["persistentvolumes"], ALL), _rule("storage.k8s.io", ["storageclasses"], ALL)]),
    _t("projects-view", "View Projects", CLUSTER, [_mgmt(["projects"], READ)]),
    _t("projects-create", "Create Projects", CLUSTER, [_mgmt(["projects"], ["create"])]),
    _t("clusterroletemplatebindings-view", "View Cluster Members", CLUSTER,
       [_mgmt(["clusterroletemplatebindings"], READ)]),
    _t("clusterroletemplatebindings-manage", "Manage Cluster Members", CLUSTER,
       [_mgmt(["clusterroletemplatebindings"], ALL)]),
    _t(CLUSTER_OWNER, "Cluster Owner", CLUSTER,
       [_mgmt(["clusterroletemplatebindings", "projects", "projectroletemplatebindings",
               "namespaces", "clusters"], ALL)],
       [KUBE_PREFIX + "cluster-admin"],
       description="Everything in the cluster, including its members"),
    _t(CLUSTER_MEMBER, "Cluster Member", CLUSTER,
       [_rule("", ["persistentvolumes"], READ), _rule("storage.k8s.io", ["storageclasses"], READ)],
       [KUBE_PREFIX + "edit", "nodes-view", "projects-view", "projects-create",
        "clusterroletemplatebindings-view"],
       description="Read and write workloads in every namespace, read nodes and storage, "
                   "create projects; no RBAC"),
    # Project roles.
    _t(CREATE_NS, "Create Namespaces", PROJECT, [_mgmt(["namespaces"], ["create"])],
       description="Create namespaces in the project (through the server's proxy)"),
    _t("workloads-view", "View Workloads", PROJECT,
       [_rule("", ["pods", "pods/log"], READ),
        _rule("apps", ["deployments", "daemonsets", "statefulsets", "replicasets"], READ),
        _rule("batch", ["jobs", "cronjobs"], READ)]),
    _t("workloads-manage", "Manage Workloads", PROJECT,
       [_rule("", ["pods", "pods/log", "pods/exec", "pods/attach", "pods/portforward"], ALL),
        _rule("apps", ["deployments", "daemonsets", "statefulsets", "replicasets"], ALL),
        _rule("batch", ["jobs", "cronjobs"], ALL)]),
    _t("secrets-view", "View Secrets", PROJECT, [_rule("", ["secrets"], READ)]),
    _t("secrets-manage", "Manage Secrets", PROJECT, [_rule("", ["secrets"], ALL)]),
    _t("configmaps-view", "View Config Maps", PROJECT, [_rule("", ["configmaps"], READ)]),
    _t("configmaps-manage", "Manage Config Maps", PROJECT, [_rule("", ["configmaps"], ALL)]),
    _t("services-view", "View Services", PROJECT, [_rule("", ["services", "endpoints"], READ)]),
    _t("services-manage", "Manage Services", PROJECT,
       [_rule("", ["services", "endpoints"], ALL)]),
    _t("projectroletemplatebindings-view", "View Project Members", PROJECT,
       [_mgmt(["projectroletemplatebindings"], READ)]),
    _t("projectroletemplatebindings-manage", "Manage Project Members", PROJECT,
       [_mgmt(["projectroletemplatebindings"], ALL)]),
    _t(PROJECT_OWNER, "Project Owner", PROJECT, [],
       [KUBE_PREFIX + "admin", CREATE_NS, "projectroletemplatebindings-manage"],
       description="Everything in the project's namespaces, including its members"),
    _t(PROJECT_MEMBER, "Project Member", PROJECT, [],
       [KUBE_PREFIX + "edit", CREATE_NS, "projectroletemplatebindings-view"],
       description="Read and write workloads in the project's namespaces"),
    _t(READ_ONLY, "Read-only", PROJECT, [], [KUBE_PREFIX + "view"],
       description="Read most objects, no Secrets (bound on a cluster: in every namespace)"),
)

BUILTIN_BY_ID: dict[str, RoleTemplate] = {t.id: t for t in BUILTIN_TEMPLATES}


class TemplateError(ValueError):
    """A role template (or a binding of one) is invalid; the message says why."""


def external_role_name(template: RoleTemplate) -> str:
    """The Kubernetes ClusterRole an external template binds."""
    return template.id.removeprefix(KUBE_PREFIX)


def cluster_role_name(template_id: str) -> str:
    return CLUSTER_ROLE_PREFIX + template_id


def downstream_rules(template: RoleTemplate) -> list[dict[str, Any]]:
    """The rules written downstream: everything not about the server's own API group."""
    out = []
    for rule in template.rules:
        groups = rule.get("apiGroups")
        if groups is not None and list(groups) == [MANAGEMENT_GROUP]:
            continue
        out.append({k: list(v) for k, v in rule.items() if v})  # the API server drops []
    return out


def _rule_allows(rule: dict[str, Any], group: str, resource: str, verb: str) -> bool:
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    verbs = rule.get("verbs") or []
    return (
        ("*" in groups or group in groups)
        and ("*" in resources or resource in resources)
        and ("*" in verbs or verb in verbs)
    )


@dataclass(frozen=True)
class Catalog:
    """Every template (built-in and custom) at one moment, with inheritance resolved."""

    by_id: dict[str, RoleTemplate]

    @classmethod
    def load(cls, store: Store) -> Catalog:
        by_id = dict(BUILTIN_BY_ID)
        for t in store.list_templates():
            by_id.setdefault(t.id, t)  # a custom template never shadows a built-in one
        return cls(by_id)

    def get(self, template_id: str) -> RoleTemplate:
        try:
            return self.by_id[template_id]
        except KeyError:
            raise NotFound(f"role template {template_id!r} not found") from None

    def closure(self, template_id: str) -> list[RoleTemplate]:
        """The template and everything it inherits, each once (unknown ids are skipped: a
        deleted custom template grants nothing)."""
        seen: dict[str, RoleTemplate] = {}
        stack = [(template_id, 0)]
        while stack:
            tid, depth = stack.pop()
            t = self.by_id.get(tid)
            if t is None or tid in seen or depth > MAX_INHERITANCE_DEPTH:
                continue
            seen[tid] = t
            stack.extend((i, depth + 1) for i in t.inherits)
        return list(seen.values())

    def downstream_roles(self, template_id: str) -> tuple[str, ...]:
        """The downstream ClusterRoles a binding of this template binds, sorted."""
        names = set()
        for t in self.closure(template_id):
            if t.external:
                names.add(external_role_name(t))
            elif downstream_rules(t):
                names.add(cluster_role_name(t.id))
        return tuple(sorted(names))

    def cluster_role_object(self, template_id: str) -> dict[str, Any]:
        t = self.get(template_id)
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": cluster_role_name(t.id)},
            "rules": downstream_rules(t),
        }

    def allows(
        self, template_ids: Iterable[str], resource: str, verb: str,
        group: str = MANAGEMENT_GROUP,
    ) -> bool:
        """Whether any of these templates lets its holder ``verb`` ``resource`` of ``group``:
        by default the server's own API; another group asks what the templates grant
        downstream, where binding Kubernetes' ``cluster-admin`` grants everything."""
        for tid in template_ids:
            for t in self.closure(tid):
                if (group != MANAGEMENT_GROUP and t.external
                        and external_role_name(t) == "cluster-admin"):
                    return True
                if any(_rule_allows(r, group, resource, verb) for r in t.rules):
                    return True
        return False

    def validate(self, template: RoleTemplate) -> None:
        """Raise :class:`TemplateError` unless ``template`` may be stored as it is."""
        if not re.fullmatch(TEMPLATE_ID_PATTERN, template.id or "x"):
            raise TemplateError(f"invalid role template id {template.id!r}")
        if template.id in BUILTIN_BY_ID:
            raise TemplateError(f"{template.id!r} is a built-in role template")
        if template.context not in (GLOBAL, CLUSTER, PROJECT):
            raise TemplateError("context must be one of global, cluster, project")
        if template.external:
            raise TemplateError("only built-in templates may be external")
        for rule in template.rules:
            _validate_rule(rule)
        for parent in template.inherits:
            p = self.by_id.get(parent)
            if p is None:
                raise TemplateError(f"inherited role template {parent!r} not found")
            if p.context != template.context:
                raise TemplateError(
                    f"{parent!r} is a {p.context} template; {template.id or 'this'} is "
                    f"{template.context}"
                )
        probe = Catalog({**self.by_id, template.id: template})
        if template.id and any(
            template.id in t.inherits for t in probe.closure(template.id)[1:]
        ):
            raise TemplateError(f"{template.id!r} would inherit itself")

    def bindable(self, template_id: str, scope: str) -> RoleTemplate:
        """The template, if a binding at ``scope`` ("cluster", "project", "global") may use it.
        A project template bound on a cluster applies in every namespace of it."""
        t = self.get(template_id)
        allowed = {GLOBAL: (GLOBAL,), CLUSTER: (CLUSTER, PROJECT), PROJECT: (PROJECT,)}[scope]
        if t.context not in allowed:
            raise TemplateError(f"{t.id!r} is a {t.context} template, not for a {scope} binding")
        if t.locked:
            raise TemplateError(f"role template {t.id!r} is locked: no new bindings")
        return t


RULE_KEYS = {"apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"}


def _validate_rule(rule: Any) -> None:
    if not isinstance(rule, dict):
        raise TemplateError("each rule must be an object")
    unknown = set(rule) - RULE_KEYS
    if unknown:
        raise TemplateError(f"unknown rule field(s): {', '.join(sorted(unknown))}")
    for key in RULE_KEYS & set(rule):
        value = rule[key]
        # "" is the core API group (pods, secrets, configmaps); elsewhere names are non-empty.
        if not isinstance(value, list) or not all(
            isinstance(v, str) and (v or key == "apiGroups") for v in value
        ):
            raise TemplateError(f"rule field {key} must be a list of non-empty strings")
    if not rule.get("verbs"):
        raise TemplateError("each rule needs verbs")
    if "nonResourceURLs" in rule and ("resources" in rule or "apiGroups" in rule):
        raise TemplateError("a rule has either nonResourceURLs or apiGroups and resources")
    if "nonResourceURLs" not in rule and not rule.get("resources"):
        raise TemplateError("each rule needs resources (or nonResourceURLs)")
    if "nonResourceURLs" not in rule and "apiGroups" not in rule:
        raise TemplateError("each resource rule needs apiGroups")
