"""Bookkeeping writes (audit entries, tokens' last use) neither bump the store's revision nor
wake its listeners: under proxy load the audit commits five times a second, and every wake makes
each cluster's reconciler recompute its desired state. Writes that access depends on do both,
from this process and from another (the CLI)."""

from __future__ import annotations

import time
from pathlib import Path

from rancher_server.store import AuditEntry, SQLiteStore


def test_bookkeeping_is_quiet_and_access_changes_are_not(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    woken: list[int] = []
    store.add_listener(lambda: woken.append(1))
    user = store.create_user("u", "U", "x")
    tok = store.create_token(user.id, "$3:1:s:h", kind="api", description="", expires_at=None)
    before, calls = store.revision, len(woken)
    store.append_audit([AuditEntry(time.time(), user.id, "proxy", "c-1 GET /api", "ok", "")])
    store.touch_tokens({tok.id: time.time()})
    store.purge_audit(0.0)
    assert store.revision == before and len(woken) == calls
    cluster = store.create_cluster("c", "h")
    store.create_binding(cluster.id, "user", user.id, "read-only")
    assert store.revision > before and len(woken) > calls
    # Another process's write (another connection) is seen in the revision too.
    seen = store.revision
    other = SQLiteStore(tmp_path / "db")
    other.set_user_groups(user.id, ["devs"])
    other.close()
    assert store.revision > seen
    store.close()
