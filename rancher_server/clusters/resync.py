"""The server's half of the picture protocol (pure): generations, rounds and their marks.

A :class:`~rancher_tunnel.messages.PictureBegin` opens a generation: its snapshot is built aside
and replaces the live picture at the first mark with ``synced`` (so a reader never sees half a
snapshot, and what the cluster no longer has disappears). Messages of any other generation are
stale and ignored. Each mark says how many picture messages its round carried; when fewer
arrived, the server asks for a new generation instead of acknowledging, so nothing the agent sent
is ever silently missing."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from rancher_server.clusters.picture import Change, ClusterPicture
from rancher_tunnel.messages import (
    ClusterStats,
    Event,
    Health,
    Message,
    NamespaceInfo,
    NodeInfo,
    NodeStats,
    PictureAck,
    PictureBegin,
    PictureMark,
    PictureResync,
    Removed,
)

PICTURE_MESSAGES = (NodeInfo, NodeStats, ClusterStats, Event, NamespaceInfo, Health, Removed)
RATE_WINDOW_S = 10  # events per second are averaged over this many whole seconds


class RateMeter:
    """Occurrences per second over the last ``window_s`` whole seconds (one bucket a second)."""

    def __init__(self, window_s: int = RATE_WINDOW_S) -> None:
        self._window_s = window_s
        self._buckets: deque[list[int]] = deque()  # [second, count], oldest first

    def add(self, n: int = 1, now: float | None = None) -> None:
        second = int(time.monotonic() if now is None else now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([second, n])
            while len(self._buckets) > self._window_s + 1:
                self._buckets.popleft()

    def per_s(self, now: float | None = None) -> float:
        second = int(time.monotonic() if now is None else now)
        total = sum(c for s, c in self._buckets if second - self._window_s <= s < second)
        return total / self._window_s


@dataclass
class Outcome:
    changes: list[Change] = field(default_factory=list)
    reply: Message | None = None  # an acknowledgement or a resync request for the agent
    synced_now: bool = False  # the live picture just became a generation's snapshot


@dataclass
class PictureReceiver:
    live: ClusterPicture = field(default_factory=ClusterPicture)
    generation: int | None = None
    staging: ClusterPicture | None = None
    synced: bool = False  # the live picture is the current generation's (snapshot applied)
    received: int = 0  # picture messages of the current round
    resyncs_requested: int = 0
    # for the server's metrics, since the controller started
    messages_total: int = 0  # picture messages applied
    events_total: int = 0  # event messages applied (new events and repeats)
    stale_dropped: int = 0  # picture messages of another generation (or none), ignored
    agent_coalesced: int = 0  # as the agent's last mark said
    events_rate: RateMeter = field(default_factory=RateMeter)

    def receive(self, msg: Message) -> Outcome:
        if isinstance(msg, PictureBegin):
            self.generation, self.staging = msg.generation, ClusterPicture()
            self.synced, self.received = False, 0
            return Outcome()
        if isinstance(msg, PictureMark):
            return self._mark(msg)
        if not isinstance(msg, PICTURE_MESSAGES):
            return Outcome()
        if self.generation is None or getattr(msg, "generation", None) != self.generation:
            self.stale_dropped += 1
            return Outcome()  # a stale generation's
        self.received += 1
        self.messages_total += 1
        if isinstance(msg, Event):
            self.events_total += 1
            self.events_rate.add()
        if self.staging is not None:
            self.staging.apply(msg)
            return Outcome()
        return Outcome(changes=self.live.apply(msg))

    def _mark(self, msg: PictureMark) -> Outcome:
        self.agent_coalesced = msg.coalesced  # a restarted agent counts from 0: a counter reset
        if msg.generation != self.generation:
            return Outcome()
        if msg.count != self.received:
            reason = f"round {msg.seq}: {self.received} of {msg.count} messages arrived"
            self.resyncs_requested += 1
            self.generation, self.staging, self.received = None, None, 0
            return Outcome(reply=PictureResync(reason))
        self.received = 0
        out = Outcome(reply=PictureAck(msg.generation, msg.seq))
        if msg.synced and self.staging is not None:
            out.changes = self.live.replace_with(self.staging)
            self.staging, self.synced, out.synced_now = None, True, True
        return out

    def disconnected(self) -> None:
        """The agent's session ended: its generation is over (the picture stays, last known)."""
        self.generation, self.staging, self.synced, self.received = None, None, False, 0
