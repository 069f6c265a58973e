"""The etcd store's in-memory copy of its keyspace: one JSON document per object, indexed the way
the store's reads need it. Fed by the watch thread (``apply``); read under the store's lock."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]

# Kinds of objects, each under ``<prefix><kind>/``. Tokens live under their user
# (``tokens/<user>/<token>``) so deleting a user can check "no new token" on one small range.
CLUSTERS = "clusters"
USERS = "users"
TOKENS = "tokens"
BINDINGS = "bindings"
GLOBAL_BINDINGS = "gbindings"
TEMPLATES = "templates"
PROJECTS = "projects"
SETTINGS = "settings"
UNIQUE = "unique"  # uniqueness keys (one per unique name), never loaded into memory
AUDIT = "audit"  # read from etcd on demand, never loaded into memory
LOGIN_FAILURES = "login-failures"  # the login throttle's records: read on demand, like audit
SECRETS = "secrets"  # what replicas share that is secret (the serving CA): read on demand
KINDS = (CLUSTERS, USERS, TOKENS, BINDINGS, GLOBAL_BINDINGS, TEMPLATES, PROJECTS, SETTINGS)


def _subject(doc: Doc) -> Hashable:
    return (doc["subject_kind"], doc["subject"])


# index name -> (kind, value of a document; None: not indexed)
INDEXES: dict[str, tuple[str, Callable[[Doc], Hashable | None]]] = {
    "cluster_name": (CLUSTERS, lambda d: d["name"]),
    "cluster_token": (CLUSTERS, lambda d: d["token_hash"]),
    "agent_credential": (CLUSTERS, lambda d: d.get("agent_credential_hash")),
    "username": (USERS, lambda d: d["username"]),
    "user_tokens": (TOKENS, lambda d: d["user_id"]),
    "binding_subject": (BINDINGS, _subject),
    "binding_cluster": (BINDINGS, lambda d: d["cluster_id"]),
    "binding_project": (BINDINGS, lambda d: d.get("project_id")),
    "binding_role": (BINDINGS, lambda d: d["role"]),
    "global_subject": (GLOBAL_BINDINGS, _subject),
    "global_role": (GLOBAL_BINDINGS, lambda d: d["role"]),
    "project_cluster": (PROJECTS, lambda d: d["cluster_id"]),
    "project_name": (PROJECTS, lambda d: (d["cluster_id"], d["name"])),
}
_BY_KIND: dict[str, list[tuple[str, Callable[[Doc], Hashable | None]]]] = {}
for _name, (_kind, _fn) in INDEXES.items():
    _BY_KIND.setdefault(_kind, []).append((_name, _fn))


@dataclass(frozen=True)
class Row:
    doc: Doc
    key: bytes
    create_revision: int
    mod_revision: int

    @property
    def order(self) -> tuple[float, int]:
        """Lists are ordered as SQLite's ``ORDER BY created_at`` (creation order on ties)."""
        return (float(self.doc.get("created_at") or 0.0), self.create_revision)


class Memory:
    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.rows: dict[str, dict[str, Row]] = {k: {} for k in KINDS}
        self.index: dict[str, dict[Hashable, set[str]]] = {n: {} for n in INDEXES}

    def parse_key(self, key: bytes) -> tuple[str, str] | None:
        """``(kind, id)`` of an object key; None for uniqueness and audit keys."""
        if not key.startswith(self.prefix):
            return None
        kind, _, rest = key[len(self.prefix):].decode().partition("/")
        if kind not in self.rows or not rest:
            return None
        return kind, rest.rpartition("/")[2] if kind == TOKENS else rest

    def clear(self) -> None:
        for rows in self.rows.values():
            rows.clear()
        for index in self.index.values():
            index.clear()

    def put(self, key: bytes, value: bytes, create_revision: int, mod_revision: int) -> bool:
        parsed = self.parse_key(key)
        if parsed is None:
            return False
        kind, oid = parsed
        self._unindex(kind, oid)
        row = Row(json.loads(value), key, create_revision, mod_revision)
        self.rows[kind][oid] = row
        for name, fn in _BY_KIND.get(kind, ()):
            value_ = fn(row.doc)
            if value_ is not None:
                self.index[name].setdefault(value_, set()).add(oid)
        return True

    def delete(self, key: bytes) -> bool:
        parsed = self.parse_key(key)
        if parsed is None:
            return False
        kind, oid = parsed
        self._unindex(kind, oid)
        return self.rows[kind].pop(oid, None) is not None

    def _unindex(self, kind: str, oid: str) -> None:
        old = self.rows[kind].get(oid)
        if old is None:
            return
        for name, fn in _BY_KIND.get(kind, ()):
            value = fn(old.doc)
            if value is None:
                continue
            ids = self.index[name].get(value)
            if ids is not None:
                ids.discard(oid)
                if not ids:
                    del self.index[name][value]

    def get(self, kind: str, oid: str) -> Row | None:
        return self.rows[kind].get(oid)

    def lookup(self, index: str, value: Hashable) -> list[Row]:
        kind = INDEXES[index][0]
        rows = self.rows[kind]
        return sorted((rows[i] for i in self.index[index].get(value, ())), key=lambda r: r.order)

    def first(self, index: str, value: Hashable) -> Row | None:
        found = self.lookup(index, value)
        return found[0] if found else None

    def all(self, kind: str) -> list[Row]:
        return sorted(self.rows[kind].values(), key=lambda r: r.order)

    def many(self, index: str, values: Iterable[Hashable]) -> list[Row]:
        kind = INDEXES[index][0]
        ids: set[str] = set()
        for v in values:
            ids |= self.index[index].get(v, set())
        rows = self.rows[kind]
        return sorted((rows[i] for i in ids), key=lambda r: r.order)
