"""Projects (``/v3/projects``, Rancher's name): named groups of namespaces in one cluster. Ids in
this API are Rancher's ``<cluster>:<project>`` (the store's own id is ``projectId``). A caller sees
every project of the clusters where their templates allow reading projects, and the projects they
are bound to. Creating needs ``projects/create`` on the cluster (``cluster-owner``,
``cluster-member``, ``projects-create``) and makes the creator the project's ``project-owner``, as
in Rancher; changing and deleting need ``projects/update`` / ``projects/delete`` there (cluster
owners). ``Default`` and ``System`` are never deleted."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rancher_server.access.roles import access_of, cluster_role
from rancher_server.access.templates import PROJECT_OWNER
from rancher_server.api import schemas
from rancher_server.api.access_resources import parse_project_ref, project_ref, project_resource
from rancher_server.api.authz import allowed_on, require_on
from rancher_server.api.resources import collection
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.auth.audit import audit_now
from rancher_server.auth.http import ApiError
from rancher_server.store import NotFound, Project
from rancher_server.store.sqlite_access import DEFAULT_PROJECTS

RESOURCE = "projects"
PERMANENT_PROJECTS = frozenset(name for name, _ in DEFAULT_PROJECTS)


def visible_project(ctx: Ctx, ref: str) -> Project:
    """The project named by ``<cluster>:<project>`` if the caller may see it; 404 otherwise (a
    caller without access cannot tell it exists)."""
    cluster_id, project_id = parse_project_ref(ref)
    missing = NotFound(f"project {ref!r} not found")
    try:
        project = ctx.state.store.get_project(project_id)
    except NotFound:
        raise missing from None
    if project.cluster_id != cluster_id:
        raise missing
    acc = access_of(ctx.state.store, ctx.user, cluster_id)
    if project_id not in acc.project_templates and not allowed_on(
            ctx.state, ctx.user, cluster_id, RESOURCE, "get", project_id):
        raise missing
    return project


@endpoint("GET", "/v3/projects", "List the projects the caller may see (all of the clusters "
          "where they may read projects, and those they are bound to)",
          query={"clusterId": "only this cluster's"}, response="collection of projects",
          returns="collection:Project")
async def list_projects(ctx: Ctx) -> web.Response:
    store = ctx.state.store
    only = ctx.request.query.get("clusterId")
    out: list[Project] = []
    for c in store.list_clusters():
        if only is not None and c.id != only:
            continue
        if allowed_on(ctx.state, ctx.user, c.id, RESOURCE, "list"):
            out.extend(store.list_projects(c.id))
            continue
        bound = access_of(store, ctx.user, c.id).project_templates
        out.extend(p for p in store.list_projects(c.id) if p.id in bound)
    return collection("project", (project_resource(p) for p in out))


@endpoint("GET", "/v3/projects/{id}", "Get a project (id <cluster>:<project>)",
          returns="Project")
async def get_project(ctx: Ctx) -> web.Response:
    return web.json_response(project_resource(visible_project(ctx, ctx.request.match_info["id"])))


@endpoint("POST", "/v3/projects", "Create a project in a cluster; the creator becomes its "
          "project-owner", body=schemas.PROJECT_CREATE, status=201, returns="Project",
          errors={409: "the cluster already has a project of this name"})
async def create_project(ctx: Ctx) -> web.Response:
    store = ctx.state.store
    cluster_id = ctx.body["clusterId"]
    if cluster_role(ctx.state, ctx.user, cluster_id) is None:
        raise NotFound(f"cluster {cluster_id!r} not found")
    require_on(ctx.state, ctx.user, cluster_id, RESOURCE, "create")
    project = await asyncio.to_thread(
        store.create_project, cluster_id, ctx.body["name"], ctx.body.get("description", ""))
    try:
        owner = await asyncio.to_thread(
            store.create_binding, cluster_id, "user", ctx.user.user_id, PROJECT_OWNER, project.id)
    except BaseException:
        await asyncio.to_thread(store.delete_project, project.id)
        raise
    ref = project_ref(cluster_id, project.id)
    await audit_now(ctx.state, ctx.user, "project.create", f"project:{ref}",
                    f"success {project.name}", ctx.remote)
    await audit_now(ctx.state, ctx.user, "projectbinding.create", f"binding:{owner.id}",
                    f"success user:{ctx.user.user_id} {PROJECT_OWNER}@{ref} (creator)",
                    ctx.remote)
    return web.json_response(project_resource(project), status=201)


@endpoint("PUT", "/v3/projects/{id}", "Change a project's description (cluster owners)",
          body=schemas.PROJECT_UPDATE, returns="Project")
async def update_project(ctx: Ctx) -> web.Response:
    project = visible_project(ctx, ctx.request.match_info["id"])
    require_on(ctx.state, ctx.user, project.cluster_id, RESOURCE, "update", project.id)
    updated = await asyncio.to_thread(
        ctx.state.store.update_project, project.id, description=ctx.body["description"])
    await audit_now(ctx.state, ctx.user, "project.update",
                    f"project:{project_ref(project.cluster_id, project.id)}",
                    "success description", ctx.remote)
    return web.json_response(project_resource(updated))


@endpoint("DELETE", "/v3/projects/{id}", "Delete a project and its bindings (cluster owners; "
          "never Default or System)", response="the deleted project", returns="Project")
async def delete_project(ctx: Ctx) -> web.Response:
    project = visible_project(ctx, ctx.request.match_info["id"])
    require_on(ctx.state, ctx.user, project.cluster_id, RESOURCE, "delete", project.id)
    if project.name in PERMANENT_PROJECTS:
        raise ApiError(422, f"the {project.name} project of every cluster cannot be deleted")
    await asyncio.to_thread(ctx.state.store.delete_project, project.id)
    await audit_now(ctx.state, ctx.user, "project.delete",
                    f"project:{project_ref(project.cluster_id, project.id)}",
                    f"success {project.name}", ctx.remote)
    return web.json_response(project_resource(project))
