"""The server's aiohttp app in-process (plain HTTP via aiohttp.test_utils) with a known admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rancher_server.app import build_state, create_app
from rancher_server.auth.bootstrap import ensure_admin_in
from rancher_server.config import ServerConfig
from rancher_server.state import ServerState

ADMIN_PASSWORD = "admin-password-for-tests"
USER_PASSWORD = "user-password-for-tests"
LOGIN_PATH = "/v3-public/localProviders/local?action=login"


@dataclass
class Api:
    client: TestClient[Any, Any]
    state: ServerState

    async def call(self, method: str, path: str, token: str | None = None,
                   json: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        resp = await self.client.request(method, path, json=json, headers=headers, **kw)
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body

    async def login(self, username: str, password: str, **extra: Any) -> str:
        status, body = await self.call("POST", LOGIN_PATH,
                                       json={"username": username, "password": password, **extra})
        assert status == 201, body
        return str(body["token"])

    async def admin(self) -> str:
        return await self.login("admin", ADMIN_PASSWORD)

    async def new_user(self, admin_token: str, username: str, **extra: Any) -> dict[str, Any]:
        status, body = await self.call("POST", "/v3/users", admin_token, json={
            "username": username, "password": USER_PASSWORD, **extra})
        assert status == 201, body
        return dict(body)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    state = build_state(ServerConfig(listen="127.0.0.1:0", data_dir=tmp_path / "data"))
    ensure_admin_in(state.store, ADMIN_PASSWORD)
    app = create_app(state)
    async with TestClient(TestServer(app)) as client:
        yield Api(client, state)
