"""What the SQLite store's parts share: the connection, its lock, transactions and id allocation."""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rancher_server.store.base import StorageUnavailable

ID_SUFFIX_LEN = 5  # Rancher-style short ids: "c-xxxxx", "u-xxxxx", "token-xxxxx"
ID_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels (no words), no look-alikes
ID_ALLOCATION_ATTEMPTS = 10
REVISION_SETTING = "store.revision"  # bumped by every commit that is not bookkeeping
READ_CACHE_MAX_ENTRIES = 10_000  # cleared whole when full (and on every commit anywhere)

T = TypeVar("T")


def storage_failure(e: sqlite3.Error) -> bool:
    """An error of the storage itself, not of the statement's data (constraints)."""
    return isinstance(e, sqlite3.OperationalError | sqlite3.InternalError) or (
        type(e) is sqlite3.DatabaseError
    )


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turns SQLite's I/O, lock and corruption errors into :class:`StorageUnavailable`."""
    try:
        yield
    except sqlite3.Error as e:
        if storage_failure(e):
            raise StorageUnavailable(f"storage failed: {e}") from e
        raise


def new_id(prefix: str, length: int = ID_SUFFIX_LEN) -> str:
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


class SQLiteBase:
    """The connections and locks the mixins use. Every write is one transaction on the writer
    connection under its lock; a returned write has been committed with ``synchronous=FULL``
    (durable across kill -9). Reads use a second connection: in WAL mode they never wait for a
    writer's commit (fsync), so the request path does not stall behind an audit batch."""

    _db: sqlite3.Connection
    _lock: threading.Lock
    _rdb: sqlite3.Connection
    _rlock: threading.Lock
    _cache: dict[Hashable, Any]
    _cache_version: int = -1
    _listeners: list[Callable[[], None]]

    @property
    def revision(self) -> int:
        """Grows with every commit that changes what access depends on, from this process or
        another (the CLI): audit entries and tokens' last use do not count (see ``_tx``)."""
        with self._rlock, storage_errors():
            row = self._rdb.execute("SELECT value FROM settings WHERE name=?",
                                    (REVISION_SETTING,)).fetchone()
        return int(row[0]) if row is not None else 0

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    def _cached(self, key: Hashable, load: Callable[[sqlite3.Connection], T]) -> T:
        """``load(reader)``, remembered until anything commits to the database.

        ``PRAGMA data_version`` on the reader changes whenever another connection (our writer, the
        CLI in another process) has committed, so a hit is exactly what a read would return: a
        revoked token or a disabled user is seen on the next request. Values are immutable."""
        with self._rlock:
            version = self._rdb.execute("PRAGMA data_version").fetchone()[0]
            if version != self._cache_version:
                self._cache.clear()
                self._cache_version = version
            try:
                return self._cache[key]  # type: ignore[no-any-return]
            except KeyError:
                pass
            value = load(self._rdb)
            if len(self._cache) >= READ_CACHE_MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = value
            return value

    @contextmanager
    def _tx(self, quiet: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction. ``quiet``: bookkeeping (audit entries, tokens' last use) that
        nothing computed from the store depends on: it neither bumps :attr:`revision` nor wakes
        the listeners (under proxy load the audit commits five times a second)."""
        with self._lock, storage_errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                if not quiet:
                    self._db.execute(
                        "INSERT INTO settings (name, value) VALUES (?, '1') ON CONFLICT(name)"
                        " DO UPDATE SET value = CAST(value AS INTEGER) + 1", (REVISION_SETTING,))
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        if not quiet:
            self._notify()

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._rlock, storage_errors():
            return self._rdb.execute(sql, args).fetchall()

    def _read_one(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Row | None:
        with self._rlock, storage_errors():
            row: sqlite3.Row | None = self._rdb.execute(sql, args).fetchone()
            return row
