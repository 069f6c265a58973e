"""Authentication of users: bearer tokens, the principal a request acts as, cluster access.

What the authentication proxy uses:

- :func:`authenticate_bearer` (``Authorization`` header -> :class:`Principal` or None),
- :func:`cluster_role` (-> "cluster-owner" | "cluster-member" | "read-only" | None),
- :func:`audit` (queue an audit entry; cheap),
- :func:`unauthorized` / :func:`error_response` (Rancher-shaped JSON error answers).
"""

from __future__ import annotations

from rancher_server.auth.audit import audit, audit_now
from rancher_server.auth.http import error_response, require_principal, unauthorized
from rancher_server.auth.principal import Principal
from rancher_server.auth.roles import (
    DOWNSTREAM_CLUSTER_ROLE,
    ROLES,
    cluster_role,
    cluster_roles,
)
from rancher_server.auth.runtime import close_runtime
from rancher_server.auth.tokens import authenticate_bearer, issue_token

__all__ = [
    "DOWNSTREAM_CLUSTER_ROLE",
    "ROLES",
    "Principal",
    "audit",
    "audit_now",
    "authenticate_bearer",
    "close_runtime",
    "cluster_role",
    "cluster_roles",
    "error_response",
    "issue_token",
    "require_principal",
    "unauthorized",
]
