"""The storage interface. A distributed backend implements the same methods."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

TEMPLATE_CONTEXTS = ("global", "cluster", "project")
SUBJECT_KINDS = ("user", "group")


class StoreError(Exception):
    """A storage operation failed."""


class StorageUnavailable(StoreError):
    """The storage itself failed (I/O error, disk full, locked too long, corrupt page): not the
    caller's fault; answered 503 and logged with the cause."""


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
    """A role template bound to a user or group on a cluster (``project_id`` None: Rancher's
    ClusterRoleTemplateBinding, id "crtb-xxxxx") or on one project of it (ProjectRoleTemplate
    Binding, id "prtb-xxxxx"). ``subject_kind`` is "user" (subject = user id) or "group"."""

    id: str
    cluster_id: str
    subject_kind: str
    subject: str
    role: str  # a role template id: "cluster-owner", "project-member", "rt-xxxxx", ...
    created_at: float
    project_id: str | None = None


@dataclass(frozen=True)
class GlobalBinding:
    """A global role template bound to a user or group (Rancher's GlobalRoleBinding)."""

    id: str  # "grb-xxxxx"
    subject_kind: str
    subject: str
    role: str  # a global role template id: "admin", "user", "user-base", ...
    created_at: float


@dataclass(frozen=True)
class RoleTemplate:
    """A named set of Kubernetes RBAC rules (``rules``: PolicyRule dicts as in a ClusterRole)
    for one context, optionally built from other templates of the same context (``inherits``).
    ``external``: the downstream ClusterRole of the same name already exists (Kubernetes'
    ``cluster-admin``, ``admin``, ``edit``, ``view``) and is bound, never written. ``locked``:
    no new bindings. ``builtin``: defined by the server, not editable."""

    id: str
    display_name: str
    context: str  # one of TEMPLATE_CONTEXTS
    rules: tuple[dict[str, Any], ...] = ()
    inherits: tuple[str, ...] = ()
    external: bool = False
    locked: bool = False
    builtin: bool = False
    hidden: bool = False  # not offered in lists (building blocks such as "edit")
    description: str = ""
    created_at: float = 0.0


@dataclass(frozen=True)
class Project:
    """A named group of namespaces in one cluster (namespaces join it by the annotation
    ``field.cattle.io/projectId: <cluster>:<project>`` downstream)."""

    id: str  # "p-xxxxx" (every cluster gets a "Default" and a "System" project)
    cluster_id: str
    name: str
    description: str
    created_at: float


