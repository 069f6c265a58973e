"""What the agent's connection loop is doing, for logs, ``/healthz`` and ``/metrics``, and the
classifier that tells a refusal of the agent's credentials from a network failure."""

from __future__ import annotations

import enum

import aiohttp

CREDENTIAL_REFUSED_STATUSES = frozenset((401, 403))


class ConnState(enum.Enum):
    CONNECTING = "connecting"  # first attempt, or retrying after a session ended
    CONNECTED = "connected"
    CREDENTIALS_REFUSED = "credentials_refused"  # the server answered 401 or 403
    SERVER_REFUSED = "server_refused"  # another HTTP answer instead of the upgrade
    UNREACHABLE = "unreachable"  # network, TLS or timeout failure


def classify(exc: BaseException) -> ConnState:
    """The state a failed connection attempt leaves the agent in."""
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        if exc.status in CREDENTIAL_REFUSED_STATUSES:
            return ConnState.CREDENTIALS_REFUSED
        return ConnState.SERVER_REFUSED
    return ConnState.UNREACHABLE


def describe(state: ConnState, status: int | None) -> str:
    """One sentence for ``/healthz`` and the log."""
    if state is ConnState.CREDENTIALS_REFUSED:
        return (
            f"the server refused this agent's credentials (HTTP {status}); "
            "check CATTLE_TOKEN and the agent's credential; retrying at the longest interval"
        )
    if state is ConnState.SERVER_REFUSED:
        return f"the server refused the tunnel (HTTP {status})"
    if state is ConnState.UNREACHABLE:
        return "cannot reach the server"
    return str(state.value)
