"""Which store the server runs on: ``--store etcd://HOST:PORT[,HOST:PORT]`` (env ``RANCHER_STORE``)
for etcd; empty (the default) for the embedded SQLite file in the state directory."""

from __future__ import annotations

from pathlib import Path

from rancher_server.store.base import Store
from rancher_server.store.sqlite import SQLiteStore


def open_store(store_url: str, sqlite_path: Path) -> Store:
    if not store_url:
        return SQLiteStore(sqlite_path)
    from rancher_server.store.etcd import EtcdStore  # grpc is loaded only for etcd

    return EtcdStore(store_url)
