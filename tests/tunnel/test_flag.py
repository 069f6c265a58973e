"""``Flag``: asyncio.Event's behaviour, without a waiter queue while nobody waits."""

from __future__ import annotations

import asyncio
import sys

import pytest

from rancher_tunnel.flag import Flag

pytestmark = pytest.mark.timeout(10)


async def test_set_wakes_every_waiter_and_later_waits_return_at_once() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert flag.is_set()
    assert await asyncio.wait_for(flag.wait(), 0.1) is True
    assert "0 waiting" in repr(flag)


async def test_a_clear_right_after_set_still_wakes_those_waiting() -> None:
    flag = Flag()
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    flag.set()
    flag.clear()
    assert await asyncio.wait_for(waiter, 0.1) is True
    assert not flag.is_set()
    late = asyncio.create_task(flag.wait())  # waits for the next set()
    await asyncio.sleep(0.01)
    assert not late.done()
    flag.set()
    assert await asyncio.wait_for(late, 0.1) is True


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    flag = Flag()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flag.wait(), 0.01)
    assert "0 waiting" in repr(flag)
    staying = asyncio.create_task(flag.wait())
    leaving = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert "2 waiting" in repr(flag)
    leaving.cancel()
    await asyncio.sleep(0)
    assert leaving.cancelled()
    assert "1 waiting" in repr(flag)
    flag.set()
    assert await staying is True


def test_smaller_than_an_asyncio_event() -> None:
    """The point of it: two slots, against an Event's dict and deque."""
    event = asyncio.Event()
    event_bytes = sys.getsizeof(event) + sys.getsizeof(event.__dict__) + sys.getsizeof(
        event._waiters
    )
    assert sys.getsizeof(Flag()) * 4 < event_bytes
