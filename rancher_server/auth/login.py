"""Checking a username and password: throttled per (source address, username) and per source
address, so the source that fails is slowed down then refused while the account stays open to
everyone else; a per-account ceiling tightens that for a distributed guess. Constant work for
unknown usernames, the scrypt verify off the event loop and bounded in concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import math
from dataclasses import dataclass

from rancher_server.auth.constants import (
    LOGIN_ACCOUNT_CEILING_FAILURES,
    LOGIN_ADDRESS_SLOWDOWN_AFTER_FAILURES,
    LOGIN_LOCKOUT_MAX_S,
    LOGIN_SLOWDOWN_MAX_S,
    LOGIN_SLOWDOWN_STEP_S,
    LOGIN_USER_SLOWDOWN_AFTER_FAILURES,
)
from rancher_server.auth.passwords import dummy_hash, verify_password_async
from rancher_server.auth.runtime import runtime
from rancher_server.state import ServerState
from rancher_server.store import SQLiteStore, User

RESULT_OK = "success"
RESULT_FAILED = "failure"
RESULT_THROTTLED = "throttled"
USERNAME_HASH_CHARS = 16  # of the SHA-256 logged for a username that names no user
RESULT_DISABLED = "disabled"  # right password, disabled user (the client sees the generic 401)


@dataclass(frozen=True)
class LoginOutcome:
    result: str
    user: User | None = None
    retry_after_s: int = 0


def loggable_username(username: str, user: User | None) -> str:
    """What a log line or audit entry may say about a typed username: the name if it names an
    existing user, else a hash (someone may have typed their password into the username field)."""
    if user is not None and user.username == username:
        return username
    return "sha256:" + hashlib.sha256(username.encode()).hexdigest()[:USERNAME_HASH_CHARS]


def _pair(username: str, remote: str) -> str:
    return f"{remote} {username}"


def _retry_after_sync(state: ServerState, username: str, remote: str) -> float:
    rt = runtime(state)
    return max(rt.by_user.retry_after(_pair(username, remote)), rt.by_address.retry_after(remote))


def _local_reads(state: ServerState) -> bool:
    """Whether reading a throttle record is a local read: SQLite's are a few microseconds (two
    indexed SELECTs on the reader connection, as the bearer check does on the loop for every
    request), less than the thread hop (submit, wake-ups, GIL hand-offs) that would carry them.
    etcd's are a network round trip: those stay off the event loop."""
    return isinstance(state.store, SQLiteStore)


async def _retry_after(state: ServerState, username: str, remote: str) -> float:
    """The throttles' records are in the store: read on the loop when that is a local read,
    else (etcd: a round trip) off the event loop."""
    if _local_reads(state):
        return _retry_after_sync(state, username, remote)
    return await asyncio.to_thread(_retry_after_sync, state, username, remote)


def slowdown_s(pair_failures: int, address_failures: int) -> float:
    """How long a failed answer waits, from the failures its source has made."""
    excess = max(
        pair_failures - LOGIN_USER_SLOWDOWN_AFTER_FAILURES + 1,
        address_failures - LOGIN_ADDRESS_SLOWDOWN_AFTER_FAILURES + 1,
        0,
    )
    return min(LOGIN_SLOWDOWN_MAX_S, excess * LOGIN_SLOWDOWN_STEP_S)


def _record_failure_sync(state: ServerState, username: str, remote: str) -> float:
    rt = runtime(state)
    pair = _pair(username, remote)
    pair_failures = rt.by_user.failure(pair)
    address_failures = rt.by_address.failure(remote)
    if rt.by_account.failure(username) > LOGIN_ACCOUNT_CEILING_FAILURES:
        rt.by_user.lock(pair, LOGIN_LOCKOUT_MAX_S)
    return slowdown_s(pair_failures, address_failures)


async def _record_failure(state: ServerState, username: str, remote: str) -> float:
    """Count a failure (in the store, seen by every replica); the slowdown its answer gets."""
    return await asyncio.to_thread(_record_failure_sync, state, username, remote)


async def _record_success(state: ServerState, username: str, remote: str) -> None:
    """Forgive the pair's failures. Nearly every success has none: with a local store that is
    one read on the loop and no thread hop; a record to clear (a write) goes off the loop."""
    throttle, pair = runtime(state).by_user, _pair(username, remote)
    if _local_reads(state) and not throttle.has_record(pair):
        return
    await asyncio.to_thread(throttle.success, pair)


async def check_credentials(
    state: ServerState, username: str, password: str, remote: str
) -> LoginOutcome:
    rt = runtime(state)
    wait = await _retry_after(state, username, remote)
    if wait > 0:
        return LoginOutcome(RESULT_THROTTLED, retry_after_s=math.ceil(wait))
    async with rt.hash_slots:
        # Re-check: failures recorded while this attempt queued for a hash slot count too.
        wait = await _retry_after(state, username, remote)
        if wait > 0:
            return LoginOutcome(RESULT_THROTTLED, retry_after_s=math.ceil(wait))
        user = state.store.user_by_username(username)
        encoded = user.password_hash if user is not None else await asyncio.to_thread(dummy_hash)
        ok = await verify_password_async(password, encoded)
        # Recorded before the slot goes: the next attempt's re-check must see this failure
        # (recorded after, a store round trip let two more guesses through per slot).
        delay = await _record_failure(state, username, remote) if user is None or not ok else 0.0
    if user is None or not ok:
        if delay > 0:
            await asyncio.sleep(delay)  # slows the failing source; holds no hash slot
        return LoginOutcome(RESULT_FAILED, user=user)  # the user (if any) only for the audit
    if not user.enabled:
        return LoginOutcome(RESULT_DISABLED, user=user)
    await _record_success(state, username, remote)
    return LoginOutcome(RESULT_OK, user=user)


# For other login paths (the directory providers): the same throttles, keyed the same way.
async def login_retry_after(state: ServerState, username: str, remote: str) -> float:
    """Seconds this (source, username) must wait before another attempt (0.0: now)."""
    return await _retry_after(state, username, remote)


async def record_login_failure(state: ServerState, username: str, remote: str) -> float:
    """Count a failed attempt; the slowdown its answer gets."""
    return await _record_failure(state, username, remote)


async def record_login_success(state: ServerState, username: str, remote: str) -> None:
    await _record_success(state, username, remote)
