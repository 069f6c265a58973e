"""What a principal may do on a cluster and in its projects, from the role templates bound to
them (see :mod:`rancher_server.access.templates`). A global admin is ``cluster-owner`` of every
cluster. Every answer is a few indexed, cached store reads: nothing is remembered here, so a
removed binding is refused on the very next request."""

from __future__ import annotations

from dataclasses import dataclass

from rancher_server.access.templates import (
    CLUSTER_MEMBER,
    CLUSTER_OWNER,
    PROJECT_MEMBER,
    PROJECT_OWNER,
    READ_ONLY,
    Catalog,
)
from rancher_server.auth.principal import Principal
from rancher_server.state import ServerState
from rancher_server.store import Binding, Store

__all__ = [
    "CLUSTER_MEMBER", "CLUSTER_OWNER", "ROLE_RANK", "Access", "access_of", "cluster_role",
    "cluster_roles", "strongest",
]

# For a one-word summary of a principal's access (the API's ``myRole``): strongest first.
ROLE_RANK = {
    CLUSTER_OWNER: 6, CLUSTER_MEMBER: 5, PROJECT_OWNER: 4, PROJECT_MEMBER: 3, READ_ONLY: 2,
}


@dataclass(frozen=True)
class Access:
    """A principal's bindings on one cluster: cluster-wide templates and, per project, the
    project templates."""

    cluster_templates: tuple[str, ...]
    project_templates: dict[str, tuple[str, ...]]

    @property
    def any(self) -> bool:
        return bool(self.cluster_templates or self.project_templates)

    def allows(self, catalog: Catalog, resource: str, verb: str, project_id: str = "") -> bool:
        """Whether the templates let the holder ``verb`` the server's ``resource`` on this
        cluster (``project_id``: in that project; cluster templates count there too)."""
        ids = list(self.cluster_templates)
        if project_id:
            ids += self.project_templates.get(project_id, ())
        return catalog.allows(ids, resource, verb)


def strongest(roles: list[str]) -> str | None:
    """The strongest known role of ``roles`` (else the first one; None for none)."""
    if not roles:
        return None
    return max(roles, key=lambda r: ROLE_RANK.get(r, 0))


def _access(bindings: list[Binding]) -> Access:
    cluster: list[str] = []
    projects: dict[str, list[str]] = {}
    for b in bindings:
        if b.project_id is None:
            cluster.append(b.role)
        else:
            projects.setdefault(b.project_id, []).append(b.role)
    return Access(tuple(cluster), {p: tuple(r) for p, r in projects.items()})


def access_of(store: Store, principal: Principal, cluster_id: str) -> Access:
    if principal.is_admin:
        return Access((CLUSTER_OWNER,), {})
    return _access(store.bindings_for(principal.user_id, principal.groups, cluster_id))


def cluster_role(state: ServerState, principal: Principal, cluster_id: str) -> str | None:
    """A one-word summary of the principal's access to the cluster: the strongest template
    bound (cluster or project bindings); None: no access at all."""
    acc = access_of(state.store, principal, cluster_id)
    roles = list(acc.cluster_templates)
    for ts in acc.project_templates.values():
        roles += ts
    return strongest(roles)


def cluster_roles(state: ServerState, principal: Principal) -> dict[str, str]:
    """Every cluster the principal may use, with the summary of their access there."""
    if principal.is_admin:
        return {c.id: CLUSTER_OWNER for c in state.store.list_clusters()}
    out: dict[str, list[str]] = {}
    for b in state.store.bindings_for(principal.user_id, principal.groups):
        out.setdefault(b.cluster_id, []).append(b.role)
    return {cid: r for cid, roles in out.items() if (r := strongest(roles)) is not None}
