"""The live picture of clusters, from their controllers (no call downstream): a cluster's nodes
and events (filtered, paginated), a summary of every cluster the caller may see, and a live feed
of changes as server-sent events (``/v3/clusters/<id>/feed``, ``/v3/feed``) that a UI follows
without polling. A caller sees only the clusters they have a role on."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from typing import Any

from aiohttp import web

from rancher_server.access.roles import cluster_roles
from rancher_server.api.clusters_api import visible_cluster
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.auth.http import ApiError
from rancher_server.auth.tokens import token_still_usable
from rancher_server.clusters.controller import ClusterController, ControllerManager
from rancher_server.clusters.feed import RESYNC, FeedItem
from rancher_server.clusters.picture import event_json, host_json, node_json

DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 1000
FEED_TOKEN_CHECK_S = 1.0  # a revoked token's feed ends within this
FEED_HEARTBEAT_S = 15.0  # an SSE comment line keeps proxies from closing an idle feed
FEED_POLL_S = 1.0  # how often an idle feed checks that the server is not shutting down
FEED_ACL_REFRESH_S = 5.0  # how often a feed of all clusters re-reads the caller's clusters
MAX_CONTINUE_CHARS = 1024


def _manager(ctx: Ctx) -> ControllerManager:
    manager = ctx.state.controllers
    if manager is None:
        raise ApiError(503, "the cluster controllers are not running")
    return manager


def _controller(ctx: Ctx) -> ClusterController:
    cluster, _ = visible_cluster(ctx, ctx.request.match_info["id"])
    ctl = _manager(ctx).get(cluster.id)
    if ctl is None:
        raise ApiError(503, f"cluster {cluster.id}'s controller is starting; retry")
    return ctl


def _page(ctx: Ctx) -> tuple[int, tuple[str, str] | None]:
    q = ctx.request.query
    try:
        limit = int(q.get("limit", DEFAULT_PAGE_LIMIT))
    except ValueError as e:
        raise ApiError(400, "limit must be an integer") from e
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ApiError(400, f"limit must be 1..{MAX_PAGE_LIMIT}")
    raw = q.get("continue", "")
    if not raw:
        return limit, None
    try:
        if len(raw) > MAX_CONTINUE_CHARS:
            raise ValueError("too long")
        after = json.loads(base64.urlsafe_b64decode(raw.encode()))
        if not (isinstance(after, list) and len(after) == 2 and all(
                isinstance(x, str) for x in after)):
            raise ValueError("not a position")
    except (ValueError, binascii.Error) as e:
        raise ApiError(400, "continue is not a token this server gave") from e
    return limit, (after[0], after[1])


def _token(position: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode()


@endpoint("GET", "/v3/clusters/{id}/nodes", "The cluster's nodes as its agent watches them: "
          "conditions, capacity, allocatable, versions, addresses, taints, and per node the CPU, "
          "memory and pods requested and limited by pod specs (and used, where the cluster "
          "serves metrics.k8s.io); host: what the node's node agent reads from /proc and /sys "
          "(facts, stats, container runtime sockets, reportedAt; null without a node agent)",
          response="collection of nodes")
async def list_cluster_nodes(ctx: Ctx) -> web.Response:
    ctl = _controller(ctx)
    pic = ctl.picture
    hosts = ctx.state.sessions.hosts_of(ctl.cluster_id)
    data = []
    for name, n in sorted(pic.nodes.items()):
        node = node_json(n, pic.node_stats.get(name))
        seen = hosts.get(name)
        node["host"] = host_json(*seen) if seen is not None else None
        data.append(node)
    return web.json_response({"type": "collection", "resourceType": "node", "data": data,
                              "clusterId": ctl.cluster_id})


@endpoint("GET", "/v3/clusters/{id}/events", "The cluster's recent events (deduplicated: one "
          "per Kubernetes event, repeats in count), newest first",
          query={"namespace": "only this namespace", "type": "Normal or Warning",
                 "involvedObject.kind": "only events about objects of this kind",
                 "involvedObject.name": "only events about objects of this name",
                 "limit": f"page size (1..{MAX_PAGE_LIMIT}, default {DEFAULT_PAGE_LIMIT})",
                 "continue": "the pagination.continue of the previous page"},
          response="collection of events with pagination")
async def list_cluster_events(ctx: Ctx) -> web.Response:
    ctl = _controller(ctx)
    q = ctx.request.query
    limit, after = _page(ctx)
    ns, etype = q.get("namespace"), q.get("type")
    kind, name = q.get("involvedObject.kind"), q.get("involvedObject.name")
    matched = []
    for key, e in ctl.picture.events.items():
        if ((ns is not None and e.namespace != ns) or (etype is not None and e.type != etype)
                or (kind is not None and e.object.get("kind") != kind)
                or (name is not None and e.object.get("name") != name)):
            continue
        matched.append(((e.last_seen, key), e))
    matched.sort(key=lambda m: m[0], reverse=True)
    if after is not None:
        matched = [m for m in matched if m[0] < after]
    page = matched[:limit]
    pagination: dict[str, Any] = {"limit": limit, "total": len(matched)}
    if len(matched) > limit:
        pagination["continue"] = _token(page[-1][0])
    return web.json_response({"type": "collection", "resourceType": "event",
                              "clusterId": ctl.cluster_id, "pagination": pagination,
                              "data": [event_json(e) for _, e in page]})


def summary_of(ctl: ClusterController, name: str) -> dict[str, Any]:
    status = ctl.status_json()
    warnings = sum(1 for e in ctl.picture.events.values() if e.type == "Warning")
    versions = sorted({n.kubelet_version for n in ctl.picture.nodes.values()
                       if n.kubelet_version})
    return {"id": ctl.cluster_id, "name": name, **status, "kubernetesVersions": versions,
            "events": len(ctl.picture.events), "warningEvents": warnings}


@endpoint("GET", "/v3/clustersummary", "Every cluster the caller may see in one answer: state "
          "and reason, nodes (ready of all), capacity, requested, used, event counts; and totals",
          response="the summary")
async def cluster_summary(ctx: Ctx) -> web.Response:
    manager = _manager(ctx)
    roles = cluster_roles(ctx.state, ctx.user)
    out = []
    for c in ctx.state.store.list_clusters():
        ctl = manager.get(c.id)
        if c.id in roles and ctl is not None:
            out.append(summary_of(ctl, c.name))
    totals: dict[str, Any] = {"clusters": len(out)}
    for s in ("active", "pending", "unavailable", "removing"):
        totals[s] = sum(1 for x in out if x["state"] == s)
    totals["nodes"] = sum(x["nodeCount"] for x in out)
    totals["nodesReady"] = sum(x["nodesReady"] for x in out)
    for figure in ("capacity", "allocatable", "requested"):
        totals[figure] = {r: sum(x[figure][r] for x in out) for r in ("cpu", "memory", "pods")}
    return web.json_response({"type": "clusterSummary", "data": out, "totals": totals})


def _sse(event: str, data: Any, item_id: int | None = None) -> bytes:
    head = f"id: {item_id}\n" if item_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _stream(ctx: Ctx, manager: ControllerManager, accepts: Any,
                  snapshot: dict[str, Any]) -> web.StreamResponse:
    follower = manager.hub.follow(accepts)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    try:
        await resp.prepare(ctx.request)
        await resp.write(_sse("snapshot", snapshot))
        next_beat = time.monotonic() + FEED_HEARTBEAT_S
        next_check = time.monotonic() + FEED_TOKEN_CHECK_S
        while not ctx.state.shutting_down and ctx.state.controllers is manager:
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + FEED_TOKEN_CHECK_S
                why = token_still_usable(ctx.state.store, ctx.user.token_id, time.time())
                if why is not None:  # a revoked token's feed ends, like a proxied watch
                    await resp.write(_sse("end", {"reason": why}))
                    break
            try:
                item: FeedItem = await asyncio.wait_for(follower.queue.get(), FEED_POLL_S)
            except TimeoutError:
                if time.monotonic() >= next_beat:
                    await resp.write(b": keepalive\n\n")
                    next_beat = time.monotonic() + FEED_HEARTBEAT_S
                continue
            if item is RESYNC:
                await resp.write(_sse("resync", {"reason": "the feed fell too far behind; "
                                                 "read the current state and follow again"}))
                break
            await resp.write(_sse("change", item.to_json(), item.seq))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        manager.hub.unfollow(follower)
    return resp


@endpoint("GET", "/v3/clusters/{id}/feed", "Server-sent events: a snapshot of the cluster "
          "(state, nodes), then every change of its picture (state, node, nodeStats, stats, "
          "event, namespace, health) as it happens", response="text/event-stream")
async def cluster_feed(ctx: Ctx) -> web.StreamResponse:
    ctl = _controller(ctx)
    cid = ctl.cluster_id
    pic = ctl.picture
    snapshot = {"cluster": cid, "status": ctl.status_json(),
                "nodes": [node_json(n, pic.node_stats.get(k)) for k, n in pic.nodes.items()]}
    return await _stream(ctx, _manager(ctx), lambda c: c == cid, snapshot)


@endpoint("GET", "/v3/feed", "Server-sent events for every cluster the caller may see: a "
          "summary, then every change", response="text/event-stream")
async def feed(ctx: Ctx) -> web.StreamResponse:
    manager = _manager(ctx)
    state, user = ctx.state, ctx.user
    visible = {"ids": set(cluster_roles(state, user)), "at": time.monotonic()}

    def accepts(cluster_id: str) -> bool:
        if time.monotonic() - float(visible["at"]) > FEED_ACL_REFRESH_S:  # type: ignore[arg-type]
            visible["ids"], visible["at"] = set(cluster_roles(state, user)), time.monotonic()
        return cluster_id in visible["ids"]  # type: ignore[operator]

    names = {c.id: c.name for c in state.store.list_clusters()}
    snapshot = {"clusters": [summary_of(ctl, names.get(cid, cid))
                             for cid, ctl in manager.controllers.items() if accepts(cid)]}
    return await _stream(ctx, manager, accepts, snapshot)
