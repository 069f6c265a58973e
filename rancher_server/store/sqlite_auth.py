"""Users, their local groups and API tokens in the SQLite store."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping

from rancher_server.store.base import ApiToken, Conflict, NotFound, StoreError, User
from rancher_server.store.sqlite_common import ID_ALLOCATION_ATTEMPTS, SQLiteBase, new_id

ADMIN_GLOBAL_ROLE = "admin"
DEFAULT_GLOBAL_ROLE = "user"

GROUP_SEP = "\n"  # group names never contain a newline (the API validates them)
_USER_COLS = (
    "u.id AS u_id, u.username, u.display_name, u.password_hash, u.enabled AS u_enabled, "
    "EXISTS (SELECT 1 FROM global_bindings g WHERE g.user_id = u.id AND g.role = 'admin')"
    " AS is_admin, u.created_at AS u_created_at, "
    "(SELECT group_concat(group_name, char(10)) FROM "
    "(SELECT group_name FROM user_groups WHERE user_id = u.id ORDER BY group_name)) AS groups"
)


def _user(row: sqlite3.Row) -> User:
    groups = row["groups"]
    return User(
        id=row["u_id"], username=row["username"], display_name=row["display_name"],
        password_hash=row["password_hash"], enabled=bool(row["u_enabled"]),
        is_admin=bool(row["is_admin"]), created_at=row["u_created_at"],
        groups=tuple(groups.split(GROUP_SEP)) if groups else (),
    )


def _token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(
        id=row["id"], user_id=row["user_id"], secret_hash=row["secret_hash"], kind=row["kind"],
        description=row["description"], created_at=row["created_at"],
        expires_at=row["expires_at"], enabled=bool(row["enabled"]),
        last_used_at=row["last_used_at"],
    )


def _set_global_role(db: sqlite3.Connection, user_id: str, role: str, present: bool) -> None:
    if not present:
        db.execute("DELETE FROM global_bindings WHERE user_id=? AND role=?", (user_id, role))
        return
    db.execute(
        "INSERT OR IGNORE INTO global_bindings (id, user_id, role, created_at) VALUES (?,?,?,?)",
        (new_id("grb-"), user_id, role, time.time()),
    )


class UsersMixin(SQLiteBase):
    # Users ---------------------------------------------------------------------------------

    def _get_user_locked(self, user_id: str, db: sqlite3.Connection | None = None) -> User:
        row = (db or self._db).execute(
            f"SELECT {_USER_COLS} FROM users u WHERE u.id=?", (user_id,)  # noqa: S608
        ).fetchone()
        if row is None:
            raise NotFound(f"user {user_id!r} not found")
        return _user(row)

    def create_user(
        self, username: str, display_name: str, password_hash: str, *, is_admin: bool = False,
        groups: Iterable[str] = (),
    ) -> User:
        group_list = sorted(set(groups))
        with self._tx() as db:
            for _ in range(ID_ALLOCATION_ATTEMPTS):
                uid = new_id("u-")
                try:
                    db.execute(
                        "INSERT INTO users (id, username, display_name, password_hash,"
                        " created_at) VALUES (?,?,?,?,?)",
                        (uid, username, display_name, password_hash, time.time()),
                    )
                except sqlite3.IntegrityError as e:
                    if "users.username" in str(e):
                        raise Conflict(f"a user named {username!r} already exists") from e
                    continue
                # Rancher gives every new user the global role "user"; "admin" is a binding too.
                for role in (DEFAULT_GLOBAL_ROLE, ADMIN_GLOBAL_ROLE) if is_admin else (
                    DEFAULT_GLOBAL_ROLE,
                ):
                    _set_global_role(db, uid, role, True)
                db.executemany(
                    "INSERT INTO user_groups (user_id, group_name) VALUES (?,?)",
                    [(uid, g) for g in group_list],
                )
                return self._get_user_locked(uid)
        raise StoreError("could not allocate a user id")

    def get_user(self, user_id: str) -> User:
        with self._rlock:
            return self._get_user_locked(user_id, self._rdb)

    def user_by_username(self, username: str) -> User | None:
        row = self._read_one(
            f"SELECT {_USER_COLS} FROM users u WHERE u.username=?", (username,)  # noqa: S608
        )
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        rows = self._read(f"SELECT {_USER_COLS} FROM users u ORDER BY u.created_at")  # noqa: S608
        return [_user(r) for r in rows]

    def count_users(self) -> int:
        row = self._read_one("SELECT count(*) FROM users")
        return int(row[0]) if row else 0

    def update_user(
        self, user_id: str, *, display_name: str | None = None, enabled: bool | None = None,
        password_hash: str | None = None, is_admin: bool | None = None,
    ) -> User:
        fields: dict[str, object] = {}
        if display_name is not None:
            fields["display_name"] = display_name
        if enabled is not None:
            fields["enabled"] = int(enabled)
        if password_hash is not None:
            fields["password_hash"] = password_hash
        with self._tx() as db:
            if is_admin is not None:
                self._get_user_locked(user_id)
                _set_global_role(db, user_id, ADMIN_GLOBAL_ROLE, is_admin)
            if fields:
                sets = ", ".join(f"{k}=?" for k in fields)
                db.execute(
                    f"UPDATE users SET {sets} WHERE id=?",  # noqa: S608 - names are ours
                    (*fields.values(), user_id),
                )
            return self._get_user_locked(user_id)

    def set_user_groups(self, user_id: str, groups: Iterable[str]) -> User:
        with self._tx() as db:
            self._get_user_locked(user_id)
            db.execute("DELETE FROM user_groups WHERE user_id=?", (user_id,))
            db.executemany(
                "INSERT INTO user_groups (user_id, group_name) VALUES (?,?)",
                [(user_id, g) for g in sorted(set(groups))],
            )
            return self._get_user_locked(user_id)

    def delete_user(self, user_id: str) -> None:
        """Deletes the user's tokens, groups and bindings with it (foreign keys cascade)."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM users WHERE id=?", (user_id,))
            if cur.rowcount == 0:
                raise NotFound(f"user {user_id!r} not found")

    # Tokens --------------------------------------------------------------------------------

    def create_token(
        self, user_id: str, secret_hash: str, *, kind: str, description: str,
        expires_at: float | None, token_id: str | None = None,
    ) -> ApiToken:
        with self._tx() as db:
            for _ in range(ID_ALLOCATION_ATTEMPTS):
                tid = token_id or new_id("token-")
                try:
                    db.execute(
                        "INSERT INTO tokens (id, user_id, secret_hash, kind, description,"
                        " created_at, expires_at) VALUES (?,?,?,?,?,?,?)",
                        (tid, user_id, secret_hash, kind, description, time.time(), expires_at),
                    )
                except sqlite3.IntegrityError as e:
                    if "FOREIGN KEY" in str(e):
                        raise NotFound(f"user {user_id!r} not found") from e
                    if token_id is not None or "tokens.id" not in str(e):
                        raise StoreError(f"cannot create token: {e}") from e
                    continue
                row = db.execute("SELECT * FROM tokens WHERE id=?", (tid,)).fetchone()
                return _token(row)
        raise StoreError("could not allocate a token id")

    def get_token(self, token_id: str) -> ApiToken:
        row = self._read_one("SELECT * FROM tokens WHERE id=?", (token_id,))
        if row is None:
            raise NotFound(f"token {token_id!r} not found")
        return _token(row)

    def token_with_user(self, token_id: str) -> tuple[ApiToken, User] | None:
        """One read for the hot path (every authenticated request): the token and its user.
        Cached until the next commit (see ``_cached``)."""

        def load(db: sqlite3.Connection) -> tuple[ApiToken, User] | None:
            row = db.execute(
                f"SELECT t.*, {_USER_COLS} FROM tokens t JOIN users u"  # noqa: S608
                " ON u.id = t.user_id WHERE t.id=?",
                (token_id,),
            ).fetchone()
            return None if row is None else (_token(row), _user(row))

        return self._cached(("token", token_id), load)

    def list_tokens(self, user_id: str | None = None) -> list[ApiToken]:
        if user_id is None:
            rows = self._read("SELECT * FROM tokens ORDER BY created_at")
        else:
            rows = self._read(
                "SELECT * FROM tokens WHERE user_id=? ORDER BY created_at", (user_id,)
            )
        return [_token(r) for r in rows]

    def delete_token(self, token_id: str) -> None:
        with self._tx() as db:
            cur = db.execute("DELETE FROM tokens WHERE id=?", (token_id,))
            if cur.rowcount == 0:
                raise NotFound(f"token {token_id!r} not found")

    def touch_tokens(self, last_used: Mapping[str, float]) -> None:
        if not last_used:
            return
        with self._tx(quiet=True) as db:
            db.executemany(
                "UPDATE tokens SET last_used_at=? WHERE id=?",
                [(ts, tid) for tid, ts in last_used.items()],
            )

    def purge_expired_tokens(self, now: float) -> int:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
            )
            return int(cur.rowcount)
