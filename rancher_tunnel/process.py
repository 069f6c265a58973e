"""Running a service process: uvloop where available, and a stop event set by SIGTERM/SIGINT
(the shutdown trigger stays injectable: tests pass their own event to the service coroutine)."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass


def freeze_heap() -> None:
    """Move every object alive now (the modules, the configuration, the state built at start)
    out of the cyclic garbage collector's scans, for the life of the process. Without it every
    full collection walks the whole import-time heap (100,000+ objects in the server: ~50-130 ms
    of a stalled event loop, several times a second under a burst of requests, whose in-flight
    objects are what trigger them). Objects freed by reference counting are still freed; what
    is frozen is never scanned again, so this is called once the start-up work is done, not
    for objects that come and go (sessions, requests). Python's own advice for long-running
    servers (the ``gc.freeze`` documentation)."""
    gc.collect()
    gc.freeze()


def run_until_signalled(service: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``service(stop)`` on a fresh (uvloop) event loop; SIGTERM or SIGINT sets ``stop``.
    The import-time heap is frozen first (:func:`freeze_heap`)."""
    install_uvloop()
    freeze_heap()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        await service(stop)

    asyncio.run(main())
