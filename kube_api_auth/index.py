"""The in-memory index that answers reviews: plain dicts, fed by list+watch (or a static file).

Feeders call :meth:`Index.replace` after a list and :meth:`Index.upsert` /
:meth:`Index.delete` per watch event, with the raw Kubernetes objects. An object that
cannot be used is dropped from the index (and counted), so a bad update revokes rather than
leaving a stale grant in place.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any

from kube_api_auth import model
from rancher_tunnel.logs import get_logger


def log() -> Any:
    """The module's logger, bound when used (after the service configured logging)."""
    return get_logger(component="kube-api-auth.index")


class Kind(enum.Enum):
    TOKENS = "clusterauthtokens"
    SECRETS = "secrets"
    USERS = "clusteruserattributes"


class Index:
    def __init__(self) -> None:
        self.tokens: dict[str, model.TokenRecord] = {}
        self.hashes: dict[str, dict[str, tuple[bytes, bytes]]] = {}  # secret name -> key -> hash
        self.users: dict[str, model.UserRecord] = {}
        self.synced: set[Kind] = set()
        self._ready = False  # cached: is_ready() is on the review path
        self.invalid_objects = 0
        self.listeners: list[Callable[[Kind], None]] = []

    def is_ready(self) -> bool:
        """True once every kind has been listed (a feeder error never makes it False)."""
        return self._ready

    def sizes(self) -> dict[Kind, int]:
        return {
            Kind.TOKENS: len(self.tokens),
            Kind.SECRETS: len(self.hashes),
            Kind.USERS: len(self.users),
        }

    def replace(self, kind: Kind, objects: Iterable[dict[str, Any]]) -> None:
        """Swap the whole table of ``kind`` for ``objects`` (the result of a fresh list)."""
        table: dict[str, Any] = {}
        for obj in objects:
            parsed = self._parse(kind, obj)
            if parsed is not None and parsed[1]:
                table[parsed[0]] = parsed[1]
        if kind is Kind.TOKENS:
            self.tokens = table
        elif kind is Kind.SECRETS:
            self.hashes = table
        else:
            self.users = table
        self.synced.add(kind)
        self._ready = self.synced == set(Kind)
        self._changed(kind)

    def upsert(self, kind: Kind, obj: dict[str, Any]) -> None:
        parsed = self._parse(kind, obj)
        if parsed is None or not parsed[1]:  # unusable, or a Secret without any stored hash
            self.delete(kind, obj)
            return
        self._table(kind)[parsed[0]] = parsed[1]
        self._changed(kind)

    def delete(self, kind: Kind, obj: dict[str, Any]) -> None:
        try:
            name = model.object_name(obj)
        except model.InvalidObjectError:
            return
        self._table(kind).pop(name, None)
        self._changed(kind)

    def _table(self, kind: Kind) -> dict[str, Any]:
        if kind is Kind.TOKENS:
            return self.tokens
        if kind is Kind.SECRETS:
            return self.hashes
        return self.users

    def _parse(self, kind: Kind, obj: dict[str, Any]) -> tuple[str, Any] | None:
        try:
            if kind is Kind.TOKENS:
                token = model.token_from_object(obj)
                return token.name, token
            if kind is Kind.SECRETS:
                return model.object_name(obj), model.secret_hashes(obj)
            user = model.user_from_object(obj)
            return user.name, user
        except model.InvalidObjectError as exc:
            self.invalid_objects += 1
            log().warning("object dropped from index", kind=kind.value, reason=str(exc))
            return None

    def _changed(self, kind: Kind) -> None:
        for listener in self.listeners:
            listener(kind)
