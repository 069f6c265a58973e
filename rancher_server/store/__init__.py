"""The server's state behind one interface (:class:`Store`); SQLite is the embedded default."""

from rancher_server.store.base import Cluster, NotFound, Store, StoreError
from rancher_server.store.sqlite import SQLiteStore

__all__ = ["Cluster", "NotFound", "SQLiteStore", "Store", "StoreError"]
