"""The server's state behind one interface (:class:`Store`); SQLite is the embedded default."""

from rancher_server.store.base import (
    ApiToken,
    AuditEntry,
    Binding,
    Cluster,
    Conflict,
    GlobalBinding,
    LoginFailures,
    NotFound,
    Project,
    RoleTemplate,
    StorageUnavailable,
    Store,
    StoreError,
    User,
)
from rancher_server.store.sqlite import SQLiteStore

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Binding",
    "Cluster",
    "Conflict",
    "GlobalBinding",
    "LoginFailures",
    "NotFound",
    "Project",
    "RoleTemplate",
    "SQLiteStore",
    "StorageUnavailable",
    "Store",
    "StoreError",
    "User",
]
