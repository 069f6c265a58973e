from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rancher_server.store import NotFound, SQLiteStore, StoreError
from rancher_server.store.sqlite import MIGRATIONS


def test_cluster_crud_and_token_lookup(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "db")
    c = s.create_cluster("a", "h1")
    assert c.id.startswith("c-") and c.name == "a"
    assert s.cluster_by_token_hash("h1") == c
    assert s.cluster_by_token_hash("nope") is None
    with pytest.raises(StoreError, match="already exists"):
        s.create_cluster("a", "h2")
    s.set_cluster_token_hash(c.id, "h3")
    assert s.cluster_by_token_hash("h1") is None
    reg = s.record_registration(c.id, "10.0.0.1:6443", "PEM")
    assert reg.api_endpoint == "10.0.0.1:6443" and reg.registered_at is not None
    s.delete_cluster(c.id)
    with pytest.raises(NotFound):
        s.get_cluster(c.id)
    with pytest.raises(NotFound):
        s.delete_cluster(c.id)
    s.close()


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
