"""A live feed (server-sent events) belongs to its token: revoking the token ends the feed within
a couple of seconds, as a proxied watch is cut."""

from __future__ import annotations

import asyncio

from tests.server_api.conftest import Api

ENDED_WITHIN_S = 3.0


async def test_feed_ends_when_its_token_is_revoked(api: Api) -> None:
    admin = await api.admin()
    watcher = await api.admin()  # a second token of the same user
    resp = await api.client.get("/v3/feed", headers={"Authorization": f"Bearer {watcher}"})
    assert resp.status == 200
    first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), ENDED_WITHIN_S)
    assert first.startswith(b"event: snapshot")
    watcher_id = watcher.split(":", 1)[0]
    status, _ = await api.call("DELETE", f"/v3/tokens/{watcher_id}", admin)
    assert status == 200

    async def until_end() -> bytes:
        seen = b""
        async for chunk in resp.content.iter_any():
            seen += chunk
            if b"event: end" in seen:
                break
        return seen

    seen = await asyncio.wait_for(until_end(), ENDED_WITHIN_S)
    assert b"token revoked" in seen
    resp.release()
