"""The storage interface. A distributed backend implements the same methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class StoreError(Exception):
    """A storage operation failed."""


class NotFound(StoreError):
    """The object does not exist."""


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    created_at: float
    api_endpoint: str = ""
    ca_cert: str = ""
    registered_at: float | None = None


class Store(Protocol):
    def create_cluster(self, name: str, token_hash: str) -> Cluster: ...

    def get_cluster(self, cluster_id: str) -> Cluster: ...

    def list_clusters(self) -> list[Cluster]: ...

    def delete_cluster(self, cluster_id: str) -> None: ...

    def cluster_by_token_hash(self, token_hash: str) -> Cluster | None: ...

    def set_cluster_token_hash(self, cluster_id: str, token_hash: str) -> None: ...

    def record_registration(self, cluster_id: str, api_endpoint: str, ca_cert: str) -> Cluster: ...

    def close(self) -> None: ...
