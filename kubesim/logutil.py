"""A module-level logger that binds lazily, after ``rancher_tunnel.logs.configure`` has run."""

from __future__ import annotations

from typing import Any

from rancher_tunnel.logs import get_logger


class LazyLogger:
    def __init__(self, **bound: Any) -> None:
        self._bound = bound

    def __getattr__(self, name: str) -> Any:
        return getattr(get_logger(**self._bound), name)
