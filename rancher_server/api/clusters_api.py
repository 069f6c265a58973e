"""Clusters (``/v3/clusters``): a global role allowing ``clusters/create`` (``user``, ``admin``)
creates one (getting the agent's registration command once) and becomes its ``cluster-owner``, as
in Rancher; its owners edit and delete it; everyone lists the clusters they have a cluster or
project binding on, with a state derived from the agent session (active / disconnected /
pending)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from rancher_server.access.endpoint_config import AceConfig
from rancher_server.access.endpoint_config import get_config as get_ace_config
from rancher_server.access.endpoint_config import set_config as set_ace_config
from rancher_server.access.roles import CLUSTER_OWNER, cluster_role, cluster_roles
from rancher_server.api import schemas
from rancher_server.api.authz import require_on
from rancher_server.api.resources import NO_STORE, cluster_resource, collection
from rancher_server.api.spec import AUTH_PUBLIC, Ctx, endpoint
from rancher_server.auth.audit import audit_now
from rancher_server.auth.http import ApiError
from rancher_server.clusters.import_manifest import import_manifest
from rancher_server.clusters.laststate import load as load_last_state
from rancher_server.clusters.public_url import loopback_warning, public_url
from rancher_server.clusters.registration import create_cluster as create_registration
from rancher_server.store import Cluster, NotFound
from rancher_server.tls import ca_checksum
from rancher_server.tunnel.agent_auth import hash_token
from rancher_server.tunnel.revalidate import close_revoked

SESSION_CLOSE_ON_DELETE_TIMEOUT_S = 5.0
WS_CLOSE_NORMAL = 1000


def server_url(ctx: Ctx) -> str:
    """The public URL (agents and kubeconfigs: the setting, the flag, or the server's default),
    else the one this request came to."""
    return public_url(ctx.state.store, ctx.state.url) or (
        f"{ctx.request.scheme}://{ctx.request.host}")


def _node_agents(ctx: Ctx, cluster_id: str) -> list[tuple[str, float, dict[str, object]]]:
    """The node agents connected for this cluster, with the facts they reported at connect."""
    return [
        (e.identity.node_name, e.connected_at, dict(e.identity.facts))
        for e in ctx.state.sessions.sessions_of(cluster_id)
        if e.identity.role == "node"
    ]


def _held_elsewhere(ctx: Ctx, cluster_id: str) -> str | None:
    """Replicas on etcd: the replica holding the cluster's agent when it is not this one."""
    ha = ctx.state.ha
    if ha is None or ctx.state.sessions.is_connected(cluster_id):
        return None
    holder = ha.directory.holder_of(cluster_id)
    return holder if holder is not None and holder != ha.name else None


def _listed(ctx: Ctx, c: Cluster, role: str) -> dict[str, Any]:
    """A cluster in a list. One held by another replica shows what its owner recorded in the
    store (state, since when, node counts; a request for the cluster itself is forwarded to
    the holder and shows everything)."""
    holder = _held_elsewhere(ctx, c.id)
    if holder is None:
        return cluster_resource(c, ctx.state.sessions.is_connected(c.id), role,
                                ctx.state.sessions.reports.get(c.id), _node_agents(ctx, c.id),
                                _status(ctx, c))
    last = load_last_state(ctx.state.store, c.id)
    status = None if last is None else {**last.to_json(), "conditions": []}
    out = cluster_resource(c, True, role, None, (), status)
    out["heldBy"] = holder
    return out


def _status(ctx: Ctx, cluster: Cluster) -> dict[str, Any] | None:
    """The cluster controller's state, conditions and figures (None before it runs)."""
    manager = ctx.state.controllers
    ctl = manager.observe(cluster) if manager is not None else None
    return ctl.status_json() if ctl is not None else None


def visible_cluster(ctx: Ctx, cluster_id: str) -> tuple[Cluster, str]:
    """The cluster and the caller's role on it; 404 if it does not exist or the caller has no
    role (a non-member cannot tell the two apart)."""
    role = cluster_role(ctx.state, ctx.user, cluster_id)
    if role is None:
        raise NotFound(f"cluster {cluster_id!r} not found")
    return ctx.state.store.get_cluster(cluster_id), role


@endpoint("POST", "/v3/clusters", "Create a cluster; the answer carries its agent's registration "
          "token and command (shown once); the creator becomes its cluster-owner",
          needs=("clusters", "create"), body=schemas.CLUSTER_CREATE, status=201,
          returns="Cluster")
async def create_cluster(ctx: Ctx) -> web.Response:
    store = ctx.state.store
    reg = await asyncio.to_thread(create_registration, store, ctx.body["name"])
    try:
        owner = await asyncio.to_thread(
            store.create_binding, reg.cluster.id, "user", ctx.user.user_id, CLUSTER_OWNER)
    except BaseException:
        await asyncio.to_thread(store.delete_cluster, reg.cluster.id)
        raise
    url = server_url(ctx)
    checksum = ca_checksum(ctx.state.tls.ca_pem)
    out = cluster_resource(reg.cluster, False, CLUSTER_OWNER)
    out.update({"registrationToken": reg.token, "serverUrl": url, "caChecksum": checksum,
                "command": reg.agent_command(url, checksum),
                "manifestUrl": f"{url}/v3/import/{reg.token}.yaml",
                "importCommand": f"kubectl apply -f {url}/v3/import/{reg.token}.yaml",
                # For a server whose certificate the cluster does not trust (self-signed): the
                # manifest still carries the CA checksum, so the agent pins the server.
                "insecureImportCommand":
                    f"curl --insecure -sfL {url}/v3/import/{reg.token}.yaml | kubectl apply -f -"})
    warning = loopback_warning(url)
    if warning:
        out["warnings"] = [warning]
    await audit_now(ctx.state, ctx.user, "cluster.create", f"cluster:{reg.cluster.id}",
                    "success", ctx.remote)
    await audit_now(ctx.state, ctx.user, "binding.create", f"binding:{owner.id}",
                    f"success user:{ctx.user.user_id} {CLUSTER_OWNER}@{reg.cluster.id} (creator)",
                    ctx.remote)
    return web.json_response(out, status=201, headers=NO_STORE)


@endpoint("GET", "/v3/clusters", "List the clusters the caller has a cluster or project binding "
          "on, with state",
          response="collection of clusters", returns="collection:Cluster")
async def list_clusters(ctx: Ctx) -> web.Response:
    roles = cluster_roles(ctx.state, ctx.user)
    clusters = [c for c in ctx.state.store.list_clusters() if c.id in roles]
    return collection("cluster", (_listed(ctx, c, roles[c.id]) for c in clusters))


@endpoint("GET", "/v3/clusters/{id}", "Get a cluster the caller has a role on", returns="Cluster")
async def get_cluster(ctx: Ctx) -> web.Response:
    cluster, role = visible_cluster(ctx, ctx.request.match_info["id"])
    return web.json_response(
        cluster_resource(cluster, ctx.state.sessions.is_connected(cluster.id), role,
                         ctx.state.sessions.reports.get(cluster.id), _node_agents(ctx, cluster.id),
                         _status(ctx, cluster))
    )


@endpoint("DELETE", "/v3/clusters/{id}", "Delete a cluster (its bindings go with it; its agents "
          "are disconnected); its owners", response="the deleted cluster", returns="Cluster")
async def delete_cluster(ctx: Ctx) -> web.Response:
    cluster, _ = visible_cluster(ctx, ctx.request.match_info["id"])
    cluster_id = cluster.id
    require_on(ctx.state, ctx.user, cluster_id, "clusters", "delete")
    await asyncio.to_thread(ctx.state.store.delete_cluster, cluster_id)
    ctx.state.sessions.reports.pop(cluster_id, None)
    for entry in ctx.state.sessions.sessions_of(cluster_id):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(entry.session.close(WS_CLOSE_NORMAL, "cluster deleted"),
                                   SESSION_CLOSE_ON_DELETE_TIMEOUT_S)
    await audit_now(ctx.state, ctx.user, "cluster.delete", f"cluster:{cluster_id}", "success",
                    ctx.remote)
    return web.json_response(cluster_resource(cluster, False, CLUSTER_OWNER))


@endpoint("POST", "/v3/clusters/{id}", "Reset the cluster agent's own credential (a lost or "
          "leaked one): its sessions are closed and the next agent to register with the "
          "registration token is issued a new one; rotate the token first if it leaked too "
          "(its owners)", action="resetAgentCredential", body=schemas.EMPTY,
          returns="Cluster", response="the cluster")
async def reset_agent_credential(ctx: Ctx) -> web.Response:
    cluster, role = visible_cluster(ctx, ctx.request.match_info["id"])
    require_on(ctx.state, ctx.user, cluster.id, "clusters", "update")
    await asyncio.to_thread(ctx.state.store.clear_agent_credential, cluster.id)
    await close_revoked(ctx.state.store, ctx.state.sessions)
    await audit_now(ctx.state, ctx.user, "cluster.resetAgentCredential", f"cluster:{cluster.id}",
                    "success", ctx.remote)
    return web.json_response(
        cluster_resource(cluster, ctx.state.sessions.is_connected(cluster.id), role))


def _endpoint_resource(cluster_id: str, cfg: AceConfig) -> dict[str, object]:
    return {"type": "authorizedClusterEndpoint", "clusterId": cluster_id,
            "enabled": cfg.enabled, "fqdn": cfg.fqdn, "caCerts": cfg.ca_cert}


@endpoint("GET", "/v3/clusters/{id}/authorizedendpoint", "The cluster's authorized endpoint "
          "setting (kubectl straight to the cluster through kube-api-auth)",
          response="the setting")
async def get_authorized_endpoint(ctx: Ctx) -> web.Response:
    cluster, _ = visible_cluster(ctx, ctx.request.match_info["id"])
    return web.json_response(
        _endpoint_resource(cluster.id, get_ace_config(ctx.state.store, cluster.id)))


@endpoint("PUT", "/v3/clusters/{id}/authorizedendpoint", "Enable or disable the authorized "
          "endpoint: the server then syncs users' token hashes into the cluster for kube-api-auth, "
          "and kubeconfigs gain a <cluster>-direct context (its owners)",
          body=schemas.AUTHORIZED_ENDPOINT, response="the setting")
async def put_authorized_endpoint(ctx: Ctx) -> web.Response:
    cluster_id = visible_cluster(ctx, ctx.request.match_info["id"])[0].id
    require_on(ctx.state, ctx.user, cluster_id, "clusters", "update")
    cfg = AceConfig(enabled=bool(ctx.body["enabled"]), fqdn=str(ctx.body.get("fqdn", "")),
                    ca_cert=str(ctx.body.get("caCerts", "")))
    await asyncio.to_thread(set_ace_config, ctx.state.store, cluster_id, cfg)
    await audit_now(ctx.state, ctx.user, "cluster.authorizedendpoint", f"cluster:{cluster_id}",
                    "enabled" if cfg.enabled else "disabled", ctx.remote)
    return web.json_response(_endpoint_resource(cluster_id, cfg))


@endpoint("GET", "/v3/import/{token}.yaml", "The import manifest for the cluster whose "
          "registration token is in the path (kubectl apply -f <url>)", auth=AUTH_PUBLIC,
          response="a multi-document YAML manifest")
async def import_yaml(ctx: Ctx) -> web.Response:
    token = ctx.request.match_info["token"]
    cluster = ctx.state.store.cluster_by_token_hash(hash_token(token)) if token else None
    if cluster is None:
        raise ApiError(404, "no cluster has this registration token")
    body = import_manifest(server_url(ctx), token, ctx.state.tls.ca_checksum)
    return web.Response(text=body, content_type="application/yaml",
                        headers={"Cache-Control": "no-store"})
