"""Reconnect policy: jittered exponential backoff and the retryable-error classifier."""

from __future__ import annotations

import itertools
import random
import ssl

import aiohttp
import pytest

from rancher_tunnel.backoff import FIRST_DELAY_MAX_S, backoff, is_retryable
from rancher_tunnel.errors import RemoteProtocolError, SessionClosed

pytestmark = pytest.mark.timeout(10)


def test_first_delay_is_random_and_well_under_a_second() -> None:
    firsts = {next(backoff(rng=random.Random(seed))) for seed in range(200)}
    assert all(0 <= d < FIRST_DELAY_MAX_S for d in firsts)
    assert len(firsts) > 150  # jittered: no thundering herd after a server restart


def test_growth_cap_and_full_jitter() -> None:
    delays = list(itertools.islice(backoff(0.5, 2, 30, rng=random.Random(1)), 200))
    assert all(0 <= d <= 30 for d in delays)
    tail = delays[20:]
    assert max(tail) > 20  # reaches near the cap
    assert min(tail) < 10  # full jitter: anywhere in [0, cap]
    # the upper bound grows exponentially: attempt n is bounded by initial * factor**(n-1)
    for n, d in enumerate(delays[1:8]):
        assert d <= 0.5 * 2**n + 1e-9


def _ws_error(status: int) -> aiohttp.WSServerHandshakeError:
    return aiohttp.WSServerHandshakeError(
        request_info=None,
        history=(),
        status=status,
        message="x",  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (SessionClosed("no pong"), True),
        (RemoteProtocolError("unsupported protocol version 9"), False),
        (_ws_error(503), True),
        (_ws_error(401), False),
        (_ws_error(403), False),
        (ssl.SSLCertVerificationError("bad cert"), False),
        (aiohttp.ServerDisconnectedError(), True),
        (ValueError("bad url"), False),
    ],
)
def test_is_retryable(exc: BaseException, retry: bool) -> None:
    assert is_retryable(exc) is retry
