"""The credit-window manager on its own."""

from __future__ import annotations

import pytest

from rancher_tunnel.constants import MAX_WINDOW_BYTES
from rancher_tunnel.errors import FlowControlError, LocalProtocolError, RemoteProtocolError
from rancher_tunnel.windows import ReceiveWindow, SendWindow, SessionBudget

pytestmark = pytest.mark.timeout(10)


def test_send_window_never_exceeds_credit() -> None:
    w = SendWindow(10)
    assert w.take(4) == 4
    assert w.take(100) == 6
    assert w.take(1) == 0
    w.grant(5)
    assert w.take(100) == 5
    with pytest.raises(RemoteProtocolError):
        w.grant(0)
    with pytest.raises(RemoteProtocolError, match="overflow"):
        w.grant(MAX_WINDOW_BYTES + 1)


def test_receive_window_grants_min_without_budget() -> None:
    budget = SessionBudget(0)
    rw = ReceiveWindow(budget, min_window=100, max_window=1000)
    assert rw.reserve() is False  # clipped by the empty budget
    assert rw.take_grant(0) == 100
    rw.received(100)
    with pytest.raises(FlowControlError):
        rw.received(1)
    rw.consumed(60)
    rw.reserve()
    assert rw.take_grant(50) == 60
    assert rw.committed <= 100


def test_receive_window_borrows_and_repays_budget() -> None:
    budget = SessionBudget(500)
    rw = ReceiveWindow(budget, min_window=100, max_window=1000)
    assert rw.reserve() is False
    assert rw.take_grant(0) == 600
    assert budget.used == 500 and rw.borrowed == 500
    rw.received(600)
    rw.consumed(600)  # nothing committed: everything borrowed goes back
    assert budget.used == 0 and rw.borrowed == 0
    assert rw.reserve() is False
    assert rw.take_grant(0) == 600
    rw.release()
    assert budget.used == 0 and rw.committed == 0


def test_grants_are_batched_until_threshold() -> None:
    rw = ReceiveWindow(SessionBudget(10_000), min_window=100, max_window=1000)
    rw.reserve()
    assert rw.take_grant(0) == 1000
    rw.received(1000)
    rw.consumed(10)
    rw.reserve()
    # the peer has no credit left: even a small grant goes out at once
    assert rw.take_grant(250) == 10
    rw.received(5)  # the peer still holds 5 bytes of credit, below the threshold
    rw.consumed(5)
    rw.reserve()
    assert rw.take_grant(3) == 5


def test_receive_window_rejects_bad_consume() -> None:
    rw = ReceiveWindow(SessionBudget(0), min_window=10, max_window=10)
    with pytest.raises(LocalProtocolError):
        rw.consumed(1)
    with pytest.raises(ValueError):
        ReceiveWindow(SessionBudget(0), min_window=10, max_window=5)


def test_budget_bounds_many_streams() -> None:
    budget = SessionBudget(1000)
    windows = [ReceiveWindow(budget, 100, 800) for _ in range(5)]
    total = 0
    for rw in windows:
        rw.reserve()
        total += rw.take_grant(0)
    assert total == 5 * 100 + 1000
    assert sum(rw.committed for rw in windows) <= 5 * 100 + 1000


def test_window_autotunes_up_to_its_limit_only_for_fast_streams() -> None:
    budget = SessionBudget(10_000)
    rw = ReceiveWindow(budget, min_window=100, max_window=1600, initial_window=200, now=100.0)
    rw.reserve()
    assert rw.take_grant(0) == 200
    sizes = []
    now = 100.0
    for _ in range(6):  # a whole window every millisecond: a fast stream
        now += 0.001
        rw.received(rw.granted)
        rw.consumed(rw.buffered)
        rw.autotune(now)
        rw.reserve()
        rw.take_grant(0)
        sizes.append(rw.max_window)
    assert sizes == [400, 800, 1600, 1600, 1600, 1600]
    slow = ReceiveWindow(budget, min_window=100, max_window=1600, initial_window=200, now=199.0)
    slow.reserve()
    slow.take_grant(0)
    for i in range(6):  # the same amounts, a second apart: it keeps its window
        slow.received(slow.granted)
        slow.consumed(slow.buffered)
        slow.autotune(200.0 + i)
        slow.reserve()
        slow.take_grant(0)
    assert slow.max_window == 200
