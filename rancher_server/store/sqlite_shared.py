"""Failed-login records, logins in flight and shared secrets in the SQLite store. All are
bookkeeping: their writes are quiet (no revision bump, no listener woken)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from rancher_server.store.base import LoginFailures
from rancher_server.store.sqlite_common import SQLiteBase


def _failures(row: sqlite3.Row | None) -> LoginFailures | None:
    if row is None:
        return None
    return LoginFailures(failures=int(row["failures"]), last_failure=float(row["last_failure"]),
                         locked_until=float(row["locked_until"]),
                         expires_at=float(row["expires_at"]))


class SharedRecordsMixin(SQLiteBase):
    def login_failure(self, key: str) -> LoginFailures | None:
        return _failures(self._read_one("SELECT * FROM login_failures WHERE key=?", (key,)))

    def update_login_failure(
        self, key: str, change: Callable[[LoginFailures | None], LoginFailures | None]
    ) -> LoginFailures | None:
        """Read, change and write in one immediate transaction (no other writer in between)."""
        with self._tx(quiet=True) as db:
            current = _failures(
                db.execute("SELECT * FROM login_failures WHERE key=?", (key,)).fetchone())
            new = change(current)
            if new is None:
                db.execute("DELETE FROM login_failures WHERE key=?", (key,))
            else:
                db.execute(
                    "INSERT INTO login_failures (key, failures, last_failure, locked_until,"
                    " expires_at) VALUES (?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET"
                    " failures=excluded.failures, last_failure=excluded.last_failure,"
                    " locked_until=excluded.locked_until, expires_at=excluded.expires_at",
                    (key, new.failures, new.last_failure, new.locked_until, new.expires_at))
        return new

    def clear_login_failure(self, key: str) -> None:
        with self._tx(quiet=True) as db:
            db.execute("DELETE FROM login_failures WHERE key=?", (key,))

    def purge_login_failures(self, now: float) -> int:
        with self._tx(quiet=True) as db:
            return int(db.execute("DELETE FROM login_failures WHERE expires_at < ?",
                                  (now,)).rowcount)

    def put_pending_login(self, key: str, value: str, expires_at: float, keep: int) -> None:
        with self._tx(quiet=True) as db:
            db.execute("INSERT INTO pending_logins (key, value, expires_at) VALUES (?,?,?)"
                       " ON CONFLICT(key) DO UPDATE SET value=excluded.value,"
                       " expires_at=excluded.expires_at", (key, value, expires_at))
            over = int(db.execute("SELECT COUNT(*) FROM pending_logins").fetchone()[0]) - keep
            if over > 0:
                db.execute("DELETE FROM pending_logins WHERE key IN (SELECT key FROM"
                           " pending_logins ORDER BY expires_at LIMIT ?)", (over,))

    def get_pending_login(self, key: str, now: float) -> str | None:
        row = self._read_one("SELECT value FROM pending_logins WHERE key=? AND expires_at >= ?",
                             (key, now))
        return None if row is None else str(row[0])

    def take_pending_login(self, key: str, now: float) -> str | None:
        with self._tx(quiet=True) as db:
            row = db.execute("DELETE FROM pending_logins WHERE key=? RETURNING value, expires_at",
                             (key,)).fetchone()
        return None if row is None or float(row[1]) < now else str(row[0])

    def replace_pending_login(self, key: str, value: str, now: float) -> bool:
        with self._tx(quiet=True) as db:
            return int(db.execute("UPDATE pending_logins SET value=? WHERE key=? AND"
                                  " expires_at >= ?", (value, key, now)).rowcount) == 1

    def purge_pending_logins(self, now: float) -> int:
        with self._tx(quiet=True) as db:
            return int(db.execute("DELETE FROM pending_logins WHERE expires_at < ?",
                                  (now,)).rowcount)

    def put_secret_if_absent(self, name: str, value: str) -> str:
        with self._tx(quiet=True) as db:
            db.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?,?)", (name, value))
            return str(db.execute("SELECT value FROM secrets WHERE name=?",
                                  (name,)).fetchone()[0])

    def get_secret(self, name: str) -> str | None:
        row = self._read_one("SELECT value FROM secrets WHERE name=?", (name,))
        return None if row is None else str(row[0])
