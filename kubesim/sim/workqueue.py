"""A de-duplicating work queue and the single worker that runs every controller's reconcile.

Store change callbacks only enqueue keys (they never block); the worker drains the queue and
calls ``reconcile`` synchronously, so one reconcile sees a consistent store and never races
another. A reconcile that fails or asks for it is retried after a delay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Protocol

from kubesim.errors import StatusError
from kubesim.sim.store_api import Obj
from rancher_tunnel.logs import get_logger

log = get_logger(component="kubesim.sim.workqueue")

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
RETRY_DELAY_S = 0.2
MAX_RETRIES = 20


class Controller(Protocol):
    name: str

    def keys_for(self, event_type: str, group: str, resource: str, obj: Obj) -> Iterable[Key]:
        """The keys this controller must reconcile after a change to ``obj``."""
        ...

    def reconcile(self, key: Key) -> float | None:
        """Bring ``key`` to its desired state; return a delay in seconds to run again, or None."""
        ...


class WorkQueue:
    def __init__(self, controllers: list[Controller]) -> None:
        self._controllers = {c.name: c for c in controllers}
        self._queue: asyncio.Queue[tuple[str, Key]] = asyncio.Queue()
        self._pending: set[tuple[str, Key]] = set()
        self._retries: dict[tuple[str, Key], int] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    def on_change(self, event_type: str, group: str, resource: str, obj: Obj) -> None:
        """The store subscription: enqueue, never block."""
        for c in self._controllers.values():
            for key in c.keys_for(event_type, group, resource, obj):
                self.add(c.name, key)

    def add(self, controller: str, key: Key) -> None:
        item = (controller, key)
        if item in self._pending:
            return
        self._pending.add(item)
        self.idle.clear()
        self._queue.put_nowait(item)

    def add_after(self, controller: str, key: Key, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self.add(controller, key)

        handle = loop.call_later(delay_s, fire)
        self._timers.add(handle)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kubesim-sim-workqueue")

    async def stop(self) -> None:
        for h in self._timers:
            h.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            self._pending.discard(item)
            name, key = item
            delay: float | None = None
            try:
                delay = self._controllers[name].reconcile(key)
                self._retries.pop(item, None)
            except StatusError as exc:
                delay = self._retry(item, exc.message)
            except Exception as exc:  # a controller bug must not stop the others
                log.exception("reconcile failed", controller=name, key=key)
                delay = self._retry(item, str(exc))
            if delay is not None:
                self.add_after(name, key, delay)
            if self._queue.empty():
                self.idle.set()
            await asyncio.sleep(0)  # let API requests run between reconciles

    def _retry(self, item: tuple[str, Key], why: str) -> float | None:
        n = self._retries.get(item, 0) + 1
        self._retries[item] = n
        if n > MAX_RETRIES:
            log.warning("giving up on key", controller=item[0], key=item[1], error=why)
            self._retries.pop(item, None)
            return None
        return RETRY_DELAY_S
