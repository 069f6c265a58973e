"""Checking a username and password: throttled per username and per address, constant work for
unknown usernames, the scrypt verify off the event loop and bounded in concurrency."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from rancher_server.auth.passwords import dummy_hash, verify_password_async
from rancher_server.auth.runtime import runtime
from rancher_server.state import ServerState
from rancher_server.store import User

RESULT_OK = "success"
RESULT_FAILED = "failure"
RESULT_THROTTLED = "throttled"
RESULT_DISABLED = "disabled"  # right password, disabled user (the client sees the generic 401)


@dataclass(frozen=True)
class LoginOutcome:
    result: str
    user: User | None = None
    retry_after_s: int = 0


def _retry_after(state: ServerState, username: str, remote: str) -> float:
    rt = runtime(state)
    return max(rt.by_user.retry_after(username), rt.by_address.retry_after(remote))


async def check_credentials(
    state: ServerState, username: str, password: str, remote: str
) -> LoginOutcome:
    rt = runtime(state)
    wait = _retry_after(state, username, remote)
    if wait > 0:
        return LoginOutcome(RESULT_THROTTLED, retry_after_s=math.ceil(wait))
    async with rt.hash_slots:
        # Re-check: failures recorded while this attempt queued for a hash slot count too.
        wait = _retry_after(state, username, remote)
        if wait > 0:
            return LoginOutcome(RESULT_THROTTLED, retry_after_s=math.ceil(wait))
        user = state.store.user_by_username(username)
        encoded = user.password_hash if user is not None else await asyncio.to_thread(dummy_hash)
        ok = await verify_password_async(password, encoded)
    if user is None or not ok:
        rt.by_user.failure(username)
        rt.by_address.failure(remote)
        return LoginOutcome(RESULT_FAILED, user=user)  # the user (if any) only for the audit
    if not user.enabled:
        return LoginOutcome(RESULT_DISABLED, user=user)
    rt.by_user.success(username)
    return LoginOutcome(RESULT_OK, user=user)
