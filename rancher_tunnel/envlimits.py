"""Tunnel keepalive tuning from the environment, for operators and tests:
``TUNNEL_PING_INTERVAL_S``, ``TUNNEL_PONG_TIMEOUT_S``, ``TUNNEL_SYNC_INTERVAL_S``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from rancher_tunnel.constants import DEFAULT_LIMITS, Limits

_ENV_FIELDS = {
    "TUNNEL_PING_INTERVAL_S": "ping_interval_s",
    "TUNNEL_PONG_TIMEOUT_S": "pong_timeout_s",
    "TUNNEL_SYNC_INTERVAL_S": "sync_interval_s",
}


def limits_from_env(env: Mapping[str, str] | None = None) -> Limits:
    env = os.environ if env is None else env
    changes: dict[str, float] = {}
    for var, field in _ENV_FIELDS.items():
        raw = env.get(var)
        if raw:
            try:
                value = float(raw)
            except ValueError as e:
                raise ValueError(f"{var} must be a number of seconds, got {raw!r}") from e
            if value <= 0:
                raise ValueError(f"{var} must be positive")
            changes[field] = value
    return dataclasses.replace(DEFAULT_LIMITS, **changes) if changes else DEFAULT_LIMITS  # type: ignore[arg-type]
