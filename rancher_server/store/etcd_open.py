"""Which store the server runs on: ``--store etcd://HOST:PORT[,HOST:PORT]`` (env ``RANCHER_STORE``)
for etcd; empty (the default) for the embedded SQLite file in the state directory.

On etcd, reads answer from this replica's memory while etcd is unreachable, which keeps the API
and the proxy up, at one risk: a token revoked (or a user disabled) through another replica
meanwhile is not seen here. So authentication trusts that memory for ``ETCD_STALE_READ_MAX_S`` (env
``RANCHER_ETCD_STALE_READ_MAX_S``, 0 for no bound) after the watch last heard from etcd, then
answers 503 until etcd is back (``docs/architecture.md``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rancher_server.store.base import ApiToken, StorageUnavailable, Store, User
from rancher_server.store.sqlite import SQLiteStore
from rancher_tunnel.logs import get_logger

if TYPE_CHECKING:
    from rancher_server.store.etcd import EtcdStore

ETCD_STALE_READ_MAX_S = 300.0
STALE_READ_ENV = "RANCHER_ETCD_STALE_READ_MAX_S"
log = get_logger(component="store-etcd")


def stale_read_max_s(env: dict[str, str] | None = None) -> float:
    raw = (os.environ if env is None else env).get(STALE_READ_ENV, "").strip()
    if not raw:
        return ETCD_STALE_READ_MAX_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        log.warning(f"{STALE_READ_ENV} is a number of seconds >= 0; using the default",
                    value=raw, default=ETCD_STALE_READ_MAX_S)
        return ETCD_STALE_READ_MAX_S
    return value


def open_etcd(store_url: str, stale_read_max_s: float = ETCD_STALE_READ_MAX_S,
              prefix: bytes | None = None) -> EtcdStore:
    """An etcd store whose token lookups answer ``StorageUnavailable`` once its picture is more
    than ``stale_read_max_s`` old (0: never)."""
    from rancher_server.store.etcd import DEFAULT_PREFIX, EtcdStore  # grpc: etcd only

    class BoundedEtcdStore(EtcdStore):
        def token_with_user(self, token_id: str) -> tuple[ApiToken, User] | None:
            if stale_read_max_s and self.connection.watch_silent_s() > stale_read_max_s:
                # One message for the whole outage: the server logs each cause once.
                raise StorageUnavailable(
                    f"etcd has not been heard from for more than {STALE_READ_ENV}="
                    f"{stale_read_max_s:g} s: a token revoked elsewhere meanwhile would not "
                    f"be seen, so none is trusted until etcd is back")
            return super().token_with_user(token_id)

    return BoundedEtcdStore(store_url, prefix=DEFAULT_PREFIX if prefix is None else prefix)


def open_store(store_url: str, sqlite_path: Path) -> Store:
    if not store_url:
        return SQLiteStore(sqlite_path)
    return open_etcd(store_url, stale_read_max_s())
