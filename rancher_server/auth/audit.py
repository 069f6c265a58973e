"""``audit(...)``: record who did what, cheaply (the proxy calls it for every request)."""

from __future__ import annotations

import time

from rancher_server.auth.principal import Principal
from rancher_server.auth.runtime import runtime
from rancher_server.state import ServerState
from rancher_server.store import AuditEntry

AUDIT_FIELD_MAX_CHARS = 512  # a target is a path; query strings are not secrets but are bounded


def entry(
    principal: Principal | None, action: str, target: str, result: str, remote: str | None,
    user_id: str = "",
) -> AuditEntry:
    return AuditEntry(
        ts=time.time(), user_id=principal.user_id if principal else user_id,
        action=action[:AUDIT_FIELD_MAX_CHARS], target=target[:AUDIT_FIELD_MAX_CHARS],
        result=result[:AUDIT_FIELD_MAX_CHARS], remote=(remote or "")[:AUDIT_FIELD_MAX_CHARS],
    )


def audit(
    state: ServerState, principal: Principal | None, action: str, target: str, result: str,
    remote: str | None, user_id: str = "",
) -> None:
    """Queue one entry; written within AUDIT_FLUSH_INTERVAL_S in a batch. Never pass a secret
    (the caller passes a path without credentials; the token id is not a secret). ``user_id``
    names the user when there is no principal (a refused login)."""
    runtime(state).audit.add(entry(principal, action, target, result, remote, user_id))


async def audit_now(
    state: ServerState, principal: Principal | None, action: str, target: str, result: str,
    remote: str | None, user_id: str = "",
) -> None:
    """Written durably before returning (logins, user and token changes)."""
    await runtime(state).audit.write_now(entry(principal, action, target, result, remote, user_id))
