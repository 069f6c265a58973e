"""Failed-login throttling: exponential lockout per key (a source address, or a (source, username)
pair), and a plain failure count (per account). ``rancher_server.auth.login`` says which keys.

The records live in the store (``Store.update_login_failure``), so every replica behind one
address counts the same failures: three replicas do not give an attacker three times the
guesses. Each record is updated atomically (etcd: a transaction that holds only if the record is
as read). Times are wall-clock seconds, comparable between replicas (their clocks are assumed
in step to well under a lockout's second). Keys are stored hashed (a username field may hold a
password typed by mistake). Without a store the records are an in-process LRU (unit tests)."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rancher_server.store.base import LoginFailures

KEY_DIGEST_CHARS = 32


@dataclass(frozen=True)
class ThrottlePolicy:
    """``free_failures`` failures are free; then every failure locks the key for
    ``base_s * 2**(failures - free_failures)`` seconds, at most ``max_s``. A key whose last failure
    is older than ``window_s`` (and is not locked) starts over."""

    free_failures: int
    base_s: float
    max_s: float
    window_s: float

    def forgotten(self, rec: LoginFailures, now: float) -> bool:
        return now - rec.last_failure > self.window_s and now >= rec.locked_until

    def current(self, rec: LoginFailures | None, now: float) -> LoginFailures | None:
        return None if rec is None or self.forgotten(rec, now) else rec

    def expires(self, last_failure: float, locked_until: float) -> float:
        return max(last_failure + self.window_s, locked_until)

    def after_failure(self, rec: LoginFailures | None, now: float) -> LoginFailures:
        prev = self.current(rec, now)
        failures = 1 if prev is None else prev.failures + 1
        locked_until = 0.0 if prev is None else prev.locked_until
        if failures >= self.free_failures:
            locked_until = now + min(self.max_s, self.base_s * 2 ** (failures - self.free_failures))
        return LoginFailures(failures, now, locked_until, self.expires(now, locked_until))

    def locked(self, rec: LoginFailures | None, until: float) -> LoginFailures | None:
        if rec is None:
            return None
        locked_until = max(rec.locked_until, until)
        return LoginFailures(rec.failures, rec.last_failure, locked_until,
                             self.expires(rec.last_failure, locked_until))


class FailureRecords(Protocol):
    """What the throttle needs of the store (``Store`` has these methods)."""

    def login_failure(self, key: str) -> LoginFailures | None: ...

    def update_login_failure(
        self, key: str, change: Callable[[LoginFailures | None], LoginFailures | None]
    ) -> LoginFailures | None: ...

    def clear_login_failure(self, key: str) -> None: ...


class MemoryRecords:
    """In this process only: at most ``max_keys`` records (the least recently failed go)."""

    def __init__(self, max_keys: int) -> None:
        self._max_keys = max_keys
        self._records: OrderedDict[str, LoginFailures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def login_failure(self, key: str) -> LoginFailures | None:
        return self._records.get(key)

    def update_login_failure(
        self, key: str, change: Callable[[LoginFailures | None], LoginFailures | None]
    ) -> LoginFailures | None:
        new = change(self._records.get(key))
        if new is None:
            self._records.pop(key, None)
            return None
        if key in self._records and new.last_failure == self._records[key].last_failure:
            self._records[key] = new  # a lock: no new failure, the LRU order stays
        else:
            self._records.pop(key, None)
            self._records[key] = new
        while len(self._records) > self._max_keys:
            self._records.popitem(last=False)
        return new

    def clear_login_failure(self, key: str) -> None:
        self._records.pop(key, None)


class LoginThrottle:
    """One throttle (``scope`` names it in the store) over ``records``: the store, shared by
    every replica, or (None) an LRU of ``max_keys`` records in this process. Every method is one
    or two store calls: with etcd, call them off the event loop."""

    def __init__(
        self, free_failures: int, base_s: float, max_s: float, window_s: float, max_keys: int,
        clock: Callable[[], float] = time.time, records: FailureRecords | None = None,
        scope: str = "",
    ) -> None:
        self.policy = ThrottlePolicy(free_failures, base_s, max_s, window_s)
        self._clock = clock
        self._memory: MemoryRecords | None = None
        if records is None:
            self._memory = records = MemoryRecords(max_keys)
        self._records: FailureRecords = records
        self._scope = scope

    def __len__(self) -> int:
        """Records kept in this process (0 when they are in the store)."""
        return 0 if self._memory is None else len(self._memory)

    def _key(self, key: str) -> str:
        digest = hashlib.sha256(f"{self._scope}\0{key}".encode()).hexdigest()[:KEY_DIGEST_CHARS]
        return f"{self._scope}/{digest}" if self._scope else digest

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0.0: now)."""
        now = self._clock()
        rec = self.policy.current(self._records.login_failure(self._key(key)), now)
        return 0.0 if rec is None else max(0.0, rec.locked_until - now)

    def failures(self, key: str) -> int:
        """Failures of ``key`` within the window (0 once forgotten)."""
        rec = self.policy.current(self._records.login_failure(self._key(key)), self._clock())
        return 0 if rec is None else rec.failures

    def lock(self, key: str, seconds: float) -> None:
        """Lock ``key`` for at least ``seconds`` (it must have a record: call after failure)."""
        until = self._clock() + seconds
        self._records.update_login_failure(self._key(key),
                                           lambda rec: self.policy.locked(rec, until))

    def failure(self, key: str) -> int:
        """Count a failure of ``key``; its failures within the window, this one included."""
        now = self._clock()
        rec = self._records.update_login_failure(
            self._key(key), lambda rec: self.policy.after_failure(rec, now))
        return 0 if rec is None else rec.failures

    def has_record(self, key: str) -> bool:
        """Whether ``key`` has a record, current or not (what :meth:`success` would clear)."""
        return self._records.login_failure(self._key(key)) is not None

    def success(self, key: str) -> None:
        k = self._key(key)
        # Nearly every success has no record to forgive: a read, not a write transaction (with
        # its fsync, or an etcd round trip) per login. A failure recorded between the read and
        # here stays counted, which errs on the throttle's side.
        if self._records.login_failure(k) is not None:
            self._records.clear_login_failure(k)
