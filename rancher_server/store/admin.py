"""Offline administration of the embedded SQLite store: ``rancher-server store check`` (full
integrity and foreign-key check) and ``rancher-server store backup --to FILE`` (a consistent
copy taken with SQLite's online backup, safe while the server runs; mode 0600: it holds password
and token hashes)."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from pathlib import Path

BACKUP_FILE_MODE = 0o600
BACKUP_PAGES_PER_STEP = 1024
MAX_REPORTED_PROBLEMS = 20


def add_subcommands(ssub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ssub.add_parser("check", help="check the SQLite store's integrity (pages, indexes, "
                                  "foreign keys)")
    b = ssub.add_parser("backup", help="copy the SQLite store, consistent even while the "
                                       "server runs")
    b.add_argument("--to", required=True, type=Path, help="the backup file to write (new)")


def check(db_path: Path) -> list[str]:
    """Every problem found (empty: the store is sound)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = db.execute(f"PRAGMA integrity_check({MAX_REPORTED_PROBLEMS})").fetchall()
        problems = [str(r[0]) for r in rows if r[0] != "ok"]
        for table, rowid, parent, _ in db.execute("PRAGMA foreign_key_check").fetchall()[
                :MAX_REPORTED_PROBLEMS]:
            problems.append(f"{table} row {rowid} refers to a missing {parent} row")
        return problems
    finally:
        db.close()


def backup(db_path: Path, to: Path) -> int:
    """Copy ``db_path`` to ``to`` (which must not exist); the number of pages copied."""
    fd = os.open(to, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BACKUP_FILE_MODE)
    os.close(fd)
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    dst = sqlite3.connect(str(to))
    try:
        src.backup(dst, pages=BACKUP_PAGES_PER_STEP)
        return int(dst.execute("PRAGMA page_count").fetchone()[0])
    finally:
        dst.close()
        src.close()


def run(args: argparse.Namespace, db_path: Path) -> int:
    if not db_path.exists():
        print(json.dumps({"ok": False,
                          "error": f"no store at {db_path} (give the server's --data-dir)"}))
        return 1
    try:
        if args.store_command == "check":
            problems = check(db_path)
            print(json.dumps({"ok": not problems, "problems": problems}))
            return 0 if not problems else 1
        pages = backup(db_path, args.to)
    except FileExistsError:
        print(json.dumps({"ok": False, "error": f"{args.to} exists: choose a new file"}))
        return 1
    except sqlite3.DatabaseError as e:
        print(json.dumps({"ok": False, "error": f"the store cannot be read: {e}"}))
        return 1
    print(json.dumps({"ok": True, "backup": str(args.to), "pages": pages}))
    return 0
