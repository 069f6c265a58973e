"""The watch cache's window (rules/watch-old-resourceversion-window.json): it grows while its
oldest event is fresh, evicts otherwise, and a watch is too old only before oldest - 1."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim import errors
from kubesim.watchcache import WatchCache

FRESH_S = 75.0
LOWER = 4
UPPER = 64


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cm(name: str, data: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "data": {"k": data}}


def cache(clock: FakeClock) -> WatchCache:
    return WatchCache(clock, FRESH_S, LOWER, UPPER)


def test_a_fresh_cache_replays_everything_since_its_list() -> None:
    wc = cache(FakeClock())
    for rv in range(1, 41):
        wc.record(rv, "ADDED", "", "configmaps", cm(f"c{rv}"))
    assert [e.revision for e in wc.since(0, "", "configmaps")] == list(range(1, 41))
    assert [e.revision for e in wc.since(1, "", "configmaps")] == list(range(2, 41))


def test_old_events_are_evicted_only_when_full_and_stale() -> None:
    clock = FakeClock()
    wc = cache(clock)
    for rv in range(1, 5):  # fills the lower bound
        wc.record(rv, "ADDED", "", "configmaps", cm(f"c{rv}"))
    clock.now += FRESH_S + 3
    for rv in range(5, 7):  # full and stale: the two oldest go
        wc.record(rv, "ADDED", "", "configmaps", cm(f"c{rv}"))
    assert [e.revision for e in wc.since(2, "", "configmaps")] == [3, 4, 5, 6]
    with pytest.raises(errors.StatusError) as info:
        wc.since(1, "", "configmaps")
    assert (info.value.code, info.value.reason) == (410, "Expired")
    assert info.value.message == "too old resource version: 1 (2)"


def test_a_burst_within_the_fresh_duration_grows_the_window() -> None:
    clock = FakeClock()
    wc = cache(clock)
    for rv in range(1, UPPER + 1):
        clock.now += 0.01
        wc.record(rv, "ADDED", "", "configmaps", cm(f"c{rv}"))
    assert len(wc.since(0, "", "configmaps")) == UPPER
    wc.record(UPPER + 1, "ADDED", "", "configmaps", cm("over"))  # the upper bound holds
    with pytest.raises(errors.StatusError):
        wc.since(0, "", "configmaps")


def test_windows_are_per_resource() -> None:
    clock = FakeClock()
    wc = cache(clock)
    wc.record(1, "ADDED", "", "configmaps", cm("keep"))
    clock.now += FRESH_S + 1
    for rv in range(2, 200):
        wc.record(rv, "ADDED", "coordination.k8s.io", "leases", cm(f"l{rv}"))
    assert [e.revision for e in wc.since(0, "", "configmaps")] == [1]
    with pytest.raises(errors.StatusError):
        wc.since(0, "coordination.k8s.io", "leases")


def test_events_carry_the_previous_object() -> None:
    wc = cache(FakeClock())
    first = cm("a", "1")
    second = cm("a", "2")
    wc.record(1, "ADDED", "", "configmaps", first)
    wc.record(2, "MODIFIED", "", "configmaps", second)
    wc.record(3, "DELETED", "", "configmaps", second)
    assert [e.prev for e in wc.since(0, "", "configmaps")] == [None, first, second]


def test_reset_makes_older_versions_too_old() -> None:
    wc = cache(FakeClock())
    wc.record(1, "ADDED", "", "configmaps", cm("a"))
    wc.reset(5)
    with pytest.raises(errors.StatusError) as info:
        wc.since(4, "", "configmaps")
    assert info.value.message == "too old resource version: 4 (5)"
    assert wc.since(5, "", "configmaps") == []
