"""The storage interface. A distributed backend implements the same methods."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol


class StoreError(Exception):
    """A storage operation failed."""


class NotFound(StoreError):
    """The object does not exist."""


class Conflict(StoreError):
    """The object would collide with an existing one (a unique name, a duplicate binding)."""


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    created_at: float
    api_endpoint: str = ""
    ca_cert: str = ""
    registered_at: float | None = None


@dataclass(frozen=True)
class User:
    id: str  # "u-xxxxx"
    username: str
    display_name: str
    password_hash: str  # passwords.hash_password's encoding; never the password
    enabled: bool
    is_admin: bool
    created_at: float
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiToken:
    id: str  # "token-xxxxx"; the bearer credential is "<id>:<secret>"
    user_id: str
    secret_hash: str  # passwords.hash_token_secret's encoding; never the secret
    kind: str  # "login" | "api"
    description: str
    created_at: float
    expires_at: float | None  # None: no expiry
    enabled: bool = True
    last_used_at: float | None = None


@dataclass(frozen=True)
class Binding:
    """A cluster role binding: ``subject_kind`` is "user" (subject = user id) or "group"."""

    id: str  # "crtb-xxxxx"
    cluster_id: str
    subject_kind: str
    subject: str
    role: str  # "cluster-owner" | "cluster-member" | "read-only"
    created_at: float


@dataclass(frozen=True)
class AuditEntry:
    ts: float
    user_id: str
    action: str
    target: str
    result: str
    remote: str
    id: int = 0


class Store(Protocol):
    # Clusters.
    def create_cluster(self, name: str, token_hash: str) -> Cluster: ...

    def get_cluster(self, cluster_id: str) -> Cluster: ...

    def list_clusters(self) -> list[Cluster]: ...

    def delete_cluster(self, cluster_id: str) -> None: ...

    def cluster_by_token_hash(self, token_hash: str) -> Cluster | None: ...

    def set_cluster_token_hash(self, cluster_id: str, token_hash: str) -> None: ...

    def record_registration(self, cluster_id: str, api_endpoint: str, ca_cert: str) -> Cluster: ...

    # Users and their local groups.
    def create_user(
        self, username: str, display_name: str, password_hash: str, *, is_admin: bool = False,
        groups: Iterable[str] = (),
    ) -> User: ...

    def get_user(self, user_id: str) -> User: ...

    def user_by_username(self, username: str) -> User | None: ...

    def list_users(self) -> list[User]: ...

    def count_users(self) -> int: ...

    def update_user(
        self, user_id: str, *, display_name: str | None = None, enabled: bool | None = None,
        password_hash: str | None = None, is_admin: bool | None = None,
    ) -> User: ...

    def set_user_groups(self, user_id: str, groups: Iterable[str]) -> User: ...

    def delete_user(self, user_id: str) -> None: ...

    # API tokens (salted hashes of the secret only).
    def create_token(
        self, user_id: str, secret_hash: str, *, kind: str, description: str,
        expires_at: float | None, token_id: str | None = None,
    ) -> ApiToken: ...

    def get_token(self, token_id: str) -> ApiToken: ...

    def token_with_user(self, token_id: str) -> tuple[ApiToken, User] | None: ...

    def list_tokens(self, user_id: str | None = None) -> list[ApiToken]: ...

    def delete_token(self, token_id: str) -> None: ...

    def touch_tokens(self, last_used: Mapping[str, float]) -> None: ...

    def purge_expired_tokens(self, now: float) -> int: ...

    # Cluster role bindings.
    def create_binding(
        self, cluster_id: str, subject_kind: str, subject: str, role: str
    ) -> Binding: ...

    def get_binding(self, binding_id: str) -> Binding: ...

    def list_bindings(self, cluster_id: str | None = None) -> list[Binding]: ...

    def bindings_for(
        self, user_id: str, groups: Iterable[str], cluster_id: str | None = None
    ) -> list[Binding]: ...

    def delete_binding(self, binding_id: str) -> None: ...

    # Audit log (append-only; never a secret) and settings.
    def append_audit(self, entries: Iterable[AuditEntry]) -> None: ...

    def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEntry]: ...

    def purge_audit(self, older_than: float) -> int: ...

    def get_setting(self, name: str) -> str | None: ...

    def set_setting(self, name: str, value: str) -> None: ...

    def close(self) -> None: ...
