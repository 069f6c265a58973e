"""One hop to the replica that holds a cluster's tunnel. A request for a cluster
(``/k8s/clusters/<id>/...`` through the proxy, ``/v3/clusters/<id>...`` for its state and
actions) that arrives at a replica without that cluster's agent session goes, unchanged, to the
replica the directory names, over the peer tunnel; that replica authenticates, authorizes,
audits and answers it as if the client had come to it. Upgraded requests (exec, attach,
port-forward) are spliced after the 101 like local ones; watches stream through.

A forwarded request is never forwarded again (one hop): the receiving replica answers it from
what it holds, ``503`` if the agent left it meanwhile. The client's address travels in
:data:`FORWARDED_FOR`, believed only on streams that came from a peer."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from rancher_server.ha.peer import FORWARD_HOST, FORWARD_PORT, FORWARDED_TRANSPORTS, PeerPool
from rancher_server.proxy.headers import HOP_BY_HOP, upstream_response_headers
from rancher_server.proxy.status import status_response
from rancher_server.proxy.upgrade import relay_upgrade, request_head
from rancher_tunnel.errors import TunnelError
from rancher_tunnel.logs import get_logger

FORWARDED_FOR = "X-Rancher-Forwarded-For"
FORWARDED_BY = "X-Rancher-Forwarded-By"  # the replica that forwarded (answers carry the holder)
HELD_BY = "X-Rancher-Replica"  # on answers: the replica that served the request
RELAY_READ_BYTES = 64 * 1024
_CLUSTER_PATH = re.compile(r"^/(?:k8s|v3)/clusters/([^/?]+)(?:/|$)")

log = get_logger(component="ha-forward")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cluster_of(path: str) -> str | None:
    m = _CLUSTER_PATH.match(path)
    return m.group(1) if m else None


def from_peer(request: web.Request) -> bool:
    return request.transport is not None and request.transport in FORWARDED_TRANSPORTS


def _is_upgrade(request: web.Request) -> bool:
    return "upgrade" in request.headers.get("Connection", "").lower() and bool(
        request.headers.get("Upgrade"))


def _outgoing_headers(request: web.Request, name: str, upgrade: bool) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in request.headers.items():
        lname = key.lower()
        if lname in HOP_BY_HOP or lname in (FORWARDED_FOR.lower(), FORWARDED_BY.lower()):
            continue
        out.add(key, value)
    if request.body_exists and not upgrade:
        length = request.headers.get("Content-Length")
        if length is not None:
            out["Content-Length"] = length
    if upgrade:
        out["Connection"] = "Upgrade"
        out["Upgrade"] = request.headers.get("Upgrade", "")
    out["Host"] = request.headers.get("Host", request.host)
    out[FORWARDED_FOR] = request.remote or ""
    out[FORWARDED_BY] = name
    return out


class Forwarder:
    def __init__(self, name: str, pool: PeerPool, holder_of: Callable[[str], str | None],
                 held_here: Callable[[str], bool]) -> None:
        self.name = name
        self._pool = pool
        self._holder_of = holder_of
        self._held_here = held_here
        self.forwarded = 0
        self.failed = 0

    def target_for(self, request: web.Request) -> str | None:
        """The replica to send this request to, or None to answer it here."""
        cluster_id = cluster_of(request.path)
        if cluster_id is None or self._held_here(cluster_id):
            return None
        holder = self._holder_of(cluster_id)
        return holder if holder is not None and holder != self.name else None

    async def forward(self, request: web.Request, replica: str) -> web.StreamResponse:
        upgrade = _is_upgrade(request)
        headers = _outgoing_headers(request, self.name, upgrade)
        self.forwarded += 1
        try:
            if upgrade:
                session = await self._pool.session(replica)
                reader, writer = await session.open_connection(FORWARD_HOST, FORWARD_PORT)
                head = request_head(request.method, request.path_qs, headers.pop("Host"), headers)
                return await relay_upgrade(request, reader, writer, head)
            return await self._relay(request, replica, headers)
        except (aiohttp.ClientError, TunnelError, OSError, TimeoutError) as e:
            self.failed += 1
            log.warning("forwarding failed", replica=replica, path=request.path, error=repr(e))
            return status_response(
                503, f"the replica holding this cluster's tunnel ({replica}) is unreachable: {e}")

    async def _relay(self, request: web.Request, replica: str,
                     headers: CIMultiDict[str]) -> web.StreamResponse:
        http = self._pool.http(replica)
        data = request.content if request.body_exists else None
        url = f"http://{FORWARD_HOST}:{FORWARD_PORT}{request.raw_path}"
        async with http.request(request.method, url, headers=headers, data=data,
                                allow_redirects=False, compress=None, chunked=None) as resp:
            raw = ((k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers)
            out = web.StreamResponse(status=resp.status, reason=resp.reason,
                                     headers=upstream_response_headers(raw))
            length = resp.headers.get("Content-Length")
            if length is not None:
                out.content_length = int(length)
            await out.prepare(request)
            try:
                async for chunk in resp.content.iter_any():
                    await out.write(chunk)
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TunnelError) as e:
                # The holder went away mid-answer: end the client's connection (a watch's
                # client sees its stream end and watches again through a live replica).
                log.warning("forwarded answer cut", replica=replica, error=repr(e))
                if request.transport is not None:
                    request.transport.close()
                return out
            await out.write_eof()
            return out


def forward_middleware(get: Callable[[web.Application], Forwarder | None]) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        fwd = get(request.app)
        if fwd is None:
            return await handler(request)
        if from_peer(request):
            remote = request.headers.get(FORWARDED_FOR) or request.remote or ""
            return await handler(request.clone(remote=remote))
        replica = fwd.target_for(request)
        if replica is None:
            return await handler(request)
        return await fwd.forward(request, replica)

    return middleware
