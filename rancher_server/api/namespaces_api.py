"""A cluster's namespaces and the projects they belong to (``/v3/clusters/<id>/namespaces``), and
the state of the cluster's access reconciler (``/v3/clusters/<id>/accesssync``).

A namespace belongs to a project through the annotation ``field.cattle.io/projectId:
<cluster>:<project>`` on it downstream; moving one (PUT) sets that annotation through the
cluster's reconciler, and the project bindings' rights follow it within one pass. The list comes
from the reconciler's watch of the cluster's namespaces (no call downstream)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rancher_server.access.desired import PROJECT_ANNOTATION
from rancher_server.access.roles import access_of
from rancher_server.api.access_resources import parse_project_ref
from rancher_server.api.authz import allowed_on, require_on
from rancher_server.api.resources import collection
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.auth.audit import audit_now
from rancher_server.auth.http import ApiError
from rancher_server.clusters.kube import KubeError
from rancher_server.proxy import ACCESS
from rancher_server.store import NotFound
from rancher_server.tunnel.registry import ClusterUnavailable

NAMESPACE_MOVE = {
    "type": "object",
    "properties": {
        "projectId": {"type": "string", "maxLength": 256,
                      "description": "<cluster>:<project>, or empty to leave every project"},
    },
    "required": ["projectId"],
    "additionalProperties": False,
}


def _cluster(ctx: Ctx) -> str:
    cluster_id = ctx.request.match_info["id"]
    ctx.state.store.get_cluster(cluster_id)  # 404 when it does not exist
    if not access_of(ctx.state.store, ctx.user, cluster_id).any and not ctx.user.is_admin:
        raise NotFound(f"cluster {cluster_id!r} not found")
    return cluster_id


def _reconciler_status(ctx: Ctx, cluster_id: str) -> dict[str, Any] | None:
    return ctx.request.app[ACCESS].status(cluster_id)


@endpoint("GET", "/v3/clusters/{id}/namespaces", "The cluster's namespaces with their project "
          "(those of the projects the caller may see)", response="collection of namespaces")
async def list_namespaces(ctx: Ctx) -> web.Response:
    cluster_id = _cluster(ctx)
    try:
        reconciler = await ctx.request.app[ACCESS].owned_reconciler(cluster_id)
    except ClusterUnavailable as e:
        raise ApiError(503, f"cluster {cluster_id} is unavailable: {e}") from e
    acc = access_of(ctx.state.store, ctx.user, cluster_id)
    see_all = allowed_on(ctx.state, ctx.user, cluster_id, "projects", "list")
    items = []
    for name, ref in sorted(reconciler.namespace_projects().items()):
        project = ref.partition(":")[2] if ref.startswith(cluster_id + ":") else ""
        if see_all or (project and project in acc.project_templates):
            items.append({"type": "namespace", "id": name, "name": name,
                          "projectId": ref if project else ""})
    return collection("namespace", items)


@endpoint("PUT", "/v3/clusters/{id}/namespaces/{name}", "Move a namespace into a project "
          "(or out of every project): its rights follow", body=NAMESPACE_MOVE,
          response="the namespace")
async def move_namespace(ctx: Ctx) -> web.Response:
    cluster_id = _cluster(ctx)
    name = ctx.request.match_info["name"]
    ref = ctx.body["projectId"]
    if ref:
        ref_cluster, project_id = parse_project_ref(ref)
        project = ctx.state.store.get_project(project_id)
        if ref_cluster != cluster_id or project.cluster_id != cluster_id:
            raise ApiError(422, f"projectId {ref!r} is not a project of cluster {cluster_id}")
    require_on(ctx.state, ctx.user, cluster_id, "namespaces", "update")
    try:
        reconciler = await ctx.request.app[ACCESS].owned_reconciler(cluster_id)
        await reconciler.set_namespace_project(name, ref)
    except ClusterUnavailable as e:
        raise ApiError(503, f"cluster {cluster_id} is unavailable: {e}") from e
    except KubeError as e:
        code = e.status if e.status in (403, 404, 409, 422) else 502
        raise ApiError(code, f"namespace {name}: {e.message}") from e
    await audit_now(ctx.state, ctx.user, "namespace.move", f"namespace:{cluster_id}/{name}",
                    f"success {ref or 'no project'}", ctx.remote)
    return web.json_response({"type": "namespace", "id": name, "name": name, "projectId": ref,
                              "annotation": PROJECT_ANNOTATION})


@endpoint("GET", "/v3/clusters/{id}/accesssync", "State of the cluster's access reconciler: "
          "objects kept, failing objects with the API server's reason, watch errors",
          response="the reconciler's state")
async def access_sync(ctx: Ctx) -> web.Response:
    cluster_id = _cluster(ctx)
    status = _reconciler_status(ctx, cluster_id)
    if status is None:
        status = {"synced": False, "running": False,
                  "detail": "no agent connected (or it reported no credential)"}
    else:
        status = {"running": True, **status}
    return web.json_response({"type": "accessSync", "clusterId": cluster_id, **status})
