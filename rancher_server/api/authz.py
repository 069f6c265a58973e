"""Authorization of REST calls from role templates (Rancher's model): what a caller may do is
what their templates' rules on the API group ``management.cattle.io`` allow, either globally
(global roles: ``admin``, ``user``, ``user-base``, ...) or on one cluster or project (cluster and
project role template bindings). A refusal says what was missing."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from rancher_server.access.roles import access_of
from rancher_server.access.templates import MANAGEMENT_GROUP, Catalog
from rancher_server.auth.http import ApiError
from rancher_server.auth.principal import Principal
from rancher_server.state import ServerState
from rancher_server.store import Store


@dataclass
class _Cached:
    revision: int
    catalog: Catalog


_CATALOGS: weakref.WeakKeyDictionary[Store, _Cached] = weakref.WeakKeyDictionary()


def catalog(state: ServerState) -> Catalog:
    """Every template (built-in and custom), rebuilt only after the store changed."""
    store = state.store
    revision = store.revision
    cached = _CATALOGS.get(store)
    if cached is None or cached.revision != revision:
        cached = _Cached(revision, Catalog.load(store))
        _CATALOGS[store] = cached
    return cached.catalog


def _roles(roles: tuple[str, ...]) -> str:
    return ", ".join(roles) or "none"


def allowed_globally(state: ServerState, p: Principal, resource: str, verb: str) -> bool:
    return catalog(state).allows(p.global_roles, resource, verb)


def require_global(state: ServerState, p: Principal, resource: str, verb: str) -> None:
    """403 unless a global role of the caller allows ``verb`` on ``resource``."""
    if not allowed_globally(state, p, resource, verb):
        raise ApiError(403, f"forbidden: {verb} {resource} ({MANAGEMENT_GROUP}) needs a global "
                            f"role that allows it; your global roles: {_roles(p.global_roles)}")


def allowed_on(
    state: ServerState, p: Principal, cluster_id: str, resource: str, verb: str,
    project_id: str = "",
) -> bool:
    """Whether the caller may ``verb`` ``resource`` on this cluster (``project_id``: in that
    project): a global role, a cluster template or a template of that project allows it."""
    if allowed_globally(state, p, resource, verb):
        return True
    return access_of(state.store, p, cluster_id).allows(
        catalog(state), resource, verb, project_id)


def require_on(
    state: ServerState, p: Principal, cluster_id: str, resource: str, verb: str,
    project_id: str = "",
) -> None:
    """403 unless :func:`allowed_on`; the message names what is missing and where."""
    if allowed_on(state, p, cluster_id, resource, verb, project_id):
        return
    where = f"project {cluster_id}:{project_id}" if project_id else f"cluster {cluster_id}"
    acc = access_of(state.store, p, cluster_id)
    held = list(acc.cluster_templates) + list(acc.project_templates.get(project_id, ()))
    raise ApiError(403, f"forbidden: {verb} {resource} ({MANAGEMENT_GROUP}) in {where} needs a "
                        f"role template that allows it; yours there: {_roles(tuple(held))}")


# Kubernetes' own roles, each with the roles it includes (for the downstream escalation check).
K8S_IMPLIED = {"admin": ("edit", "view"), "edit": ("view",)}
K8S_CLUSTER_ADMIN = "cluster-admin"
K8S_NAMESPACE_ADMIN = "admin"


def _management(rule: dict[str, object]) -> bool:
    groups = rule.get("apiGroups") or ()
    return isinstance(groups, list | tuple) and (MANAGEMENT_GROUP in groups or "*" in groups)


def _downstream_escalation(
    state: ServerState, p: Principal, template_id: str, cluster_id: str, project_id: str,
) -> str | None:
    cat = catalog(state)
    wanted = set(cat.downstream_roles(template_id))
    if not wanted or p.is_admin:
        return None
    acc = access_of(state.store, p, cluster_id)
    held: set[str] = set()
    for tid in (*acc.cluster_templates, *acc.project_templates.get(project_id, ())):
        held.update(cat.downstream_roles(tid))
    if K8S_CLUSTER_ADMIN in held:
        return None
    if K8S_NAMESPACE_ADMIN in held and project_id and cat.get(template_id).context == "project":
        return None  # Kubernetes' admin holds every namespaced right in the project
    for role in list(held):
        held.update(K8S_IMPLIED.get(role, ()))
    missing = sorted(wanted - held)
    if missing:
        return (f"{template_id!r} binds {', '.join(missing)} downstream, which you do not hold "
                "there: one may grant only what one holds")
    return None


def escalation(
    state: ServerState, p: Principal, template_id: str, cluster_id: str = "",
    project_id: str = "",
) -> str | None:
    """Why the caller may not grant ``template_id`` (None: they may): one may grant only what one
    holds oneself (Kubernetes' ``escalate``/``bind`` rule, as Rancher keeps it), both on the
    server's API group and downstream; non-resource URLs only an administrator grants."""
    for t in catalog(state).closure(template_id):
        for rule in t.rules:
            if "nonResourceURLs" in rule and not p.is_admin:
                return f"{template_id!r} grants non-resource URLs: only administrators grant it"
            if not _management(rule):
                continue
            for resource in rule.get("resources") or ():
                for verb in rule.get("verbs") or ():
                    held = (allowed_on(state, p, cluster_id, resource, verb, project_id)
                            if cluster_id else allowed_globally(state, p, resource, verb))
                    if not held:
                        return (f"{template_id!r} allows {verb} {resource}, which you do not "
                                "hold: one may grant only what one holds")
    if cluster_id:
        return _downstream_escalation(state, p, template_id, cluster_id, project_id)
    return None


def require_no_escalation(
    state: ServerState, p: Principal, template_id: str, cluster_id: str = "",
    project_id: str = "",
) -> None:
    why = escalation(state, p, template_id, cluster_id, project_id)
    if why is not None:
        raise ApiError(403, f"forbidden: {why}")
