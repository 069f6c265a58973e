"""How late the event loop runs what is due: ``rancher_event_loop_lag_seconds`` on /metrics.

Everything the server answers (agent tunnels, the proxy, the API) shares one event loop; a
callback that holds it (a long computation, a burst of thousands of keepalives, a full garbage
collection) delays all of them. A timer set every ``LOOP_LAG_SAMPLE_S`` records how late it
fired, into a histogram an operator can alert on. At 10,000 agent sessions this is what showed
the keepalives arriving in step (loop held 13-43 ms every 5 s) and the full collections (~1 s).
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Histogram

LOOP_LAG_SAMPLE_S = 0.25  # one timer this often: negligible work, enough samples for a p99
LOOP_LAG_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0)


def loop_lag_histogram(registry: CollectorRegistry | None) -> Histogram:
    return Histogram(
        "rancher_event_loop_lag_seconds",
        "How late the server's event loop ran a timer due at a known time (sampled every "
        f"{LOOP_LAG_SAMPLE_S:g} s)", buckets=LOOP_LAG_BUCKETS_S, registry=registry)


class LoopLag:
    """Samples the loop's lateness into ``hist`` while started (:meth:`start`, :meth:`stop`)."""

    def __init__(self, hist: Histogram, sample_s: float = LOOP_LAG_SAMPLE_S) -> None:
        self.sample_s = sample_s
        self.max_s = 0.0
        self._hist = hist
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stop()
        self._loop = loop
        self._schedule(loop.time())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._loop = None

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        self._due = now + self.sample_s
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        if self._loop is None:
            return
        now = self._loop.time()
        late = max(0.0, now - self._due)
        self._hist.observe(late)
        self.max_s = max(self.max_s, late)
        self._schedule(now)
