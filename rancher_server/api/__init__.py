"""The JSON REST API (``/v3``, ``/v3-public``). Filled in by the users/tokens work (issue 4)."""

from __future__ import annotations

from aiohttp import web


def routes() -> list[web.RouteDef]:
    return []
