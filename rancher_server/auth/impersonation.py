"""Who the proxy says a principal is downstream: the groups and extras it impersonates (the
reconciler's impersonation ClusterRoles allow exactly these)."""

from __future__ import annotations

from rancher_server.auth.principal import Principal

AUTHENTICATED_GROUP = "system:authenticated"
EXTRA_PRINCIPAL_ID = "principalid"
EXTRA_USERNAME = "username"
EXTRA_REQUEST_TOKEN_ID = "requesttokenid"


def impersonation_groups(principal: Principal) -> list[str]:
    groups = [g for g in principal.groups if g]
    if AUTHENTICATED_GROUP not in groups:
        groups.append(AUTHENTICATED_GROUP)
    return groups


def principal_extras(principal: Principal) -> dict[str, str]:
    return {
        EXTRA_PRINCIPAL_ID: f"local://{principal.user_id}",
        EXTRA_USERNAME: principal.username,
        EXTRA_REQUEST_TOKEN_ID: principal.token_id,
    }
