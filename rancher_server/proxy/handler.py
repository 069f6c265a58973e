"""``/k8s/clusters/<cluster-id>/...``: authenticate the user, check their access to the cluster
(403 before anything leaves the server), then forward to the cluster's API server through the
agent's tunnel as that user (impersonation), streaming both ways."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from rancher_server.auth import Principal, audit, authenticate_bearer, cluster_role
from rancher_server.dialer import ClusterUnavailable
from rancher_server.downstream import DownstreamError
from rancher_server.impersonation import Impersonator
from rancher_server.proxy.headers import downstream_request_headers, upstream_response_headers
from rancher_server.proxy.status import status_response
from rancher_server.proxy.upgrade import proxy_upgrade
from rancher_server.proxy.upstream import UpstreamPool
from rancher_server.state import STATE
from rancher_server.store import NotFound
from rancher_tunnel.errors import DialRefused, SessionClosed
from rancher_tunnel.logs import get_logger

PREFIX = "/k8s/clusters/"
MAX_PROXY_BODY_BYTES = 32 * 1024 * 1024  # kube-apiserver itself caps most bodies at 3 MiB
BODY_CHUNK_BYTES = 256 * 1024
MAX_BUFFERED_RESPONSE_BYTES = 256 * 1024  # answers up to this size are sent in one write

POOL: web.AppKey[UpstreamPool] = web.AppKey("upstream_pool", UpstreamPool)
IMPERSONATOR: web.AppKey[Impersonator] = web.AppKey("impersonator", Impersonator)

log = get_logger(component="proxy")


class BodyTooLarge(Exception):
    pass


async def _bounded_body(request: web.Request) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in request.content.iter_chunked(BODY_CHUNK_BYTES):
        total += len(chunk)
        if total > MAX_PROXY_BODY_BYTES:
            raise BodyTooLarge()
        yield chunk


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
    principal = await authenticate_bearer(state, request.headers.get("Authorization"))
    if principal is None:
        return status_response(401, "Unauthorized")
    remote = request.remote
    target = f"{cluster_id} {request.method} {path_qs.split('?', 1)[0]}"
    role = cluster_role(state, principal, cluster_id)
    if role is None:
        audit(state, principal, "proxy", target, "forbidden", remote)
        return status_response(
            403, f'user "{principal.username}" may not access cluster "{cluster_id}"'
        )
    length = request.content_length
    if length is not None and length > MAX_PROXY_BODY_BYTES:
        audit(state, principal, "proxy", target, "too-large", remote)
        return status_response(413, f"request body exceeds {MAX_PROXY_BODY_BYTES} bytes")
    try:
        return await _forward(request, principal, role, cluster_id, path_qs, target)
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


async def _forward(
    request: web.Request,
    principal: Principal,
    role: str,
    cluster_id: str,
    path_qs: str,
    target: str,
) -> web.StreamResponse:
    state = request.app[STATE]
    pool = request.app[POOL]
    up = pool.get(cluster_id)
    try:
        token = await request.app[IMPERSONATOR].token_for(up, principal, role)
    except (DownstreamError, aiohttp.ClientError, DialRefused, SessionClosed) as e:
        log.warning("impersonation setup failed", cluster=cluster_id, error=str(e))
        audit(state, principal, "proxy", target, "upstream-error", request.remote)
        return status_response(502, f"cannot set up access to cluster {cluster_id}: {e}")
    upgrade = _is_upgrade(request)
    headers = downstream_request_headers(request.headers, principal, token, upgrade=upgrade)
    audit(state, principal, "proxy", target, "forwarded", request.remote)
    if upgrade:
        try:
            return await proxy_upgrade(request, pool.open_session(cluster_id), up, headers, path_qs)
        except (DialRefused, SessionClosed, OSError) as e:
            log.warning("upgrade failed", cluster=cluster_id, error=repr(e))
            return status_response(503, f"cluster {cluster_id} is unavailable: {e}")
    return await _forward_http(
        request, up.http, up.base_url + path_qs, headers, cluster_id, principal
    )


async def _forward_http(
    request: web.Request,
    http: aiohttp.ClientSession,
    url: str,
    headers: CIMultiDict[str],
    cluster_id: str,
    principal: Principal,
) -> web.StreamResponse:
    has_body = request.body_exists
    if has_body and request.content_length is not None:
        headers["Content-Length"] = str(request.content_length)
    try:
        upstream = await http.request(
            request.method,
            URL(url, encoded=True),
            headers=headers,
            data=_bounded_body(request) if has_body else None,
            allow_redirects=False,
            compress=None,
        )
    except BodyTooLarge:
        return status_response(413, f"request body exceeds {MAX_PROXY_BODY_BYTES} bytes")
    except (aiohttp.ClientError, DialRefused, SessionClosed) as e:
        log.warning("upstream request failed", cluster=cluster_id, error=repr(e))
        return status_response(503, f"cluster {cluster_id} is unavailable: {e}")
    async with upstream:
        if upstream.status == 401:
            request.app[IMPERSONATOR].invalidate(cluster_id, principal.user_id)
        headers_out = upstream_response_headers(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream.raw_headers
        )
        length = upstream.content_length
        if length is not None and length <= MAX_BUFFERED_RESPONSE_BYTES:
            # Small answers (most GETs) go out as one write: head and body in one TLS record.
            try:
                body = await upstream.content.readexactly(length) if length else b""
            except (aiohttp.ClientError, SessionClosed, asyncio.IncompleteReadError) as e:
                return status_response(502, f"cluster {cluster_id} ended the answer: {e}")
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=headers_out, body=body
            )
        out = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers_out
        )
        if length is not None and request.method != "HEAD":
            out.content_length = length
        await out.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
        except ConnectionResetError:  # the client went away (kubectl logs -f ended)
            log.debug("client ended mid-stream", cluster=cluster_id)
        except (aiohttp.ClientError, SessionClosed) as e:
            log.info("upstream ended mid-stream", cluster=cluster_id, error=str(e))
            if request.transport is not None:
                request.transport.close()
        return out


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", PREFIX + "{cluster_id}/{tail:.*}", handle),
        web.route("*", PREFIX + "{cluster_id}", handle),
    ]
