"""Logging policy shared by every service: structlog, JSON in production, one bound logger per
tunnel and per stream. Secrets are never passed to a logger; :func:`redact` masks the obvious
ones when a header map must be logged."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import structlog

LOG_FORMAT_ENV = "LOG_FORMAT"  # "json" (default when stderr is not a TTY) or "console"
LOG_LEVEL_ENV = "LOG_LEVEL"  # DEBUG, INFO, WARNING, ERROR

_SECRET_HEADERS = frozenset(
    {"authorization", "x-api-tunnel-token", "cookie", "set-cookie", "proxy-authorization"}
)


def configure(service: str) -> None:
    """Configure structlog and the stdlib root logger for one service process."""
    level_name = os.environ.get(LOG_LEVEL_ENV, "INFO").upper()
    level = getattr(logging, level_name, logging.INFO)
    fmt = os.environ.get(LOG_FORMAT_ENV) or ("console" if sys.stderr.isatty() else "json")
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr)
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(**bound: Any) -> Any:
    """A structlog logger with ``bound`` key/values (cluster id, stream id, ...).

    It stays lazy until first used, so module-level loggers pick up :func:`configure`."""
    return structlog.get_logger(**bound)


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` safe to log: credentials replaced by ``<redacted>``."""
    return {
        k: (
            "<redacted>"
            if k.lower() in _SECRET_HEADERS
            or (k.lower().startswith("impersonate-extra-")
            and "token" in k.lower())
            else v
        )
        for k, v in headers.items()
    }
