"""Cluster role template bindings (``/v3/clusterroletemplatebindings``, Rancher's name): give a
user or a local group a role template on a whole cluster (any template bindable at cluster scope:
cluster templates, and project templates that then apply in every namespace). Who may: holders of
a template allowing ``clusterroletemplatebindings`` on that cluster (``cluster-owner``,
``clusterroletemplatebindings-manage``; ``cluster-member`` reads), and only to grant what they hold
themselves. Locked templates take no new bindings. Downstream RBAC: the reconciler in
:mod:`rancher_server.access`."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rancher_server.access.roles import cluster_role
from rancher_server.access.templates import CLUSTER
from rancher_server.api import schemas
from rancher_server.api.authz import (
    allowed_on,
    catalog,
    require_no_escalation,
    require_on,
)
from rancher_server.api.resources import binding_resource, collection
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.api.subjects import bindable_template, names_caller, subject_of
from rancher_server.auth.audit import audit_now
from rancher_server.store import Binding, NotFound

RESOURCE = "clusterroletemplatebindings"


def _resource(ctx: Ctx, b: Binding) -> dict[str, object]:
    return binding_resource(b, catalog(ctx.state).downstream_roles(b.role))


def _visible_cluster(ctx: Ctx, cluster_id: str) -> None:
    """404 unless the caller has some access to the cluster (they cannot tell it exists)."""
    if cluster_role(ctx.state, ctx.user, cluster_id) is None:
        raise NotFound(f"cluster {cluster_id!r} not found")
    ctx.state.store.get_cluster(cluster_id)


@endpoint("POST", "/v3/clusterroletemplatebindings", "Bind a user or group to a role template "
          "on a cluster (the template's downstreamClusterRoles are bound in the cluster)",
          body=schemas.BINDING_CREATE, status=201, returns="Binding")
async def create_binding(ctx: Ctx) -> web.Response:
    cluster_id = ctx.body["clusterId"]
    template = bindable_template(ctx.state, ctx.body["roleTemplateId"], CLUSTER)
    kind, subject = subject_of(ctx.state, ctx.body)
    _visible_cluster(ctx, cluster_id)
    require_on(ctx.state, ctx.user, cluster_id, RESOURCE, "create")
    require_no_escalation(ctx.state, ctx.user, template.id, cluster_id)
    binding = await asyncio.to_thread(
        ctx.state.store.create_binding, cluster_id, kind, subject, template.id
    )
    await audit_now(ctx.state, ctx.user, "binding.create", f"binding:{binding.id}",
                    f"success {kind}:{subject} {binding.role}@{cluster_id}", ctx.remote)
    return web.json_response(_resource(ctx, binding), status=201)


@endpoint("GET", "/v3/clusterroletemplatebindings", "List cluster bindings: those of clusters "
          "where the caller may list them, and the caller's own",
          query={"clusterId": "only this cluster's"},
          response="collection of bindings", returns="collection:Binding")
async def list_bindings(ctx: Ctx) -> web.Response:
    only = ctx.request.query.get("clusterId")
    store = ctx.state.store
    by_id: dict[str, Binding] = {
        b.id: b for b in store.bindings_for(ctx.user.user_id, ctx.user.groups)
        if b.project_id is None
    }
    for c in store.list_clusters():
        if (only is None or c.id == only) and allowed_on(ctx.state, ctx.user, c.id, RESOURCE,
                                                         "list"):
            by_id.update({b.id: b for b in store.list_bindings(c.id) if b.project_id is None})
    bindings = sorted(by_id.values(), key=lambda b: b.created_at)
    if only:
        bindings = [b for b in bindings if b.cluster_id == only]
    return collection("clusterRoleTemplateBinding", (_resource(ctx, b) for b in bindings))


def _visible_binding(ctx: Ctx, verb: str) -> Binding:
    """The binding if the caller may ``verb`` it: 404 if they cannot see it (not theirs and not
    listable on its cluster), 403 naming what is missing if they see it but may not ``verb``."""
    binding = ctx.state.store.get_binding(ctx.request.match_info["id"])
    if binding.project_id is not None:
        raise NotFound(f"binding {binding.id!r} not found (a project binding: see "
                       "/v3/projectroletemplatebindings)")
    mine = names_caller(ctx.user, binding.subject_kind, binding.subject)
    if not mine and not allowed_on(ctx.state, ctx.user, binding.cluster_id, RESOURCE, "get"):
        raise NotFound(f"binding {binding.id!r} not found")
    if verb != "get":
        require_on(ctx.state, ctx.user, binding.cluster_id, RESOURCE, verb)
    return binding


@endpoint("GET", "/v3/clusterroletemplatebindings/{id}", "Get a cluster binding (one's own, or "
          "of a cluster where one may read them)", returns="Binding")
async def get_binding(ctx: Ctx) -> web.Response:
    return web.json_response(_resource(ctx, _visible_binding(ctx, "get")))


@endpoint("DELETE", "/v3/clusterroletemplatebindings/{id}", "Delete a cluster binding (holders "
          "of a template allowing delete clusterroletemplatebindings there)",
          response="the deleted binding", returns="Binding")
async def delete_binding(ctx: Ctx) -> web.Response:
    binding = _visible_binding(ctx, "delete")
    await asyncio.to_thread(ctx.state.store.delete_binding, binding.id)
    await audit_now(ctx.state, ctx.user, "binding.delete", f"binding:{binding.id}",
                    f"success {binding.subject_kind}:{binding.subject} "
                    f"{binding.role}@{binding.cluster_id}", ctx.remote)
    return web.json_response(_resource(ctx, binding))
