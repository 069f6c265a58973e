"""Reconnect policy as data: exponential growth, a cap, full jitter (random first delay)."""

from __future__ import annotations

import random
from collections.abc import Iterator

from kube_api_auth.constants import BACKOFF_FACTOR, BACKOFF_INITIAL_S, BACKOFF_MAX_S


def backoff(
    initial_s: float = BACKOFF_INITIAL_S,
    cap_s: float = BACKOFF_MAX_S,
    factor: float = BACKOFF_FACTOR,
) -> Iterator[float]:
    """Endless delays: attempt n waits uniform(0, min(cap, initial * factor**n))."""
    ceiling = initial_s
    while True:
        yield random.uniform(0, ceiling)
        ceiling = min(cap_s, ceiling * factor)
