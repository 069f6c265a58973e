"""The streaming sessions (log follows, exec, attach, port-forward) open right now, so that
stopping the sim ends them instead of leaving handlers and subprocesses behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

SESSION_CLOSE_TIMEOUT_S = 2.0


class Sessions:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self.closing = False

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Track the current task (a request handler) for the duration of the block."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    def __len__(self) -> int:
        return len(self._tasks)

    async def close_all(self) -> None:
        self.closing = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=SESSION_CLOSE_TIMEOUT_S)
