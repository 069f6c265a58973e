"""The live feed of picture changes: every cluster controller publishes here, and each follower
(a server-sent events response) has its own bounded queue. A follower that falls
``FEED_QUEUE_MAX`` changes behind is cut off with a final ``resync`` item (it reconnects and
reads the current state), so a slow UI never makes the server hold changes without bound."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FEED_QUEUE_MAX = 10_000


@dataclass(frozen=True)
class FeedItem:
    seq: int
    cluster: str
    kind: str
    key: str
    data: dict[str, Any] | None
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "cluster": self.cluster, "kind": self.kind, "key": self.key,
                "removed": self.data is None, "data": self.data, "at": self.at}


RESYNC = FeedItem(0, "", "resync", "", None, 0.0)


@dataclass(eq=False)
class Follower:
    accepts: Callable[[str], bool]  # cluster id -> whether this follower may see it
    queue: asyncio.Queue[FeedItem] = field(
        default_factory=lambda: asyncio.Queue(FEED_QUEUE_MAX + 1))
    overflowed: bool = False


class FeedHub:
    def __init__(self) -> None:
        self._followers: set[Follower] = set()
        self._seq = itertools.count(1)
        self.published = 0
        self.followers_cut = 0

    def __len__(self) -> int:
        return len(self._followers)

    def follow(self, accepts: Callable[[str], bool]) -> Follower:
        f = Follower(accepts)
        self._followers.add(f)
        return f

    def unfollow(self, f: Follower) -> None:
        self._followers.discard(f)

    def publish(self, cluster: str, kind: str, key: str, data: dict[str, Any] | None) -> None:
        item = FeedItem(next(self._seq), cluster, kind, key, data, time.time())
        self.published += 1
        for f in list(self._followers):
            if f.overflowed or not f.accepts(cluster):
                continue
            if f.queue.qsize() >= FEED_QUEUE_MAX:
                f.overflowed = True
                self.followers_cut += 1
                f.queue.put_nowait(RESYNC)
                continue
            f.queue.put_nowait(item)
