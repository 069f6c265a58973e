"""A store that cannot be written (here: locked by another process past the busy timeout) is a
503 with a message saying what to do, never a 500 with a traceback; reads go on (WAL)."""

from __future__ import annotations

import sqlite3

from tests.server_api.conftest import Api


async def test_locked_store_is_503_and_reads_go_on(api: Api) -> None:
    admin = await api.admin()
    db_path = api.state.config.db_path
    locker = sqlite3.connect(str(db_path), isolation_level=None, timeout=0)
    try:
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the store past the busy timeout
        status, body = await api.call("POST", "/v3/clusters", admin, json={"name": "blocked"})
        assert status == 503, body
        assert body["code"] == "ServiceUnavailable" and "retry later" in body["message"]
        status, listed = await api.call("GET", "/v3/clusters", admin)
        assert status == 200 and listed["data"] == []
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    status, _ = await api.call("POST", "/v3/clusters", admin, json={"name": "unblocked"})
    assert status == 201
