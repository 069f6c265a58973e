"""Global roles (``/v3/globalroles``: the global role templates, Rancher's name) and their
bindings (``/v3/globalrolebindings``). Binding and unbinding need a global role allowing
``globalrolebindings`` (``admin``, ``users-manage``), and one grants only what one holds. The last
binding that makes an enabled user an administrator cannot be removed: nobody locks the server
out."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rancher_server.access.templates import GLOBAL
from rancher_server.api import schemas
from rancher_server.api.access_resources import global_binding_resource, template_resource
from rancher_server.api.authz import allowed_globally, catalog, require_no_escalation
from rancher_server.api.resources import collection
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.api.subjects import bindable_template, names_caller, subject_of
from rancher_server.auth.audit import audit_now
from rancher_server.auth.global_roles import administrators_without, includes_admin
from rancher_server.auth.http import ApiError
from rancher_server.store import GlobalBinding, NotFound

RESOURCE = "globalrolebindings"
KIND = "globalRole"


@endpoint("GET", "/v3/globalroles", "List the global roles (global role templates)",
          needs=("roletemplates", "list"), response="collection of global roles",
          returns="collection:RoleTemplate")
async def list_global_roles(ctx: Ctx) -> web.Response:
    cat = catalog(ctx.state)
    items = [t for t in cat.by_id.values() if t.context == GLOBAL]
    return collection(KIND, (template_resource(t, cat, KIND) for t in items))


@endpoint("GET", "/v3/globalroles/{id}", "Get a global role", needs=("roletemplates", "get"),
          returns="RoleTemplate")
async def get_global_role(ctx: Ctx) -> web.Response:
    cat = catalog(ctx.state)
    t = cat.get(ctx.request.match_info["id"])
    if t.context != GLOBAL:
        raise NotFound(f"global role {t.id!r} not found (a {t.context} template)")
    return web.json_response(template_resource(t, cat, KIND))


def _mine(ctx: Ctx, g: GlobalBinding) -> bool:
    return names_caller(ctx.user, g.subject_kind, g.subject)


@endpoint("GET", "/v3/globalrolebindings", "List global role bindings (without a global role "
          "allowing list globalrolebindings: the caller's own)",
          response="collection of global role bindings", returns="collection:GlobalBinding")
async def list_global_bindings(ctx: Ctx) -> web.Response:
    every = allowed_globally(ctx.state, ctx.user, RESOURCE, "list")
    items = [g for g in ctx.state.store.list_global_bindings() if every or _mine(ctx, g)]
    return collection("globalRoleBinding", (global_binding_resource(g) for g in items))


@endpoint("GET", "/v3/globalrolebindings/{id}", "Get a global role binding (one's own, or any "
          "with a global role allowing get globalrolebindings)", returns="GlobalBinding")
async def get_global_binding(ctx: Ctx) -> web.Response:
    g = ctx.state.store.get_global_binding(ctx.request.match_info["id"])
    if not _mine(ctx, g) and not allowed_globally(ctx.state, ctx.user, RESOURCE, "get"):
        raise NotFound(f"global role binding {g.id!r} not found")
    return web.json_response(global_binding_resource(g))


@endpoint("POST", "/v3/globalrolebindings", "Bind a user or group to a global role",
          needs=(RESOURCE, "create"), body=schemas.GLOBAL_BINDING_CREATE, status=201,
          returns="GlobalBinding")
async def create_global_binding(ctx: Ctx) -> web.Response:
    template = bindable_template(ctx.state, ctx.body["globalRoleId"], GLOBAL, "globalRoleId")
    kind, subject = subject_of(ctx.state, ctx.body)
    require_no_escalation(ctx.state, ctx.user, template.id)
    g = await asyncio.to_thread(ctx.state.store.create_global_binding, kind, subject, template.id)
    await audit_now(ctx.state, ctx.user, "globalrolebinding.create", f"globalrolebinding:{g.id}",
                    f"success {kind}:{subject} {g.role}", ctx.remote)
    return web.json_response(global_binding_resource(g), status=201)


@endpoint("DELETE", "/v3/globalrolebindings/{id}", "Remove a global role binding (never the "
          "last one that makes an enabled user an administrator)",
          needs=(RESOURCE, "delete"), response="the deleted binding", returns="GlobalBinding",
          errors={409: "the last administrator binding"})
async def delete_global_binding(ctx: Ctx) -> web.Response:
    store = ctx.state.store
    g = store.get_global_binding(ctx.request.match_info["id"])
    require_no_escalation(ctx.state, ctx.user, g.role)
    if includes_admin(store, (g.role,)) and not await asyncio.to_thread(
            administrators_without, store, g.id):
        raise ApiError(409, f"global role binding {g.id!r} is the last one that makes an "
                            "enabled user an administrator: bind another administrator first")
    await asyncio.to_thread(store.delete_global_binding, g.id)
    await audit_now(ctx.state, ctx.user, "globalrolebinding.delete", f"globalrolebinding:{g.id}",
                    f"success {g.subject_kind}:{g.subject} {g.role}", ctx.remote)
    return web.json_response(global_binding_resource(g))
