"""The store is closed last when the app stops: a cluster controller, a directory refresh or the
access manager woken by a late store change must never read a closed database (seen in CI as
``sqlite3.ProgrammingError: Cannot operate on a closed database`` at teardown)."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from rancher_server.app import build_state, create_app
from rancher_server.config import ServerConfig


async def test_store_closed_after_the_tasks_that_read_it(tmp_path: Path) -> None:
    state = build_state(ServerConfig(listen="127.0.0.1:0", data_dir=tmp_path / "data"))
    app = create_app(state)
    controllers_at_close: list[object] = []
    close = state.store.close

    def recording_close() -> None:
        controllers_at_close.append(state.controllers)
        close()

    state.store.close = recording_close  # type: ignore[method-assign]
    async with TestClient(TestServer(app)) as client:
        assert state.controllers is not None  # running while the app runs
        # a change that wakes the controllers as the app stops
        state.store.create_cluster("late-change", "0" * 64)
        assert (await client.get("/ping")).status == 200
    assert controllers_at_close == [None], "the store was closed while controllers still ran"
