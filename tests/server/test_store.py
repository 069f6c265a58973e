from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rancher_server.store import SQLiteStore, StoreError
from rancher_server.store.sqlite import MIGRATIONS


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "db")
    assert s.schema_version == len(MIGRATIONS)
    s.close()
    db = sqlite3.connect(tmp_path / "db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this server"):
        SQLiteStore(tmp_path / "db")


def test_committed_write_survives_kill9(tmp_path: Path) -> None:
    """A process that acknowledged a write and was then killed -9 loses nothing."""
    code = (
        "import os, signal, sys\n"
        "from rancher_server.store import SQLiteStore\n"
        f"s = SQLiteStore({str(tmp_path / 'db')!r})\n"
        "c = s.create_cluster('durable', 'hash')\n"
        "print(c.id, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.returncode == -9
    cid = out.stdout.strip()
    s = SQLiteStore(tmp_path / "db")
    assert s.get_cluster(cid).name == "durable"
    s.close()
