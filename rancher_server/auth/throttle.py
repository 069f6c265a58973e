"""Failed-login throttling: exponential lockout per key (a source address, or a (source, username)
pair), and a plain failure count (per account). ``rancher_server.auth.login`` says which keys."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Record:
    failures: int
    last_failure: float
    locked_until: float


class LoginThrottle:
    """``free_failures`` failures are free; then every failure locks the key for
    ``base_s * 2**(failures - free_failures)`` seconds, at most ``max_s``. A key whose last failure
    is older than ``window_s`` starts over. At most ``max_keys`` keys are tracked (the oldest
    are dropped)."""

    def __init__(
        self, free_failures: int, base_s: float, max_s: float, window_s: float, max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._free = free_failures
        self._base_s = base_s
        self._max_s = max_s
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0.0: now)."""
        rec = self._records.get(key)
        if rec is None:
            return 0.0
        now = self._clock()
        if now - rec.last_failure > self._window_s and now >= rec.locked_until:
            del self._records[key]
            return 0.0
        return max(0.0, rec.locked_until - now)

    def failures(self, key: str) -> int:
        """Failures of ``key`` within the window (0 once forgotten)."""
        rec = self._records.get(key)
        if rec is None:
            return 0
        now = self._clock()
        if now - rec.last_failure > self._window_s and now >= rec.locked_until:
            return 0
        return rec.failures

    def lock(self, key: str, seconds: float) -> None:
        """Lock ``key`` for at least ``seconds`` (it must have a record: call after failure)."""
        rec = self._records.get(key)
        if rec is not None:
            rec.locked_until = max(rec.locked_until, self._clock() + seconds)

    def failure(self, key: str) -> None:
        now = self._clock()
        rec = self._records.pop(key, None)
        if rec is None or (now - rec.last_failure > self._window_s and now >= rec.locked_until):
            rec = _Record(0, now, 0.0)
        rec.failures += 1
        rec.last_failure = now
        if rec.failures >= self._free:
            delay = min(self._max_s, self._base_s * 2 ** (rec.failures - self._free))
            rec.locked_until = now + delay
        self._records[key] = rec
        while len(self._records) > self._max_keys:
            self._records.popitem(last=False)

    def success(self, key: str) -> None:
        self._records.pop(key, None)
