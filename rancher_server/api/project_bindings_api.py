"""Project role template bindings (``/v3/projectroletemplatebindings``, Rancher's name): give a
user or a local group a project template in one project (the template's rules apply in each of
the project's namespaces). Who may: holders of a template allowing
``projectroletemplatebindings`` in that project, from a cluster binding (``cluster-owner``) or a
binding on that project (``project-owner``; ``project-member`` reads), and only to grant what they
hold themselves. Locked templates take no new bindings."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rancher_server.access.templates import PROJECT
from rancher_server.api import schemas
from rancher_server.api.access_resources import project_binding_resource, project_ref
from rancher_server.api.authz import allowed_on, catalog, require_no_escalation, require_on
from rancher_server.api.projects_api import visible_project
from rancher_server.api.resources import collection
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.api.subjects import bindable_template, names_caller, subject_of
from rancher_server.auth.audit import audit_now
from rancher_server.store import Binding, NotFound

RESOURCE = "projectroletemplatebindings"


def _resource(ctx: Ctx, b: Binding) -> dict[str, object]:
    return project_binding_resource(b, catalog(ctx.state))


def _mine(ctx: Ctx, b: Binding) -> bool:
    return names_caller(ctx.user, b.subject_kind, b.subject)


def _may(ctx: Ctx, b: Binding, verb: str) -> bool:
    assert b.project_id is not None
    return allowed_on(ctx.state, ctx.user, b.cluster_id, RESOURCE, verb, b.project_id)


@endpoint("POST", "/v3/projectroletemplatebindings", "Bind a user or group to a project role "
          "template in one project (projectId: <cluster>:<project>)",
          body=schemas.PROJECT_BINDING_CREATE, status=201, returns="ProjectBinding")
async def create_project_binding(ctx: Ctx) -> web.Response:
    template = bindable_template(ctx.state, ctx.body["roleTemplateId"], PROJECT)
    kind, subject = subject_of(ctx.state, ctx.body)
    project = visible_project(ctx, ctx.body["projectId"])
    cid, pid = project.cluster_id, project.id
    require_on(ctx.state, ctx.user, cid, RESOURCE, "create", pid)
    require_no_escalation(ctx.state, ctx.user, template.id, cid, pid)
    binding = await asyncio.to_thread(
        ctx.state.store.create_binding, cid, kind, subject, template.id, pid)
    await audit_now(ctx.state, ctx.user, "projectbinding.create", f"binding:{binding.id}",
                    f"success {kind}:{subject} {binding.role}@{project_ref(cid, pid)}",
                    ctx.remote)
    return web.json_response(_resource(ctx, binding), status=201)


@endpoint("GET", "/v3/projectroletemplatebindings", "List project bindings: those of projects "
          "where the caller may list them, and the caller's own",
          query={"projectId": "only this project's (<cluster>:<project>)"},
          response="collection of project bindings", returns="collection:ProjectBinding")
async def list_project_bindings(ctx: Ctx) -> web.Response:
    store = ctx.state.store
    only = ctx.request.query.get("projectId")
    found: dict[str, Binding] = {}
    for c in store.list_clusters():
        for b in store.list_bindings(c.id):
            if b.project_id is None or b.id in found:
                continue
            if only is not None and project_ref(b.cluster_id, b.project_id) != only:
                continue
            if _mine(ctx, b) or _may(ctx, b, "list"):
                found[b.id] = b
    return collection("projectRoleTemplateBinding", (_resource(ctx, b) for b in found.values()))


def _visible_binding(ctx: Ctx, verb: str) -> Binding:
    """404 unless the caller may see the binding; 403 naming what is missing unless they may
    ``verb`` it."""
    b = ctx.state.store.get_binding(ctx.request.match_info["id"])
    if b.project_id is None:
        raise NotFound(f"binding {b.id!r} not found (a cluster binding: see "
                       "/v3/clusterroletemplatebindings)")
    if not _mine(ctx, b) and not _may(ctx, b, "get"):
        raise NotFound(f"binding {b.id!r} not found")
    if verb != "get":
        require_on(ctx.state, ctx.user, b.cluster_id, RESOURCE, verb, b.project_id)
    return b


@endpoint("GET", "/v3/projectroletemplatebindings/{id}", "Get a project binding",
          returns="ProjectBinding")
async def get_project_binding(ctx: Ctx) -> web.Response:
    return web.json_response(_resource(ctx, _visible_binding(ctx, "get")))


@endpoint("DELETE", "/v3/projectroletemplatebindings/{id}", "Delete a project binding (holders "
          "of a template allowing delete projectroletemplatebindings in that project)",
          response="the deleted binding", returns="ProjectBinding")
async def delete_project_binding(ctx: Ctx) -> web.Response:
    b = _visible_binding(ctx, "delete")
    assert b.project_id is not None
    await asyncio.to_thread(ctx.state.store.delete_binding, b.id)
    await audit_now(ctx.state, ctx.user, "projectbinding.delete", f"binding:{b.id}",
                    f"success {b.subject_kind}:{b.subject} "
                    f"{b.role}@{project_ref(b.cluster_id, b.project_id)}", ctx.remote)
    return web.json_response(_resource(ctx, b))
