"""Agent sessions live only as long as the secret they authenticated with: a rotated registration
token, a reset agent credential or a deleted cluster closes the sessions that used it, within
:data:`REVALIDATE_INTERVAL_S`, whichever process (REST, the CLI) made the change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from rancher_server.state import STATE
from rancher_server.store import Store, StoreError
from rancher_server.tunnel.agent_auth import still_valid
from rancher_server.tunnel.registry import SessionRegistry
from rancher_tunnel.logs import get_logger

log = get_logger(component="tunnel-revalidate")
REVALIDATE_INTERVAL_S = 1.0  # how often the store's revision is compared (a cheap PRAGMA)
WS_CLOSE_POLICY_VIOLATION = 1008
REVOKED_REASON = "agent credentials revoked"
REVOKED_CLOSE_TIMEOUT_S = 5.0


async def close_revoked(store: Store, sessions: SessionRegistry) -> int:
    """Close every session whose secret no longer names its cluster; how many were closed."""
    revoked = [e for e in sessions if not still_valid(store, e.identity)]
    for entry in revoked:
        log.warning("agent session closed: its credentials were revoked",
                    session=entry.identity.session_key, via=entry.identity.via)
        sessions.remove(entry.identity, entry.session)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                entry.session.close(WS_CLOSE_POLICY_VIOLATION, REVOKED_REASON),
                REVOKED_CLOSE_TIMEOUT_S,
            )
    return len(revoked)


async def run(store: Store, sessions: SessionRegistry, stop: asyncio.Event) -> None:
    seen = -1
    while not stop.is_set():
        try:
            revision = store.revision
            if revision != seen:
                seen = revision
                await close_revoked(store, sessions)
        except StoreError as e:  # logged, retried next interval
            log.warning("cannot re-check agent sessions", error=str(e))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REVALIDATE_INTERVAL_S)


async def revalidation_ctx(app: web.Application) -> AsyncIterator[None]:
    """``app.cleanup_ctx`` entry: the re-check task for the app's lifetime."""
    state = app[STATE]
    stop = asyncio.Event()
    task = asyncio.create_task(run(state.store, state.sessions, stop), name="agent-revalidate")
    yield
    stop.set()
    await task
