"""The JSON REST API (``/v3``, ``/v3-public``): users, tokens, clusters, role templates, global
roles and their bindings, projects, cluster and project role template bindings, kubeconfigs, the
audit log, and its OpenAPI description at ``/v3/openapi.json``. Authorization comes from role
templates (:mod:`rancher_server.api.authz`).

Every operation is declared once in the endpoint table (:mod:`rancher_server.api.spec`); the
routes and the OpenAPI document are both built from it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from rancher_server.api import (  # noqa: F401 - importing them registers their endpoints
    authconfigs_api,
    bindings_api,
    clusters_api,
    globalroles_api,
    kubeconfig_api,
    meta_api,
    namespaces_api,
    picture_api,
    project_bindings_api,
    projects_api,
    roletemplates_api,
    settings_api,
    tokens_api,
    users_api,
)
from rancher_server.api.router import build_routes
from rancher_server.api.spec import REGISTRY
from rancher_server.auth.providers.oauthservice import oauth_ctx
from rancher_server.auth.providers.service import directory_ctx
from rancher_server.auth.runtime import close_runtime
from rancher_server.clusters.controller import ControllerManager
from rancher_server.state import STATE


def routes() -> list[web.RouteDef]:
    return build_routes(REGISTRY)


async def _on_shutdown(app: web.Application) -> None:
    await close_runtime(app[STATE])


async def _controllers(app: web.Application) -> AsyncIterator[None]:
    """The cluster controllers run as long as the app (they feed the picture endpoints)."""
    state = app[STATE]
    manager = state.controllers = ControllerManager(state.store, state.sessions)
    manager.last_states.may_write = state.owns
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop), name="cluster-controllers")
    yield
    stop.set()
    await task
    state.controllers = None


def setup(app: web.Application) -> None:
    """Add the routes, run the cluster controllers, and flush the audit log when the app shuts
    down."""
    app.add_routes(routes())
    app.cleanup_ctx.append(_controllers)
    app.cleanup_ctx.append(directory_ctx)  # directory users' periodic group refresh
    app.cleanup_ctx.append(oauth_ctx)  # GitHub and OIDC users' periodic group refresh
    app.on_shutdown.append(_on_shutdown)
