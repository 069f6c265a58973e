"""``rancher-server store migrate --to etcd://HOST:PORT[,HOST:PORT] [--data-dir DIR]``: copies the
SQLite store into etcd in the etcd store's format. Each object is written only if its key (and
its uniqueness keys) are absent, so a second run changes nothing and says so; an object whose
unique name is already held by another object in etcd is reported, never overwritten. Hashes
are copied as hashes; nothing secret is printed."""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rancher_server.store.base import StoreError
from rancher_server.store.etcd import DEFAULT_PREFIX, EtcdStore
from rancher_server.store.etcd_conn import RequestOp, put_op
from rancher_server.store.etcd_memory import (
    AUDIT,
    BINDINGS,
    CLUSTERS,
    GLOBAL_BINDINGS,
    PROJECTS,
    SETTINGS,
    TEMPLATES,
    TOKENS,
    USERS,
    Doc,
)
from rancher_server.store.sqlite import SQLiteStore

MIGRATED_KINDS = (CLUSTERS, PROJECTS, USERS, GLOBAL_BINDINGS, BINDINGS, TOKENS, TEMPLATES,
                  SETTINGS, AUDIT)


@dataclass
class MigrationReport:
    copied: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MIGRATED_KINDS, 0))
    present: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MIGRATED_KINDS, 0))
    conflicts: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(self.copied.values())

    def summary(self) -> str:
        if not self.changed and not self.conflicts:
            return (f"nothing to do: all {sum(self.present.values())} objects are already in "
                    f"etcd")
        parts = [f"{kind} {n}" for kind, n in self.copied.items() if n]
        text = "copied " + (", ".join(parts) or "nothing")
        if any(self.present.values()):
            text += f"; {sum(self.present.values())} already there"
        if self.conflicts:
            text += f"; {len(self.conflicts)} conflicting (left as they are in etcd)"
        return text


def _rows(db: sqlite3.Connection, sql: str) -> Iterator[sqlite3.Row]:
    yield from db.execute(sql)


def _objects(path: Path, etcd: EtcdStore) -> Iterator[tuple[str, str, Doc, list[bytes]]]:
    """(kind, key suffix, document, uniqueness keys) for every object of the SQLite store."""
    SQLiteStore(path).close()  # applies the schema migrations first
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        for r in _rows(db, "SELECT * FROM clusters"):
            doc = {k: r[k] for k in ("id", "name", "token_hash", "api_endpoint", "ca_cert",
                                     "created_at", "registered_at", "agent_credential_hash")}
            yield CLUSTERS, r["id"], doc, etcd.cluster_unique_keys(doc)
        for r in _rows(db, "SELECT * FROM projects"):
            doc = {k: r[k] for k in ("id", "cluster_id", "name", "description", "created_at")}
            yield PROJECTS, r["id"], doc, [etcd.unique_key("project-name", r["cluster_id"],
                                                           r["name"])]
        groups: dict[str, list[str]] = {}
        for r in _rows(db, "SELECT * FROM user_groups ORDER BY group_name"):
            groups.setdefault(r["user_id"], []).append(r["group_name"])
        for r in _rows(db, "SELECT * FROM users"):
            doc = {"id": r["id"], "username": r["username"], "display_name": r["display_name"],
                   "password_hash": r["password_hash"], "enabled": bool(r["enabled"]),
                   "created_at": r["created_at"], "groups": groups.get(r["id"], [])}
            yield USERS, r["id"], doc, [etcd.unique_key("username", r["username"])]
        for r in _rows(db, "SELECT * FROM global_bindings"):
            kind, subject = ("user", r["user_id"]) if r["user_id"] else ("group", r["group_name"])
            doc = {"id": r["id"], "subject_kind": kind, "subject": subject, "role": r["role"],
                   "created_at": r["created_at"]}
            yield GLOBAL_BINDINGS, r["id"], doc, [etcd.unique_key("gbinding", kind, subject,
                                                                  r["role"])]
        for r in _rows(db, "SELECT * FROM bindings"):
            kind, subject = ("user", r["user_id"]) if r["user_id"] else ("group", r["group_name"])
            doc = {"id": r["id"], "cluster_id": r["cluster_id"], "project_id": r["project_id"],
                   "subject_kind": kind, "subject": subject, "role": r["role"],
                   "created_at": r["created_at"]}
            yield BINDINGS, r["id"], doc, [etcd.binding_unique_key(doc)]
        for r in _rows(db, "SELECT * FROM tokens"):
            doc = {k: r[k] for k in ("id", "user_id", "secret_hash", "kind", "description",
                                     "created_at", "expires_at", "last_used_at")}
            doc["enabled"] = bool(r["enabled"])
            yield TOKENS, f"{r['user_id']}/{r['id']}", doc, []
        for r in _rows(db, "SELECT * FROM templates"):
            doc = json.loads(r["doc"])
            doc.update(id=r["id"], created_at=r["created_at"])
            yield TEMPLATES, r["id"], doc, []
        for r in _rows(db, "SELECT * FROM settings"):
            yield SETTINGS, r["name"], {"name": r["name"], "value": r["value"]}, []
        for r in _rows(db, "SELECT * FROM audit ORDER BY id"):
            doc = {k: r[k] for k in ("ts", "user_id", "action", "target", "result", "remote")}
            doc["n"] = 0
            yield AUDIT, f"{round(max(r['ts'], 0.0) * 1e9):020d}/sqlite-{r['id']}/0000", doc, []
    finally:
        db.close()


def migrate(sqlite_path: Path, etcd_url: str, prefix: bytes = DEFAULT_PREFIX) -> MigrationReport:
    if not sqlite_path.exists():
        raise StoreError(f"no SQLite store at {sqlite_path}")
    report = MigrationReport()
    etcd = EtcdStore(etcd_url, prefix=prefix)
    try:
        for kind, suffix, doc, unique in _objects(sqlite_path, etcd):
            key = etcd.object_key(kind, suffix)
            ops: list[RequestOp] = [put_op(key, etcd.encode(doc))]
            ops += [put_op(k, str(doc.get("id", "")).encode()) for k in unique]
            outcome = etcd.connection.put_if_absent(key, ops, unique)
            if outcome == "copied":
                report.copied[kind] += 1
            elif outcome == "present":
                report.present[kind] += 1
            else:
                report.conflicts.append(f"{kind} {doc.get('id') or suffix}")
    finally:
        etcd.close()
    return report


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The ``store`` command with ``migrate``; returns its subcommands for others to add to."""
    p = sub.add_parser("store", help="the server's store")
    ssub = p.add_subparsers(dest="store_command", required=True)
    m = ssub.add_parser("migrate", help="copy the SQLite store into etcd (idempotent)")
    m.add_argument("--to", required=True, metavar="etcd://HOST:PORT[,HOST:PORT]")
    m.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                   help="the state directory holding rancher.db (default: the server's)")
    return ssub


def run(args: argparse.Namespace, sqlite_path: Path) -> int:
    try:
        report = migrate(sqlite_path, args.to)
    except (StoreError, ValueError) as e:
        print(f"error: {e}")
        return 1
    print(json.dumps({"changed": report.changed, "copied": report.copied,
                      "already_present": report.present, "conflicts": report.conflicts,
                      "summary": report.summary()}))
    return 2 if report.conflicts else 0
