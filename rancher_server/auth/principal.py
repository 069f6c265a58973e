"""Who a request acts as (re-exported as ``rancher_server.auth.Principal``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who a request acts as, after its bearer token was checked."""

    user_id: str  # e.g. "u-abc12"
    username: str
    display_name: str
    groups: tuple[str, ...]
    token_id: str  # e.g. "token-abcde"
    is_admin: bool  # the global roles' inheritance closure includes the template "admin"
    global_roles: tuple[str, ...] = ()  # the global role templates bound to the user or a group
