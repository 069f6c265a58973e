"""The slice of the API core's store that the simulated cluster uses (a structural type, so the
sim depends on no concrete store class)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Obj = dict[str, Any]
StoreCallback = Callable[[str, str, str, Obj], None]


class Store(Protocol):
    """What ``kubesim.store`` offers: synchronous reads and writes plus a change feed."""

    def list_items(self, group: str, resource: str, namespace: str | None = None) -> list[Obj]: ...

    def get_item(
        self, group: str, resource: str, namespace: str | None, name: str
    ) -> Obj | None: ...

    def create_item(self, group: str, resource: str, obj: Obj) -> Obj: ...

    def update_item(
        self, group: str, resource: str, obj: Obj, subresource: str | None = None
    ) -> Obj: ...

    def delete_item(self, group: str, resource: str, namespace: str | None, name: str) -> Any: ...

    def subscribe(self, callback: StoreCallback) -> Any: ...

    def compact(self) -> None: ...
