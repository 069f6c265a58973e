"""``/k8s/clusters/<cluster-id>/...``: authenticate the user, check their access to the cluster
(403 before anything leaves the server), then forward to the cluster's API server through the
agent's tunnel as that user (impersonation), streaming both ways."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from rancher_server.access.impersonation import AccessNotReady, Impersonator
from rancher_server.access.manager import AccessManager
from rancher_server.access.roles import access_of
from rancher_server.auth import Principal, audit, authenticate_bearer
from rancher_server.auth.session_cookie import proxy_cookie_authorization
from rancher_server.proxy.exchange import MAX_PROXY_BODY_BYTES, body_framing, exchange
from rancher_server.proxy.headers import (
    HeaderValueError,
    downstream_request_headers,
    identity_lines,
    request_head,
)
from rancher_server.proxy.namespaces import create_in_project, is_namespace_create
from rancher_server.proxy.status import status_response
from rancher_server.proxy.streams import StreamGuard, fingerprint_of
from rancher_server.proxy.upgrade import proxy_upgrade
from rancher_server.proxy.upstream import Upstream, UpstreamPool
from rancher_server.state import STATE
from rancher_server.store import NotFound
from rancher_server.tunnel.registry import ClusterUnavailable
from rancher_tunnel.errors import DialRefused, SessionClosed
from rancher_tunnel.logs import get_logger

PREFIX = "/k8s/clusters/"

POOL: web.AppKey[UpstreamPool] = web.AppKey("upstream_pool", UpstreamPool)
IMPERSONATOR: web.AppKey[Impersonator] = web.AppKey("impersonator", Impersonator)
ACCESS: web.AppKey[AccessManager] = web.AppKey("access", AccessManager)
GUARD: web.AppKey[StreamGuard] = web.AppKey("stream_guard", StreamGuard)

log = get_logger(component="proxy")



def _split_path(raw_path: str) -> tuple[str, str]:
    """``/k8s/clusters/c-1/api/v1/pods?x=1`` -> (``c-1``, ``/api/v1/pods?x=1``), still encoded."""
    rest = raw_path[len(PREFIX) :]
    cluster_id, sep, tail = rest.partition("/")
    if not sep:
        cluster_id, _, query = cluster_id.partition("?")
        return cluster_id, "/" + (f"?{query}" if query else "")
    return cluster_id, "/" + tail


def _is_upgrade(request: web.Request) -> bool:
    conn = request.headers.get("Connection", "").lower()
    return "upgrade" in conn and bool(request.headers.get("Upgrade"))


async def handle(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    cluster_id, path_qs = _split_path(request.raw_path)
    principal = await authenticate_bearer(
        state, request.headers.get("Authorization") or proxy_cookie_authorization(request))
    if principal is None:
        return status_response(401, "Unauthorized")
    remote = request.remote
    target = f"{cluster_id} {request.method} {path_qs.split('?', 1)[0]}"
    access = access_of(state.store, principal, cluster_id)
    if not access.any:
        audit(state, principal, "proxy", target, "forbidden", remote)
        return status_response(
            403, f'user "{principal.username}" may not access cluster "{cluster_id}"'
        )
    length = request.content_length
    if length is not None and length > MAX_PROXY_BODY_BYTES:
        audit(state, principal, "proxy", target, "too-large", remote)
        return status_response(413, f"request body exceeds {MAX_PROXY_BODY_BYTES} bytes")
    try:
        if is_namespace_create(request, path_qs, access, state.store):
            # Project members create namespaces in their projects through us (the API server
            # would refuse them: they hold no cluster-wide right to create namespaces).
            return await create_in_project(
                request, principal, access, cluster_id, path_qs, request.app[ACCESS]
            )
        fingerprint = fingerprint_of(principal, access)
        with request.app[GUARD].track(principal, cluster_id, fingerprint,
                                      lambda: _close_client(request)):
            return await _forward(request, principal, fingerprint, cluster_id, path_qs, target)
    except ClusterUnavailable as e:
        try:
            state.store.get_cluster(cluster_id)
        except NotFound:
            audit(state, principal, "proxy", target, "not-found", remote)
            return status_response(404, f'clusters "{cluster_id}" not found')
        audit(state, principal, "proxy", target, "unavailable", remote)
        return status_response(503, f"cluster {cluster_id} is unavailable: {e}")
    except NotFound:
        return status_response(404, f"cluster {cluster_id} not found")


def _close_client(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


async def _forward(
    request: web.Request,
    principal: Principal,
    fingerprint: tuple[object, ...],
    cluster_id: str,
    path_qs: str,
    target: str,
) -> web.StreamResponse:
    state = request.app[STATE]
    pool = request.app[POOL]
    up = pool.get(cluster_id)
    try:
        token = await request.app[IMPERSONATOR].token_for(
            cluster_id, up.key, principal, fingerprint
        )
    except (AccessNotReady, aiohttp.ClientError, DialRefused, SessionClosed) as e:
        log.warning("impersonation setup failed", cluster=cluster_id, error=str(e))
        audit(state, principal, "proxy", target, "upstream-error", request.remote)
        return status_response(502, f"cannot set up access to cluster {cluster_id}: {e}")
    audit(state, principal, "proxy", target, "forwarded", request.remote)
    if _is_upgrade(request):
        headers = downstream_request_headers(request.headers, principal, token, upgrade=True)
        try:
            return await proxy_upgrade(request, pool.open_session(cluster_id), up, headers, path_qs)
        except (DialRefused, SessionClosed, OSError) as e:
            log.warning("upgrade failed", cluster=cluster_id, error=repr(e))
            return status_response(503, f"cluster {cluster_id} is unavailable: {e}")
    return await _forward_http(request, up, path_qs, principal, token)


async def _forward_http(
    request: web.Request,
    up: Upstream,
    path_qs: str,
    principal: Principal,
    token: str,
) -> web.StreamResponse:
    cluster_id = up.cluster_id
    try:
        head = request_head(
            request.method, path_qs, up.host_header, request.raw_headers,
            identity_lines(principal, token), body_framing(request),
        )
    except HeaderValueError as e:
        return status_response(400, str(e))

    def on_status(status: int) -> None:
        if status == 401:  # the impersonation account's token was refused: get a new one
            request.app[IMPERSONATOR].invalidate(cluster_id, principal.user_id)

    return await exchange(request, up.lean, head, f"cluster {cluster_id}", on_status)


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", PREFIX + "{cluster_id}/{tail:.*}", handle),
        web.route("*", PREFIX + "{cluster_id}", handle),
    ]
