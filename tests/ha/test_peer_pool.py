"""Peer tunnels are closed after :data:`PEER_IDLE_S` without a stream (so a deployment holds
only the tunnels its traffic needs), and kept while any stream is open."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from rancher_server.ha.peer import PEER_IDLE_S, PeerPool, _Peer
from rancher_tunnel.constants import DEFAULT_LIMITS


@dataclass
class _Stats:
    open_streams: int


class _FakeSession:
    def __init__(self) -> None:
        self.closed = False
        self.stats = _Stats(0)

    async def close(self, code: int, reason: str) -> None:
        self.closed = True


async def test_idle_tunnels_close_and_busy_ones_stay() -> None:
    pool = PeerPool("me", lambda _: None, ssl.create_default_context(), DEFAULT_LIMITS)
    idle, busy = _FakeSession(), _FakeSession()
    busy.stats.open_streams = 3
    for name, session in (("idle", idle), ("busy", busy)):
        peer = pool._peers.setdefault(name, _Peer())
        peer.session = session  # type: ignore[assignment]
    assert await pool.close_idle(0.0) == 0  # idle from now on
    assert await pool.close_idle(PEER_IDLE_S - 1) == 0
    assert await pool.close_idle(PEER_IDLE_S) == 1
    assert idle.closed and not busy.closed
    assert pool._peers["idle"].session is None
    assert pool.open_count() == 1
    busy.stats.open_streams = 0
    assert await pool.close_idle(PEER_IDLE_S + 1) == 0  # idle only from now
    assert await pool.close_idle(2 * PEER_IDLE_S + 1) == 1
    await pool.close()
