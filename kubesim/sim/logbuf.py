"""Per-container log buffers that tests append to and ``pods/<p>/log`` reads and follows."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from kubesim.sim.util import now

LOG_BUFFER_MAX_BYTES = 4 * 1024 * 1024  # per container; the oldest lines go first
FOLLOW_POLL_S = 0.5  # how often a follower checks that its client is still there


@dataclass(frozen=True)
class LogLine:
    time: datetime.datetime
    data: bytes  # one line, with its trailing newline


@dataclass
class ContainerLog:
    lines: list[LogLine] = field(default_factory=list)
    first_index: int = 0  # absolute index of lines[0] (older lines were evicted)
    size: int = 0
    closed: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def append(self, data: bytes) -> None:
        t = now()
        for part in data.splitlines(keepends=True):
            line = part if part.endswith(b"\n") else part + b"\n"
            self.lines.append(LogLine(t, line))
            self.size += len(line)
        while self.size > LOG_BUFFER_MAX_BYTES and self.lines:
            self.size -= len(self.lines.pop(0).data)
            self.first_index += 1
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def snapshot(self) -> tuple[int, list[LogLine]]:
        """(absolute index after the last line, the lines)."""
        return self.first_index + len(self.lines), list(self.lines)

    async def follow(
        self, start: int, alive: Callable[[], bool] = lambda: True
    ) -> AsyncIterator[LogLine]:
        """Lines from absolute index ``start`` on, waiting for new ones until closed (or until
        ``alive()`` turns false: it is polled every ``FOLLOW_POLL_S``)."""
        pos = start
        while alive():
            pos = max(pos, self.first_index)
            while pos < self.first_index + len(self.lines):
                yield self.lines[pos - self.first_index]
                pos += 1
            if self.closed:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), FOLLOW_POLL_S)


class LogBuffers:
    def __init__(self) -> None:
        self._current: dict[tuple[str, str, str], ContainerLog] = {}
        self._previous: dict[tuple[str, str, str], ContainerLog] = {}

    def get(self, namespace: str, pod: str, container: str) -> ContainerLog:
        key = (namespace, pod, container)
        buf = self._current.get(key)
        if buf is None:
            buf = self._current[key] = ContainerLog()
        return buf

    def previous(self, namespace: str, pod: str, container: str) -> ContainerLog | None:
        return self._previous.get((namespace, pod, container))

    def append(self, namespace: str, pod: str, container: str, data: bytes) -> None:
        self.get(namespace, pod, container).append(data)

    def restart(self, namespace: str, pod: str, container: str) -> None:
        """The container restarted: its log becomes the ``previous=true`` log."""
        key = (namespace, pod, container)
        old = self._current.pop(key, None)
        if old is not None:
            old.close()
            self._previous[key] = old

    def drop_pod(self, namespace: str, pod: str) -> None:
        """The pod is gone: end every follower and forget its logs."""
        for store in (self._current, self._previous):
            for key in [k for k in store if k[0] == namespace and k[1] == pod]:
                store.pop(key).close()

    def close_all(self) -> None:
        for store in (self._current, self._previous):
            for buf in store.values():
                buf.close()
