"""Reconnect policy as data: a jittered exponential backoff and a retryable-error classifier
(in the style of websockets' ``client.py``)."""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Iterator

import aiohttp

from .constants import BACKOFF_CAP_S, BACKOFF_FACTOR, BACKOFF_INITIAL_S
from .errors import ProtocolError, SessionClosed

FIRST_DELAY_MAX_S = 0.5  # the first retry comes within this (uniformly random: no herd)
NON_RETRYABLE_HTTP_STATUSES = frozenset({400, 401, 403, 404, 405})


def backoff(
    initial_s: float = BACKOFF_INITIAL_S,
    factor: float = BACKOFF_FACTOR,
    cap_s: float = BACKOFF_CAP_S,
    *,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Delays before successive reconnect attempts: the first uniform in [0, FIRST_DELAY_MAX_S),
    then full jitter (uniform in [0, d]) over d = initial * factor**n capped at ``cap_s``."""
    rand = rng or random.Random()
    yield rand.uniform(0.0, min(FIRST_DELAY_MAX_S, cap_s))
    delay = initial_s
    while True:
        yield rand.uniform(0.0, delay)
        delay = min(delay * factor, cap_s)


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed connect / dropped session is worth retrying."""
    if isinstance(exc, aiohttp.WSServerHandshakeError | aiohttp.ClientResponseError):
        return exc.status not in NON_RETRYABLE_HTTP_STATUSES
    if isinstance(exc, ssl.SSLCertVerificationError | aiohttp.ClientConnectorCertificateError):
        return False  # the server's identity is wrong: retrying will not fix it
    if isinstance(exc, SessionClosed):
        return True  # the session dropped (peer gone, keepalive timeout): dial again
    if isinstance(exc, ProtocolError | aiohttp.InvalidURL | ValueError | TypeError):
        return False
    return isinstance(
        exc,
        OSError | asyncio.TimeoutError | aiohttp.ClientError | EOFError | ConnectionError,
    )
