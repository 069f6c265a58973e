"""Waiting for a condition in the kube-api-auth tests: poll until it holds, fail after a bound."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def until(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float, poll_s: float
) -> float:
    """Poll ``check`` (plain or async) every ``poll_s`` until it holds; the seconds that took.
    AssertionError when it does not hold within ``timeout_s``."""
    started = time.monotonic()
    while not await _holds(check):
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(poll_s)
    return time.monotonic() - started


async def _holds(check: Callable[[], bool | Awaitable[bool]]) -> bool:
    result = check()
    return bool(await result) if inspect.isawaitable(result) else bool(result)
