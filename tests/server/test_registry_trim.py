"""The session registry gives the heap back to the kernel after a burst of sessions (a server
restart: thousands of TLS handshakes at once), at most every ``TRIM_DELAY_S``, and not for a
trickle of reconnects."""

from __future__ import annotations

import asyncio
import time

import pytest

from rancher_server.store.base import Cluster
from rancher_server.tunnel import registry as registry_mod
from rancher_server.tunnel.agent_auth import AgentIdentity
from rancher_server.tunnel.registry import TRIM_AFTER_CHURN, SessionRegistry

DELAY_S = 0.2  # TRIM_DELAY_S, shortened for the test


class _FakeSession:
    closed = False


def _identity(i: int) -> AgentIdentity:
    return AgentIdentity(cluster=Cluster(id=f"c-{i}", name=f"c{i}", created_at=time.time()),
                         role="cluster")


async def test_burst_of_sessions_trims_once_trickle_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[float] = []
    monkeypatch.setattr(registry_mod, "trim", lambda: trims.append(time.monotonic()))
    monkeypatch.setattr(registry_mod, "TRIM_DELAY_S", DELAY_S)
    reg = SessionRegistry()
    sessions = [(_identity(i), _FakeSession()) for i in range(TRIM_AFTER_CHURN * 3)]
    for identity, session in sessions[:TRIM_AFTER_CHURN - 1]:  # a trickle: under the bound
        await reg.add(identity, session)  # type: ignore[arg-type]
    await asyncio.sleep(DELAY_S * 2)
    assert trims == []
    start = time.monotonic()
    for identity, session in sessions[TRIM_AFTER_CHURN - 1:]:  # the burst
        await reg.add(identity, session)  # type: ignore[arg-type]
    assert trims == []  # deferred, not on the connecting session's path
    await asyncio.sleep(DELAY_S * 2)
    assert len(trims) == 1 and trims[0] - start >= DELAY_S * 0.9
    for identity, session in sessions:  # removals count too
        reg.remove(identity, session)  # type: ignore[arg-type]
    await asyncio.sleep(DELAY_S * 2)
    assert len(trims) == 2
    assert len(reg) == 0
