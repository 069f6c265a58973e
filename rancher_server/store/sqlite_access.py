"""Role templates (the custom ones), projects and global role bindings in the SQLite store."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, replace

from rancher_server.store.base import (
    SUBJECT_KINDS,
    Conflict,
    GlobalBinding,
    NotFound,
    Project,
    RoleTemplate,
    StoreError,
)
from rancher_server.store.sqlite_common import ID_ALLOCATION_ATTEMPTS, SQLiteBase, new_id

# Every cluster is created with these projects (Rancher's "Default" and "System").
DEFAULT_PROJECT = "Default"
SYSTEM_PROJECT = "System"
DEFAULT_PROJECTS = (
    (DEFAULT_PROJECT, "Namespaces without a project"),
    (SYSTEM_PROJECT, "kube-system and the namespaces of the platform"),
)


def _template(row: sqlite3.Row) -> RoleTemplate:
    doc = json.loads(row["doc"])
    return RoleTemplate(
        id=row["id"], display_name=doc["display_name"], context=doc["context"],
        rules=tuple(doc.get("rules") or ()), inherits=tuple(doc.get("inherits") or ()),
        external=bool(doc.get("external")), locked=bool(doc.get("locked")),
        hidden=bool(doc.get("hidden")), description=doc.get("description", ""),
        created_at=row["created_at"],
    )


def _template_doc(t: RoleTemplate) -> str:
    doc = asdict(t)
    for key in ("id", "created_at", "builtin"):
        doc.pop(key)
    doc["rules"] = list(t.rules)
    doc["inherits"] = list(t.inherits)
    return json.dumps(doc, sort_keys=True)


def _project(row: sqlite3.Row) -> Project:
    return Project(
        id=row["id"], cluster_id=row["cluster_id"], name=row["name"],
        description=row["description"], created_at=row["created_at"],
    )


def _global_binding(row: sqlite3.Row) -> GlobalBinding:
    user_id = row["user_id"]
    return GlobalBinding(
        id=row["id"], subject_kind="user" if user_id is not None else "group",
        subject=user_id if user_id is not None else row["group_name"], role=row["role"],
        created_at=row["created_at"],
    )


class AccessMixin(SQLiteBase):
    # Role templates ------------------------------------------------------------------------

    def create_template(self, template: RoleTemplate) -> RoleTemplate:
        now = time.time()
        with self._tx() as db:
            for _ in range(ID_ALLOCATION_ATTEMPTS):
                tid = template.id or new_id("rt-")
                try:
                    db.execute(
                        "INSERT INTO templates (id, doc, created_at) VALUES (?,?,?)",
                        (tid, _template_doc(template), now),
                    )
                except sqlite3.IntegrityError as e:
                    if template.id:
                        raise Conflict(f"a role template {tid!r} already exists") from e
                    continue
                return replace(template, id=tid, created_at=now, builtin=False)
        raise StoreError("could not allocate a role template id")

    def get_template(self, template_id: str) -> RoleTemplate:
        row = self._read_one("SELECT * FROM templates WHERE id=?", (template_id,))
        if row is None:
            raise NotFound(f"role template {template_id!r} not found")
        return _template(row)

    def list_templates(self) -> list[RoleTemplate]:
        def load(db: sqlite3.Connection) -> tuple[RoleTemplate, ...]:
            rows = db.execute("SELECT * FROM templates ORDER BY created_at").fetchall()
            return tuple(_template(r) for r in rows)

        return list(self._cached(("templates",), load))

    def update_template(self, template: RoleTemplate) -> RoleTemplate:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE templates SET doc=? WHERE id=?", (_template_doc(template), template.id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"role template {template.id!r} not found")
            row = db.execute("SELECT * FROM templates WHERE id=?", (template.id,)).fetchone()
            return _template(row)

    def delete_template(self, template_id: str) -> None:
        with self._tx() as db:
            used = db.execute(
                "SELECT (SELECT count(*) FROM bindings WHERE role=?)"
                " + (SELECT count(*) FROM global_bindings WHERE role=?)",
                (template_id, template_id),
            ).fetchone()[0]
            if used:
                raise Conflict(f"role template {template_id!r} is bound {used} time(s)")
            cur = db.execute("DELETE FROM templates WHERE id=?", (template_id,))
            if cur.rowcount == 0:
                raise NotFound(f"role template {template_id!r} not found")

    # Projects ------------------------------------------------------------------------------

    @staticmethod
    def _insert_project(
        db: sqlite3.Connection, cluster_id: str, name: str, description: str,
        project_id: str | None,
    ) -> Project:
        for _ in range(ID_ALLOCATION_ATTEMPTS):
            pid = project_id or new_id("p-")
            try:
                db.execute(
                    "INSERT INTO projects (id, cluster_id, name, description, created_at)"
                    " VALUES (?,?,?,?,?)",
                    (pid, cluster_id, name, description, time.time()),
                )
            except sqlite3.IntegrityError as e:
                msg = str(e)
                if "FOREIGN KEY" in msg:
                    raise NotFound(f"cluster {cluster_id!r} not found") from e
                if "projects.cluster_id" in msg:
                    raise Conflict(f"cluster {cluster_id} already has a project {name!r}") from e
                if project_id is not None:
                    raise Conflict(f"a project {pid!r} already exists") from e
                continue
            row = db.execute("SELECT * FROM projects WHERE id=?", (pid,)).fetchone()
            return _project(row)
        raise StoreError("could not allocate a project id")

    def create_project(
        self, cluster_id: str, name: str, description: str = "", project_id: str | None = None
    ) -> Project:
        with self._tx() as db:
            return self._insert_project(db, cluster_id, name, description, project_id)

    def get_project(self, project_id: str) -> Project:
        row = self._read_one("SELECT * FROM projects WHERE id=?", (project_id,))
        if row is None:
            raise NotFound(f"project {project_id!r} not found")
        return _project(row)

    def list_projects(self, cluster_id: str | None = None) -> list[Project]:
        def load(db: sqlite3.Connection) -> tuple[Project, ...]:
            if cluster_id is None:
                rows = db.execute("SELECT * FROM projects ORDER BY created_at").fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM projects WHERE cluster_id=? ORDER BY created_at", (cluster_id,)
                ).fetchall()
            return tuple(_project(r) for r in rows)

        return list(self._cached(("projects", cluster_id), load))

    def update_project(self, project_id: str, *, description: str) -> Project:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE projects SET description=? WHERE id=?", (description, project_id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"project {project_id!r} not found")
            return _project(db.execute("SELECT * FROM projects WHERE id=?", (project_id,))
                            .fetchone())

    def delete_project(self, project_id: str) -> None:
        """Deletes the project's bindings with it (foreign keys cascade)."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM projects WHERE id=?", (project_id,))
            if cur.rowcount == 0:
                raise NotFound(f"project {project_id!r} not found")

    # Global role bindings ------------------------------------------------------------------

    def create_global_binding(self, subject_kind: str, subject: str, role: str) -> GlobalBinding:
        if subject_kind not in SUBJECT_KINDS:
            raise StoreError(f"subject kind must be one of {SUBJECT_KINDS}")
        user_id = subject if subject_kind == "user" else None
        group = subject if subject_kind == "group" else None
        with self._tx() as db:
            for _ in range(ID_ALLOCATION_ATTEMPTS):
                bid = new_id("grb-")
                try:
                    db.execute(
                        "INSERT INTO global_bindings (id, user_id, group_name, role, created_at)"
                        " VALUES (?,?,?,?,?)",
                        (bid, user_id, group, role, time.time()),
                    )
                except sqlite3.IntegrityError as e:
                    msg = str(e)
                    if "FOREIGN KEY" in msg:
                        raise NotFound(f"user {subject!r} not found") from e
                    if "global_bindings.id" in msg:
                        continue
                    raise Conflict("this global role binding already exists") from e
                row = db.execute("SELECT * FROM global_bindings WHERE id=?", (bid,)).fetchone()
                return _global_binding(row)
        raise StoreError("could not allocate a global role binding id")

    def get_global_binding(self, binding_id: str) -> GlobalBinding:
        row = self._read_one("SELECT * FROM global_bindings WHERE id=?", (binding_id,))
        if row is None:
            raise NotFound(f"global role binding {binding_id!r} not found")
        return _global_binding(row)

    def list_global_bindings(self) -> list[GlobalBinding]:
        rows = self._read("SELECT * FROM global_bindings ORDER BY created_at")
        return [_global_binding(r) for r in rows]

    def global_bindings_for(self, user_id: str, groups: Iterable[str]) -> list[GlobalBinding]:
        group_list = tuple(groups)
        marks = ",".join("?" * len(group_list))
        where = f"(user_id=? OR group_name IN ({marks}))" if group_list else "user_id=?"

        def load(db: sqlite3.Connection) -> tuple[GlobalBinding, ...]:
            rows = db.execute(
                f"SELECT * FROM global_bindings WHERE {where} ORDER BY created_at",  # noqa: S608
                (user_id, *group_list),
            ).fetchall()
            return tuple(_global_binding(r) for r in rows)

        return list(self._cached(("global_bindings", user_id, group_list), load))

    def delete_global_binding(self, binding_id: str) -> None:
        with self._tx() as db:
            cur = db.execute("DELETE FROM global_bindings WHERE id=?", (binding_id,))
            if cur.rowcount == 0:
                raise NotFound(f"global role binding {binding_id!r} not found")
