"""The watch cache: per resource, a window of recent events that a watch from an old
resourceVersion replays, as kube-apiserver's ``storage/cacher/watch_cache.go`` keeps it.

The window of a resource starts at 100 events and doubles (up to 102400) whenever it is full
while its oldest event is younger than 75 s; otherwise the oldest event is evicted. A watch from
resourceVersion X replays the events after X unless X < oldest - 1, where ``oldest`` is the first
event still cached (or the revision after the cache's initial list while nothing was evicted);
then it gets ``410 too old resource version: X (oldest - 1)``. Each event carries the object's
previous state, so a filtered watch can tell ADDED / MODIFIED / DELETED as the real cache does.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import errors

EVENT_FRESH_DURATION_S = 75.0  # eventFreshDuration
LOWER_BOUND_CAPACITY = 100  # defaultLowerBoundCapacity
UPPER_BOUND_CAPACITY = 100 * 1024  # defaultUpperBoundCapacity

Clock = Callable[[], float]
ObjectKey = tuple[str, str]  # namespace, name
StorageKey = tuple[str, str]  # group, resource


@dataclass(frozen=True)
class HistoryEvent:
    revision: int
    type: str
    group: str
    resource: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None = None  # the object before this event (None: it did not exist)
    recorded_s: float = 0.0


def _object_key(obj: dict[str, Any]) -> ObjectKey:
    md = obj.get("metadata") or {}
    return (str(md.get("namespace") or ""), str(md.get("name") or ""))


@dataclass
class ResourceWindow:
    """The cached events of one resource."""

    list_revision: int  # the revision of the cache's initial list (or of the last compaction)
    capacity: int = LOWER_BOUND_CAPACITY
    events: deque[HistoryEvent] = field(default_factory=deque)
    evicted: bool = False  # removedEventSinceRelist

    def oldest(self) -> int:
        """The oldest revision a watch can be served events from."""
        if not self.evicted or not self.events:
            return self.list_revision + 1
        return self.events[0].revision

    def add(self, event: HistoryEvent, fresh_s: float, lower: int, upper: int) -> None:
        full = len(self.events) >= self.capacity
        if full and event.recorded_s - self.events[0].recorded_s < fresh_s:
            self.capacity = min(self.capacity * 2, upper)
        elif full and event.recorded_s - self.events[-(self.capacity // 4)].recorded_s > fresh_s:
            self.capacity = max(self.capacity // 2, lower)
        while len(self.events) >= self.capacity:
            self.events.popleft()
            self.evicted = True
        self.events.append(event)

    def since(self, revision: int) -> list[HistoryEvent]:
        """The events after ``revision``; 410 Expired when it is older than the window."""
        oldest = self.oldest()
        if revision < oldest - 1:
            raise errors.expired(f"too old resource version: {revision} ({oldest - 1})")
        out: list[HistoryEvent] = []
        for ev in reversed(self.events):
            if ev.revision <= revision:
                break
            out.append(ev)
        out.reverse()
        return out


class WatchCache:
    """The windows of every resource, and each resource's current objects (for ``prev``)."""

    def __init__(
        self,
        clock: Clock = time.monotonic,
        fresh_s: float = EVENT_FRESH_DURATION_S,
        lower_capacity: int = LOWER_BOUND_CAPACITY,
        upper_capacity: int = UPPER_BOUND_CAPACITY,
    ) -> None:
        self._clock = clock
        self._fresh_s = fresh_s
        self._lower = lower_capacity
        self._upper = upper_capacity
        self._base = 0
        self._windows: dict[StorageKey, ResourceWindow] = {}
        self._current: dict[StorageKey, dict[ObjectKey, dict[str, Any]]] = {}

    def _window(self, key: StorageKey) -> ResourceWindow:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = ResourceWindow(self._base, self._lower)
        return window

    def record(
        self, revision: int, etype: str, group: str, resource: str, obj: dict[str, Any]
    ) -> HistoryEvent:
        key = (group, resource)
        current = self._current.setdefault(key, {})
        okey = _object_key(obj)
        prev = current.pop(okey, None) if etype == "DELETED" else current.get(okey)
        if etype != "DELETED":
            current[okey] = obj
        event = HistoryEvent(revision, etype, group, resource, obj, prev, self._clock())
        self._window(key).add(event, self._fresh_s, self._lower, self._upper)
        return event

    def since(
        self, revision: int, group: str | None = None, resource: str | None = None
    ) -> list[HistoryEvent]:
        """The events of one resource after ``revision`` (of all resources when none is named,
        in revision order); 410 Expired when ``revision`` is older than a window."""
        if group is not None and resource is not None:
            return self._window((group, resource)).since(revision)
        if revision < self._base:
            raise errors.expired(f"too old resource version: {revision} ({self._base})")
        out = [ev for w in self._windows.values() for ev in w.since(revision)]
        return sorted(out, key=lambda ev: ev.revision)

    def reset(self, revision: int) -> None:
        """Drop every cached event, as after a relist at ``revision``: older resourceVersions
        are too old from now on (the current objects are kept)."""
        self._base = revision
        self._windows.clear()
