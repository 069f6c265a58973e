"""An :class:`asyncio.Event` for objects held by the thousand: the same ``set``, ``clear``,
``is_set`` and ``wait``, with no waiter queue until someone waits.

Each ``asyncio.Event`` holds a ``collections.deque`` from birth (about 760 bytes with its first
block) and an instance dict. A tunnel session kept four of them for its whole life, most never
waited on, which at 10,000 sessions was about 35 MiB of the server's memory. A :class:`Flag` is
two slots; the list of waiting futures exists only while some coroutine waits.
"""

from __future__ import annotations

import asyncio


class Flag:
    """``set()`` wakes every coroutine waiting at that moment, even if ``clear()`` follows at
    once (as with ``asyncio.Event``); a cancelled waiter leaves no trace."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def __repr__(self) -> str:
        waiting = len(self._waiters) if self._waiters else 0
        return f"<Flag {'set' if self._value else 'unset'}, {waiting} waiting>"

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        """Return True once the flag is set (at once if it is)."""
        if self._value:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [fut]
        else:
            self._waiters.append(fut)
        try:
            await fut
            return True
        finally:
            waiters = self._waiters
            if waiters is not None and fut in waiters:  # cancelled, or woken by another way
                waiters.remove(fut)
                if not waiters:
                    self._waiters = None
