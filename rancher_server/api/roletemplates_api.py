"""Role templates (``/v3/roletemplates``, Rancher's name): the built-in ones (read-only) and
custom ones. Reading needs a global role allowing ``roletemplates`` reads (every user has it);
changing needs one allowing the change (``admin``, ``roles-manage``). A template that is bound
cannot be deleted (lock it instead: no new bindings)."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from rancher_server.access.templates import TemplateError
from rancher_server.api import schemas
from rancher_server.api.access_resources import template_resource
from rancher_server.api.authz import catalog
from rancher_server.api.resources import collection
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.auth.audit import audit_now
from rancher_server.auth.http import ApiError
from rancher_server.store import RoleTemplate

RESOURCE = "roletemplates"
TRUE = "true"


def _validated(ctx: Ctx, template: RoleTemplate) -> RoleTemplate:
    try:
        catalog(ctx.state).validate(template)
    except TemplateError as e:
        raise ApiError(422, str(e)) from e
    return template


def _custom(ctx: Ctx, verb: str) -> RoleTemplate:
    t = catalog(ctx.state).get(ctx.request.match_info["id"])
    if t.builtin:
        raise ApiError(403, f"role template {t.id!r} is built in and read-only; cannot {verb} it "
                            "(create a custom template that inherits it instead)")
    return t


@endpoint("GET", "/v3/roletemplates", "List role templates (hidden building blocks only with "
          "all=true)", needs=(RESOURCE, "list"),
          query={"context": "only this context: global, cluster or project",
                 "all": "'true': include hidden templates (Kubernetes' own roles)"},
          response="collection of role templates", returns="collection:RoleTemplate")
async def list_templates(ctx: Ctx) -> web.Response:
    cat = catalog(ctx.state)
    context = ctx.request.query.get("context")
    show_hidden = ctx.request.query.get("all") == TRUE
    items = [t for t in cat.by_id.values()
             if (context is None or t.context == context) and (show_hidden or not t.hidden)]
    return collection("roleTemplate", (template_resource(t, cat) for t in items))


@endpoint("GET", "/v3/roletemplates/{id}", "Get a role template", needs=(RESOURCE, "get"),
          returns="RoleTemplate")
async def get_template(ctx: Ctx) -> web.Response:
    cat = catalog(ctx.state)
    return web.json_response(template_resource(cat.get(ctx.request.match_info["id"]), cat))


@endpoint("POST", "/v3/roletemplates", "Create a custom role template (rules, inherited "
          "templates of the same context)", needs=(RESOURCE, "create"),
          body=schemas.ROLE_TEMPLATE_CREATE, status=201, returns="RoleTemplate")
async def create_template(ctx: Ctx) -> web.Response:
    b = ctx.body
    template = _validated(ctx, RoleTemplate(
        id=b.get("id", ""), display_name=b["name"], context=b["context"],
        rules=tuple(b.get("rules") or ()), inherits=tuple(b.get("roleTemplateIds") or ()),
        locked=bool(b.get("locked", False)), hidden=bool(b.get("hidden", False)),
        description=b.get("description", ""),
    ))
    created = await asyncio.to_thread(ctx.state.store.create_template, template)
    await audit_now(ctx.state, ctx.user, "roletemplate.create", f"roletemplate:{created.id}",
                    f"success {created.context}", ctx.remote)
    return web.json_response(template_resource(created, catalog(ctx.state)), status=201)


@endpoint("PUT", "/v3/roletemplates/{id}", "Update a custom role template (name, description, "
          "rules, inherited templates, locked, hidden); built-in ones are read-only",
          needs=(RESOURCE, "update"), body=schemas.ROLE_TEMPLATE_UPDATE, returns="RoleTemplate")
async def update_template(ctx: Ctx) -> web.Response:
    current = _custom(ctx, "update")
    b = ctx.body
    changes: dict[str, object] = {}
    for field, attr in (("name", "display_name"), ("description", "description"),
                        ("locked", "locked"), ("hidden", "hidden")):
        if b.get(field) is not None:
            changes[attr] = b[field]
    if b.get("rules") is not None:
        changes["rules"] = tuple(b["rules"])
    if b.get("roleTemplateIds") is not None:
        changes["inherits"] = tuple(b["roleTemplateIds"])
    updated = _validated(ctx, dataclasses.replace(current, **changes))  # type: ignore[arg-type]
    stored = await asyncio.to_thread(ctx.state.store.update_template, updated)
    await audit_now(ctx.state, ctx.user, "roletemplate.update", f"roletemplate:{stored.id}",
                    f"success {','.join(sorted(b))}", ctx.remote)
    return web.json_response(template_resource(stored, catalog(ctx.state)))


@endpoint("DELETE", "/v3/roletemplates/{id}", "Delete a custom role template (409 while bound)",
          needs=(RESOURCE, "delete"), response="the deleted role template",
          returns="RoleTemplate", errors={409: "the template is bound"})
async def delete_template(ctx: Ctx) -> web.Response:
    current = _custom(ctx, "delete")
    out = template_resource(current, catalog(ctx.state))
    await asyncio.to_thread(ctx.state.store.delete_template, current.id)
    await audit_now(ctx.state, ctx.user, "roletemplate.delete", f"roletemplate:{current.id}",
                    "success", ctx.remote)
    return web.json_response(out)
