"""Per-server authentication state: the login throttles (their records in the store) and the
audit writer. Kept beside :class:`ServerState` (keyed by its identity, dropped with it) so that
``state.py`` needs no field for it."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

from rancher_server.auth.auditlog import AuditWriter
from rancher_server.auth.constants import (
    LOGIN_ACCOUNT_CEILING_FAILURES,
    LOGIN_ADDRESS_FREE_FAILURES,
    LOGIN_FAILURE_WINDOW_S,
    LOGIN_LOCKOUT_BASE_S,
    LOGIN_LOCKOUT_MAX_S,
    LOGIN_MAX_CONCURRENT_HASHES,
    LOGIN_THROTTLE_MAX_KEYS,
    LOGIN_USER_FREE_FAILURES,
)
from rancher_server.auth.throttle import FailureRecords, LoginThrottle
from rancher_server.state import ServerState


def _throttle(free_failures: int, records: FailureRecords, scope: str) -> LoginThrottle:
    return LoginThrottle(
        free_failures, LOGIN_LOCKOUT_BASE_S, LOGIN_LOCKOUT_MAX_S, LOGIN_FAILURE_WINDOW_S,
        LOGIN_THROTTLE_MAX_KEYS, records=records, scope=scope,
    )


@dataclass
class AuthRuntime:
    audit: AuditWriter
    # The throttles' records are in the store: every replica counts the same failures.
    # Keyed by "<source address> <username>": the pair that fails is locked, not the account.
    by_user: LoginThrottle
    by_address: LoginThrottle
    # Per account over all sources: only counted (its lockouts are never consulted).
    by_account: LoginThrottle
    _hash_slots: asyncio.Semaphore | None = None

    @property
    def hash_slots(self) -> asyncio.Semaphore:
        """Bounds concurrent password hashes (created lazily, inside the running loop)."""
        if self._hash_slots is None:
            self._hash_slots = asyncio.Semaphore(LOGIN_MAX_CONCURRENT_HASHES)
        return self._hash_slots


_RUNTIMES: dict[int, AuthRuntime] = {}


def runtime(state: ServerState) -> AuthRuntime:
    key = id(state)
    rt = _RUNTIMES.get(key)
    if rt is None:
        store = state.store
        rt = AuthRuntime(
            audit=AuditWriter(store),
            by_user=_throttle(LOGIN_USER_FREE_FAILURES, store, "pair"),
            by_address=_throttle(LOGIN_ADDRESS_FREE_FAILURES, store, "address"),
            by_account=_throttle(LOGIN_ACCOUNT_CEILING_FAILURES + 1, store, "account"),
        )
        _RUNTIMES[key] = rt
        weakref.finalize(state, _RUNTIMES.pop, key, None)
    return rt


async def close_runtime(state: ServerState) -> None:
    """Flush the audit log and stop its writer (the app's on_shutdown calls this)."""
    rt = _RUNTIMES.get(id(state))
    if rt is not None:
        await rt.audit.close()