@dataclass(frozen=True)
class LoginFailures:
    """Failed logins under one throttle key (``rancher_server.auth.throttle``), kept in the store
    so that every replica counts the same failures. Times are wall-clock seconds; the store may
    forget the record once ``expires_at`` has passed (``purge_login_failures``)."""

    failures: int
    last_failure: float
    locked_until: float
    expires_at: float


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

    # The cluster agent's own credential (a hash; issued once, at its first registration).
    def cluster_by_agent_credential_hash(self, credential_hash: str) -> Cluster | None: ...

    def has_agent_credential(self, cluster_id: str) -> bool: ...

    def issue_agent_credential(self, cluster_id: str, credential_hash: str) -> bool:
        """Store the hash if the cluster has no credential yet; False if it already has one."""
        ...

    def clear_agent_credential(self, cluster_id: str) -> None: ...

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

    # Cluster and project role template bindings.
    def create_binding(
        self, cluster_id: str, subject_kind: str, subject: str, role: str,
        project_id: str | None = None,
    ) -> Binding: ...

    def get_binding(self, binding_id: str) -> Binding: ...

    def list_bindings(
        self, cluster_id: str | None = None, project_id: str | None = None
    ) -> list[Binding]: ...

    def bindings_for(
        self, user_id: str, groups: Iterable[str], cluster_id: str | None = None
    ) -> list[Binding]:
        """Cluster and project bindings whose subject is this user or one of these groups."""
        ...

    def delete_binding(self, binding_id: str) -> None: ...

    # Global role bindings.
    def create_global_binding(
        self, subject_kind: str, subject: str, role: str
    ) -> GlobalBinding: ...

    def get_global_binding(self, binding_id: str) -> GlobalBinding: ...

    def list_global_bindings(self) -> list[GlobalBinding]: ...

    def global_bindings_for(self, user_id: str, groups: Iterable[str]) -> list[GlobalBinding]: ...

    def delete_global_binding(self, binding_id: str) -> None: ...

    # Custom role templates (the built-in ones live in code: rancher_server.access.templates).
    def create_template(self, template: RoleTemplate) -> RoleTemplate: ...

    def get_template(self, template_id: str) -> RoleTemplate: ...

    def list_templates(self) -> list[RoleTemplate]: ...

    def update_template(self, template: RoleTemplate) -> RoleTemplate: ...

    def delete_template(self, template_id: str) -> None: ...

    # Projects.
    def create_project(
        self, cluster_id: str, name: str, description: str = "", project_id: str | None = None
    ) -> Project: ...

    def get_project(self, project_id: str) -> Project: ...

    def list_projects(self, cluster_id: str | None = None) -> list[Project]: ...

    def update_project(self, project_id: str, *, description: str) -> Project: ...

    def delete_project(self, project_id: str) -> None: ...

    # Change feed: ``listener()`` is called (from the writing thread) after every commit.
    @property
    def revision(self) -> int:
        """Grows with every commit this store has seen (a cheap "anything changed?")."""
        ...

    def add_listener(self, listener: Callable[[], None]) -> None: ...

    def remove_listener(self, listener: Callable[[], None]) -> None: ...

    # Audit log (append-only; never a secret) and settings.
    def append_audit(self, entries: Iterable[AuditEntry]) -> None: ...

    def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEntry]: ...

    def purge_audit(self, older_than: float) -> int: ...

    def get_setting(self, name: str) -> str | None: ...

    def set_setting(self, name: str, value: str) -> None: ...

    # Failed-login records, shared by every replica. Keys are opaque (the throttle hashes what
    # it counts). Bookkeeping: writing them neither bumps ``revision`` nor wakes listeners.
    def login_failure(self, key: str) -> LoginFailures | None: ...

    def update_login_failure(
        self, key: str, change: Callable[[LoginFailures | None], LoginFailures | None]
    ) -> LoginFailures | None:
        """Atomically replace the record by ``change(current)`` (None: delete it) and return
        what was stored. ``change`` may be called again when another writer came first: it must
        only compute from its argument."""
        ...

    def clear_login_failure(self, key: str) -> None: ...

    def purge_login_failures(self, now: float) -> int:
        """Forget the records whose ``expires_at`` is before ``now``; how many."""
        ...

    # Logins in flight (an OAuth redirect's state, a CLI's device login), shared by every
    # replica: the provider's callback or the CLI's next poll may reach any of them. Keys are
    # opaque (the caller hashes its handle), values the caller's (it encrypts them); a record
    # past ``expires_at`` (wall-clock seconds) is as good as absent. Bookkeeping, like the
    # failed-login records: no revision bump, no listener woken.
    def put_pending_login(self, key: str, value: str, expires_at: float, keep: int) -> None:
        """Store (or replace) a record, then keep at most ``keep`` records: those expiring first
        go (a flood of unfinished logins cannot grow the store without bound)."""
        ...

    def get_pending_login(self, key: str, now: float) -> str | None: ...

    def take_pending_login(self, key: str, now: float) -> str | None:
        """Remove the record and return its value: of two replicas taking the same record at
        once, exactly one gets it (a login state is used once)."""
        ...

    def replace_pending_login(self, key: str, value: str, now: float) -> bool:
        """A new value for a record still there (its expiry kept); False if it is gone."""
        ...

    def purge_pending_logins(self, now: float) -> int:
        """Forget the records whose ``expires_at`` is before ``now``; how many."""
        ...

    # Secrets the deployment shares (the serving CA's key): never logged, never listed.
    def put_secret_if_absent(self, name: str, value: str) -> str:
        """Store ``value`` under ``name`` unless there is one already; the stored value (ours or
        the one that was there: two replicas racing both get the winner's)."""
        ...

    def get_secret(self, name: str) -> str | None: ...

    def close(self) -> None: ...
