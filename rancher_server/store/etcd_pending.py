"""Logins in flight on etcd (``pending-logins/<key>``: the value and its expiry as JSON), read on
demand like the failed-login records: never loaded into memory, no listener woken. A take or a
replace is a transaction that holds only if the key is as read (its mod revision), so of two
replicas taking one login state exactly one gets it."""

from __future__ import annotations

import json
from typing import Any

from aetcd import rpc

from rancher_server.store.base import StorageUnavailable
from rancher_server.store.etcd_conn import (
    EtcdConnection,
    delete_op,
    prefix_end,
    put_op,
    unchanged,
)

PENDING_LOGINS = "pending-logins"
PENDING_WRITE_ATTEMPTS = 20  # re-reads after another replica changed the record first
PENDING_DELETE_CHUNK = 128  # etcd's default --max-txn-ops


def _encode(value: str, expires_at: float) -> bytes:
    return json.dumps({"v": value, "exp": expires_at}, separators=(",", ":")).encode()


def _decode(kv: Any) -> tuple[str, float]:
    d = json.loads(kv.value)
    return str(d["v"]), float(d["exp"])


class PendingLoginsMixin:
    _conn: EtcdConnection
    _prefix: bytes

    def _pending_start(self) -> bytes:
        return self._prefix + f"{PENDING_LOGINS}/".encode()

    def _pending_kv(self, key: str) -> Any:
        kvs = self._conn.range_raw(rpc.RangeRequest(key=self._pending_start() + key.encode())).kvs
        return kvs[0] if kvs else None

    def put_pending_login(self, key: str, value: str, expires_at: float, keep: int) -> None:
        self._conn.txn([], [put_op(self._pending_start() + key.encode(),
                                   _encode(value, expires_at))])
        start = self._pending_start()
        count = int(self._conn.range_raw(rpc.RangeRequest(
            key=start, range_end=prefix_end(start), count_only=True)).count)
        if count > keep:  # a flood of unfinished logins: those expiring first go
            kvs = sorted(self._conn.range_prefix(start).kvs, key=lambda kv: _decode(kv)[1])
            self._delete_unchanged(kvs[:len(kvs) - keep])

    def _delete_unchanged(self, kvs: list[Any]) -> int:
        deleted = 0
        for i in range(0, len(kvs), PENDING_DELETE_CHUNK):
            chunk = kvs[i:i + PENDING_DELETE_CHUNK]
            ok, _ = self._conn.txn([unchanged(bytes(kv.key), int(kv.mod_revision))
                                    for kv in chunk], [delete_op(bytes(kv.key)) for kv in chunk])
            deleted += len(chunk) if ok else 0
        return deleted

    def get_pending_login(self, key: str, now: float) -> str | None:
        kv = self._pending_kv(key)
        if kv is None:
            return None
        value, expires_at = _decode(kv)
        return value if expires_at >= now else None

    def take_pending_login(self, key: str, now: float) -> str | None:
        for _ in range(PENDING_WRITE_ATTEMPTS):
            kv = self._pending_kv(key)
            if kv is None:
                return None
            ok, _ = self._conn.txn([unchanged(bytes(kv.key), int(kv.mod_revision))],
                                   [delete_op(bytes(kv.key))])
            if ok:
                value, expires_at = _decode(kv)
                return value if expires_at >= now else None
        raise StorageUnavailable(f"gave up after {PENDING_WRITE_ATTEMPTS} conflicting writes")

    def replace_pending_login(self, key: str, value: str, now: float) -> bool:
        for _ in range(PENDING_WRITE_ATTEMPTS):
            kv = self._pending_kv(key)
            if kv is None:
                return False
            _, expires_at = _decode(kv)
            if expires_at < now:
                return False
            ok, _ = self._conn.txn([unchanged(bytes(kv.key), int(kv.mod_revision))],
                                   [put_op(bytes(kv.key), _encode(value, expires_at))])
            if ok:
                return True
        raise StorageUnavailable(f"gave up after {PENDING_WRITE_ATTEMPTS} conflicting writes")

    def purge_pending_logins(self, now: float) -> int:
        """Only records unchanged since read go (a chunk with one replaced meanwhile is left for
        the next purge)."""
        kvs = [kv for kv in self._conn.range_prefix(self._pending_start()).kvs
               if _decode(kv)[1] < now]
        return self._delete_unchanged(kvs)
