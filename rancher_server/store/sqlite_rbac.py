"""Cluster role bindings, the audit log and settings in the SQLite store."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from rancher_server.store.base import (
    SUBJECT_KINDS,
    AuditEntry,
    Binding,
    Conflict,
    NotFound,
    StoreError,
)
from rancher_server.store.sqlite_common import ID_ALLOCATION_ATTEMPTS, SQLiteBase, new_id


def _binding(row: sqlite3.Row) -> Binding:
    user_id = row["user_id"]
    return Binding(
        id=row["id"], cluster_id=row["cluster_id"],
        subject_kind="user" if user_id is not None else "group",
        subject=user_id if user_id is not None else row["group_name"],
        role=row["role"], created_at=row["created_at"], project_id=row["project_id"],
    )


def _audit(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"], ts=row["ts"], user_id=row["user_id"], action=row["action"],
        target=row["target"], result=row["result"], remote=row["remote"],
    )


class BindingsMixin(SQLiteBase):
    def create_binding(
        self, cluster_id: str, subject_kind: str, subject: str, role: str,
        project_id: str | None = None,
    ) -> Binding:
        if subject_kind not in SUBJECT_KINDS:
            raise StoreError(f"subject kind must be one of {SUBJECT_KINDS}")
        user_id = subject if subject_kind == "user" else None
        group = subject if subject_kind == "group" else None
        with self._tx() as db:
            if project_id is not None:
                row = db.execute(
                    "SELECT cluster_id FROM projects WHERE id=?", (project_id,)
                ).fetchone()
                if row is None or row[0] != cluster_id:
                    raise NotFound(f"project {project_id!r} not found in cluster {cluster_id!r}")
            for _ in range(ID_ALLOCATION_ATTEMPTS):
                bid = new_id("prtb-" if project_id else "crtb-")
                try:
                    db.execute(
                        "INSERT INTO bindings (id, cluster_id, project_id, user_id, group_name,"
                        " role, created_at) VALUES (?,?,?,?,?,?,?)",
                        (bid, cluster_id, project_id, user_id, group, role, time.time()),
                    )
                except sqlite3.IntegrityError as e:
                    msg = str(e)
                    if "FOREIGN KEY" in msg:
                        raise NotFound(f"no such cluster {cluster_id!r} or user") from e
                    if "CHECK" in msg:
                        raise StoreError(f"invalid role {role!r}") from e
                    if "bindings.id" in msg:
                        continue
                    raise Conflict("this binding already exists") from e
                row = db.execute("SELECT * FROM bindings WHERE id=?", (bid,)).fetchone()
                return _binding(row)
        raise StoreError("could not allocate a binding id")

    def get_binding(self, binding_id: str) -> Binding:
        row = self._read_one("SELECT * FROM bindings WHERE id=?", (binding_id,))
        if row is None:
            raise NotFound(f"binding {binding_id!r} not found")
        return _binding(row)

    def list_bindings(
        self, cluster_id: str | None = None, project_id: str | None = None
    ) -> list[Binding]:
        where, args = [], []
        if cluster_id is not None:
            where.append("cluster_id=?")
            args.append(cluster_id)
        if project_id is not None:
            where.append("project_id=?")
            args.append(project_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(
            f"SELECT * FROM bindings {clause} ORDER BY created_at", tuple(args)  # noqa: S608
        )
        return [_binding(r) for r in rows]

    def bindings_for(
        self, user_id: str, groups: Iterable[str], cluster_id: str | None = None
    ) -> list[Binding]:
        """Bindings whose subject is this user or one of these groups (optionally one cluster)."""
        group_list = tuple(groups)
        marks = ",".join("?" * len(group_list))
        where = f"(user_id=? OR group_name IN ({marks}))" if group_list else "user_id=?"
        args: list[object] = [user_id, *group_list]
        if cluster_id is not None:
            where += " AND cluster_id=?"
            args.append(cluster_id)

        def load(db: sqlite3.Connection) -> tuple[Binding, ...]:
            rows = db.execute(
                f"SELECT * FROM bindings WHERE {where} ORDER BY created_at",  # noqa: S608
                tuple(args),
            ).fetchall()
            return tuple(_binding(r) for r in rows)

        # Cached until the next commit (the proxy asks this on every request).
        return list(self._cached(("bindings", user_id, group_list, cluster_id), load))

    def delete_binding(self, binding_id: str) -> None:
        with self._tx() as db:
            cur = db.execute("DELETE FROM bindings WHERE id=?", (binding_id,))
            if cur.rowcount == 0:
                raise NotFound(f"binding {binding_id!r} not found")

    # Audit log -----------------------------------------------------------------------------

    def append_audit(self, entries: Iterable[AuditEntry]) -> None:
        rows = [(e.ts, e.user_id, e.action, e.target, e.result, e.remote) for e in entries]
        if not rows:
            return
        with self._tx(quiet=True) as db:
            db.executemany(
                "INSERT INTO audit (ts, user_id, action, target, result, remote)"
                " VALUES (?,?,?,?,?,?)",
                rows,
            )

    def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEntry]:
        """Newest first."""
        if before_id is None:
            rows = self._read("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self._read(
                "SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?", (before_id, limit)
            )
        return [_audit(r) for r in rows]

    def purge_audit(self, older_than: float) -> int:
        with self._tx(quiet=True) as db:
            return int(db.execute("DELETE FROM audit WHERE ts < ?", (older_than,)).rowcount)

    # Settings ------------------------------------------------------------------------------

    def get_setting(self, name: str) -> str | None:
        row = self._read_one("SELECT value FROM settings WHERE name=?", (name,))
        return None if row is None else str(row[0])

    def set_setting(self, name: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO settings (name, value) VALUES (?,?)"
                " ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                (name, value),
            )
