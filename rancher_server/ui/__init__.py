"""The web UI, served by the server itself from this package: static assets (plain ES modules
and one stylesheet, no build step) under ``/ui/``, and the cookie session the page logs in with
(``/ui/session``). The page reads and changes everything through the REST API (``/v3``); it has
no API of its own. ``docs/ui.md`` describes what is where and the security model."""

from __future__ import annotations

from aiohttp import web

from rancher_server.ui.assets import asset, index, root_redirect
from rancher_server.ui.session import login, logout, whoami

UI_PREFIX = "/ui"


def routes() -> list[web.RouteDef]:
    return [
        web.get(UI_PREFIX, root_redirect),
        web.get(f"{UI_PREFIX}/", index),
        web.get(UI_PREFIX + "/static/{path:.+}", asset),
        web.get(f"{UI_PREFIX}/session", whoami),
        web.post(f"{UI_PREFIX}/session", login),
        web.delete(f"{UI_PREFIX}/session", logout),
    ]


def setup(app: web.Application) -> None:
    app.add_routes(routes())
