"""Kubeconfigs for the authentication proxy: one cluster (Rancher's ``generateKubeconfig`` action)
or every cluster of the caller (``GET /v3/kubeconfig``). Each call issues a new API token with
description "kubeconfig" (as Rancher does), so revoking it revokes that kubeconfig only."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rancher_server.access.endpoint_config import get_config as get_ace_config
from rancher_server.access.roles import cluster_roles
from rancher_server.api.clusters_api import server_url, visible_cluster
from rancher_server.api.resources import NO_STORE
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.auth.audit import audit_now
from rancher_server.auth.constants import KUBECONFIG_TOKEN_TTL_S
from rancher_server.auth.tokens import issue_token
from rancher_server.clusters.kubeconfig import KubeconfigCluster, build_kubeconfig
from rancher_server.store import Cluster, NotFound

KUBECONFIG_TOKEN_DESCRIPTION = "kubeconfig"


def _entry(ctx: Ctx, c: Cluster) -> KubeconfigCluster:
    ace = get_ace_config(ctx.state.store, c.id)
    if not ace.enabled:
        return KubeconfigCluster(c.id, c.name)
    return KubeconfigCluster(
        c.id, c.name, direct_endpoint=ace.fqdn or c.api_endpoint,
        direct_ca_pem=ace.ca_cert or c.ca_cert,
    )


async def _kubeconfig(ctx: Ctx, clusters: list[Cluster]) -> web.Response:
    user = await asyncio.to_thread(ctx.state.store.get_user, ctx.user.user_id)
    issued = await asyncio.to_thread(
        issue_token, ctx.state.store, user, kind="api", description=KUBECONFIG_TOKEN_DESCRIPTION,
        ttl_s=KUBECONFIG_TOKEN_TTL_S,
    )
    config = build_kubeconfig(
        server_url(ctx), ctx.state.tls.ca_pem,
        [_entry(ctx, c) for c in clusters], issued.bearer, user.username,
    )
    await audit_now(ctx.state, ctx.user, "kubeconfig",
                    ",".join(f"cluster:{c.id}" for c in clusters),
                    f"success {issued.token.id}", ctx.remote)
    return web.json_response({"type": "generateKubeconfigOutput", "config": config,
                              "tokenId": issued.token.id}, headers=NO_STORE)


@endpoint("POST", "/v3/clusters/{id}", "Generate a kubeconfig for this cluster (new API token)",
          action="generateKubeconfig", response="{'config': kubeconfig YAML}",
          returns="Kubeconfig")
async def generate_kubeconfig(ctx: Ctx) -> web.Response:
    cluster, _role = visible_cluster(ctx, ctx.request.match_info["id"])
    return await _kubeconfig(ctx, [cluster])


@endpoint("GET", "/v3/kubeconfig", "A kubeconfig for every cluster of the caller (new API token)",
          response="{'config': kubeconfig YAML}", returns="Kubeconfig")
async def all_clusters_kubeconfig(ctx: Ctx) -> web.Response:
    roles = cluster_roles(ctx.state, ctx.user)
    clusters = [c for c in ctx.state.store.list_clusters() if c.id in roles]
    if not clusters:
        raise NotFound("you have no cluster to put in a kubeconfig")
    return await _kubeconfig(ctx, clusters)
