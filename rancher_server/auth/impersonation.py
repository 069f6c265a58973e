"""Who the proxy says a principal is downstream: the groups and extras it impersonates (the
reconciler's impersonation ClusterRoles allow exactly these)."""

from __future__ import annotations

from rancher_server.auth.principal import Principal
from rancher_server.auth.providers.principals import directory_user_provider

AUTHENTICATED_GROUP = "system:authenticated"
EXTRA_PRINCIPAL_ID = "principalid"
EXTRA_USERNAME = "username"
EXTRA_REQUEST_TOKEN_ID = "requesttokenid"


def impersonation_groups(principal: Principal) -> list[str]:
    groups = [g for g in principal.groups if g]
    if AUTHENTICATED_GROUP not in groups:
        groups.append(AUTHENTICATED_GROUP)
    return groups


def principal_id(principal: Principal) -> str:
    """``local://<user id>``, or a directory user's principal id (its username)."""
    if directory_user_provider(principal.username) is not None:
        return principal.username
    return f"local://{principal.user_id}"


def principal_extras(principal: Principal) -> dict[str, str]:
    return {
        EXTRA_PRINCIPAL_ID: principal_id(principal),
        EXTRA_USERNAME: principal.username,
        EXTRA_REQUEST_TOKEN_ID: principal.token_id,
    }
