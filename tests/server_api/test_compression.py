"""Large JSON answers are gzip-compressed for clients that accept it; small ones are not."""

from __future__ import annotations

from tests.server_api.conftest import Api


async def test_large_lists_are_compressed(api: Api) -> None:
    admin = await api.admin()
    for i in range(60):
        status, _ = await api.call("POST", "/v3/clusters", admin, json={"name": f"c{i}"})
        assert status == 201
    resp = await api.client.get("/v3/clusters", headers={
        "Authorization": f"Bearer {admin}", "Accept-Encoding": "gzip"})
    assert resp.status == 200 and resp.headers.get("Content-Encoding") == "gzip"
    assert len((await resp.json())["data"]) == 60  # aiohttp's client decompresses
    resp = await api.client.get("/v3/clusters", headers={
        "Authorization": f"Bearer {admin}", "Accept-Encoding": "identity"})
    assert "Content-Encoding" not in resp.headers
    small = await api.client.get("/v3/settings/cacerts", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers
