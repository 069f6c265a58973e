"""Bearer tokens: ``token-xxxxx:<secret>``. Issued with a TTL, stored as a salted hash of the
secret, checked on every request against the store (no cache: a revoked or expired token, or a
disabled user, is refused on the very next request)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from rancher_server.auth.constants import MAX_BEARER_BYTES
from rancher_server.auth.global_roles import global_roles_of
from rancher_server.auth.passwords import hash_token_secret, new_token_secret, verify_token_secret
from rancher_server.auth.principal import Principal
from rancher_server.auth.runtime import runtime
from rancher_server.state import ServerState
from rancher_server.store import ApiToken, StorageUnavailable, Store, User
from rancher_tunnel.logs import get_logger

log = get_logger(component="auth")
BEARER_RE = re.compile(r"^[Bb]earer +(token-[a-z0-9]{1,32}):([A-Za-z0-9]{20,128})$")


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    bearer: str  # "token-xxxxx:<secret>": shown to the caller once, never stored or logged


def issue_token(
    store: Store, user: User, *, kind: str, description: str, ttl_s: float | None
) -> IssuedToken:
    """A new token for ``user`` (``ttl_s`` None: no expiry). Blocking: one durable write."""
    secret = new_token_secret()
    expires_at = None if ttl_s is None else time.time() + ttl_s
    tok = store.create_token(
        user.id, hash_token_secret(secret), kind=kind, description=description,
        expires_at=expires_at,
    )
    return IssuedToken(tok, f"{tok.id}:{secret}")


def parse_bearer(authorization: str | None) -> tuple[str, str] | None:
    """(token id, secret) from an ``Authorization: Bearer token-xxxxx:secret`` value."""
    if not authorization or len(authorization) > MAX_BEARER_BYTES:
        return None
    m = BEARER_RE.match(authorization.strip())
    return (m.group(1), m.group(2)) if m else None


def token_usable(tok: ApiToken, user: User, now: float) -> str | None:
    """Why the token may not be used (None: it may)."""
    if not tok.enabled:
        return "token disabled"
    if tok.expires_at is not None and now >= tok.expires_at:
        return "token expired"
    if not user.enabled:
        return "user disabled"
    return None


def token_still_usable(store: Store, token_id: str, now: float) -> str | None:
    """Why an already-accepted token may no longer be used (None: it may): what long-lived
    requests (proxied watches, live feeds) re-check while they stay open."""
    try:
        found = store.token_with_user(token_id)
    except StorageUnavailable:  # etcd away too long: nothing says the token is still good
        return "the store cannot confirm the token now"
    if found is None:
        return "token revoked"
    return token_usable(*found, now)


def principal_of(store: Store, tok: ApiToken, user: User) -> Principal:
    """The principal with its global roles (cached reads: until the store's next commit)."""
    roles, admin = global_roles_of(store, user)
    return Principal(
        user_id=user.id, username=user.username, display_name=user.display_name or user.username,
        groups=user.groups, token_id=tok.id, is_admin=admin, global_roles=roles,
    )


async def authenticate_bearer(state: ServerState, authorization: str | None) -> Principal | None:
    """The principal of a valid, unexpired token of an enabled user; None otherwise.

    A few cached SQLite reads and one SHA-256 per call (tens of microseconds), done on the loop: a
    thread hop would cost more than the read."""
    parsed = parse_bearer(authorization)
    if parsed is None:
        return None
    token_id, secret = parsed
    found = state.store.token_with_user(token_id)
    if found is None:
        log.debug("unknown token", token_id=token_id)
        return None
    tok, user = found
    if not verify_token_secret(secret, tok.secret_hash):
        log.debug("token secret mismatch", token_id=token_id)
        return None
    now = time.time()
    reason = token_usable(tok, user, now)
    if reason is not None:
        log.debug("token refused", token_id=token_id, reason=reason)
        return None
    runtime(state).audit.token_used(tok.id, now)
    return principal_of(state.store, tok, user)
