"""Cluster role bindings (``/v3/clusterroletemplatebindings``, Rancher's name): give a user or a
local group a role on a cluster. Admins manage all; a cluster's owners manage that cluster's.
Roles and their downstream RBAC: see :mod:`rancher_server.access.roles`."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rancher_server.access.roles import CLUSTER_OWNER, cluster_role, cluster_roles
from rancher_server.api import schemas
from rancher_server.api.resources import binding_resource, collection
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.auth.audit import audit_now
from rancher_server.auth.http import ApiError
from rancher_server.store import Binding, NotFound

GROUP_PRINCIPAL_PREFIX = "local_group://"


def _may_manage(ctx: Ctx, cluster_id: str) -> bool:
    return cluster_role(ctx.state, ctx.user, cluster_id) == CLUSTER_OWNER


def _subject(body: dict[str, object]) -> tuple[str, str]:
    user_id = body.get("userId")
    group = body.get("groupName")
    principal = body.get("groupPrincipalId")
    if isinstance(principal, str) and group is None:
        if not principal.startswith(GROUP_PRINCIPAL_PREFIX):
            raise ApiError(422, f"groupPrincipalId must start with {GROUP_PRINCIPAL_PREFIX}")
        group = principal.removeprefix(GROUP_PRINCIPAL_PREFIX)
        if not group or group.startswith("system:"):
            raise ApiError(422, "invalid group name")
    if (user_id is None) == (group is None):
        raise ApiError(422, "give exactly one of userId and groupName")
    return ("user", str(user_id)) if user_id is not None else ("group", str(group))


@endpoint("POST", "/v3/clusterroletemplatebindings", "Bind a user or group to a cluster role "
          "(cluster-owner -> cluster-admin, cluster-member -> edit, read-only -> view downstream)",
          body=schemas.BINDING_CREATE, status=201, returns="Binding")
async def create_binding(ctx: Ctx) -> web.Response:
    cluster_id = ctx.body["clusterId"]
    if not _may_manage(ctx, cluster_id):
        raise NotFound(f"cluster {cluster_id!r} not found or not yours to manage")
    kind, subject = _subject(ctx.body)
    if kind == "user":
        ctx.state.store.get_user(subject)  # 404 with a clear message
    binding = await asyncio.to_thread(
        ctx.state.store.create_binding, cluster_id, kind, subject, ctx.body["roleTemplateId"]
    )
    await audit_now(ctx.state, ctx.user, "binding.create", f"binding:{binding.id}",
                    f"success {kind}:{subject} {binding.role}@{cluster_id}", ctx.remote)
    return web.json_response(binding_resource(binding), status=201)


@endpoint("GET", "/v3/clusterroletemplatebindings", "List bindings: admins all; others those of "
          "clusters they own and their own", query={"clusterId": "only this cluster's"},
          response="collection of bindings", returns="collection:Binding")
async def list_bindings(ctx: Ctx) -> web.Response:
    only = ctx.request.query.get("clusterId")
    if ctx.user.is_admin:
        bindings = ctx.state.store.list_bindings(only)
    else:
        owned = {cid for cid, r in cluster_roles(ctx.state, ctx.user).items()
                 if r == CLUSTER_OWNER}
        mine = ctx.state.store.bindings_for(ctx.user.user_id, ctx.user.groups)
        by_id: dict[str, Binding] = {b.id: b for b in mine}
        for cid in owned:
            by_id.update({b.id: b for b in ctx.state.store.list_bindings(cid)})
        bindings = sorted(by_id.values(), key=lambda b: b.created_at)
        if only:
            bindings = [b for b in bindings if b.cluster_id == only]
    return collection("clusterRoleTemplateBinding", (binding_resource(b) for b in bindings))


def _managed_binding(ctx: Ctx) -> Binding:
    binding = ctx.state.store.get_binding(ctx.request.match_info["id"])
    if not _may_manage(ctx, binding.cluster_id):
        raise NotFound(f"binding {binding.id!r} not found")
    return binding


@endpoint("GET", "/v3/clusterroletemplatebindings/{id}", "Get a binding of a cluster you own",
          returns="Binding")
async def get_binding(ctx: Ctx) -> web.Response:
    return web.json_response(binding_resource(_managed_binding(ctx)))


@endpoint("DELETE", "/v3/clusterroletemplatebindings/{id}", "Delete a binding of a cluster you "
          "own", response="the deleted binding", returns="Binding")
async def delete_binding(ctx: Ctx) -> web.Response:
    binding = _managed_binding(ctx)
    await asyncio.to_thread(ctx.state.store.delete_binding, binding.id)
    await audit_now(ctx.state, ctx.user, "binding.delete", f"binding:{binding.id}", "success",
                    ctx.remote)
    return web.json_response(binding_resource(binding))
