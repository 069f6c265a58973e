"""Cluster roles and how each maps to the downstream cluster's RBAC.

==================  =============================  ==========================================
role                downstream ClusterRole         meaning
==================  =============================  ==========================================
``cluster-owner``   ``cluster-admin``              everything in the cluster, incl. RBAC
``cluster-member``  ``edit``                       read/write workloads, no RBAC or quotas
``read-only``       ``view``                       read most objects, no Secrets
==================  =============================  ==========================================

The server's impersonation code binds the impersonated user (or group) to that ClusterRole
downstream. A global admin is ``cluster-owner`` of every cluster.
"""

from __future__ import annotations

from rancher_server.auth.principal import Principal
from rancher_server.policy import (
    CLUSTER_MEMBER,
    CLUSTER_OWNER,
    DOWNSTREAM_CLUSTER_ROLE,
    READ_ONLY,
    ROLE_RANK,
    ROLES,
)
from rancher_server.state import ServerState

__all__ = [
    "CLUSTER_MEMBER", "CLUSTER_OWNER", "DOWNSTREAM_CLUSTER_ROLE", "READ_ONLY", "ROLES",
    "ROLE_RANK", "cluster_role", "cluster_roles", "strongest",
]


def strongest(roles: list[str]) -> str | None:
    return max(roles, key=ROLE_RANK.__getitem__) if roles else None


def cluster_role(state: ServerState, principal: Principal, cluster_id: str) -> str | None:
    """The principal's role on the cluster: admin -> cluster-owner; else the strongest of the
    bindings of the user and of its groups; None: no access. One indexed read, no cache."""
    if principal.is_admin:
        return CLUSTER_OWNER
    bindings = state.store.bindings_for(principal.user_id, principal.groups, cluster_id)
    return strongest([b.role for b in bindings])


def cluster_roles(state: ServerState, principal: Principal) -> dict[str, str]:
    """Every cluster the principal may use, with its role there."""
    if principal.is_admin:
        return {c.id: CLUSTER_OWNER for c in state.store.list_clusters()}
    out: dict[str, list[str]] = {}
    for b in state.store.bindings_for(principal.user_id, principal.groups):
        out.setdefault(b.cluster_id, []).append(b.role)
    return {cid: r for cid, roles in out.items() if (r := strongest(roles)) is not None}
