"""One hop to the replica that holds a cluster's tunnel. A request for a cluster
(``/k8s/clusters/<id>/...`` through the proxy, ``/v3/clusters/<id>...`` for its state and
actions) that arrives at a replica without that cluster's agent session goes, unchanged, to the
replica the directory names, over the peer tunnel; that replica authenticates, authorizes,
audits and answers it as if the client had come to it. Upgraded requests (exec, attach,
port-forward) are spliced after the 101 like local ones; watches stream through. After the
first plain request of a keep-alive connection, the connection itself is spliced onto one pooled
peer stream (``splice.py``): its next requests for that replica no longer go through aiohttp.

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

from rancher_server.ha.peer import (
    FORWARD_HOST,
    FORWARD_PORT,
    FORWARDED_TRANSPORTS,
    PEER_CONNECT_TIMEOUT_S,
    PeerPool,
)
from rancher_server.ha.splice import Splice, SplicedResponse, can_splice
from rancher_server.proxy.exchange import body_framing, exchange
from rancher_server.proxy.headers import HOP_BY_HOP
from rancher_server.proxy.lean import LeanPool
from rancher_server.proxy.status import status_response
from rancher_server.proxy.upgrade import relay_upgrade, request_head
from rancher_tunnel.errors import TunnelError
from rancher_tunnel.logs import get_logger

FORWARDED_FOR = "X-Rancher-Forwarded-For"
FORWARDED_BY = "X-Rancher-Forwarded-By"  # the replica that forwarded (answers carry the holder)
HELD_BY = "X-Rancher-Replica"  # on answers: the replica that served the request
PEER_KEEPALIVE_S = 15.0  # a pooled stream to a peer is reused this long after its last answer
_DROPPED = HOP_BY_HOP | {FORWARDED_FOR.lower(), FORWARDED_BY.lower()}
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


def _upgrade_headers(request: web.Request, name: str) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in request.headers.items():
        if key.lower() in _DROPPED:
            continue
        out.add(key, value)
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
        self._lean: dict[str, LeanPool] = {}

    def target_for(self, request: web.Request) -> str | None:
        """The replica to send this request to, or None to answer it here."""
        cluster_id = cluster_of(request.path)
        if cluster_id is None or self._held_here(cluster_id):
            return None
        holder = self._holder_of(cluster_id)
        return holder if holder is not None and holder != self.name else None

    async def forward(self, request: web.Request, replica: str) -> web.StreamResponse:
        self.forwarded += 1
        try:
            if _is_upgrade(request):
                headers = _upgrade_headers(request, self.name)
                session = await self._pool.session(replica)
                reader, writer = await session.open_connection(FORWARD_HOST, FORWARD_PORT)
                head = request_head(request.method, request.path_qs, headers.pop("Host"), headers)
                return await relay_upgrade(request, reader, writer, head)
            if can_splice(request):
                return await self._splice(request, replica)
            return await self._relay(request, replica)
        except (aiohttp.ClientError, TunnelError, OSError, TimeoutError) as e:
            self.failed += 1
            log.warning("forwarding failed", replica=replica, path=request.path, error=repr(e))
            return status_response(
                503, f"the replica holding this cluster's tunnel ({replica}) is unreachable: {e}")

    async def _lean_pool(self, replica: str) -> LeanPool:
        await self._pool.session(replica)  # opens the tunnel on first need
        lean = self._lean.get(replica)
        if lean is None:
            lean = self._lean[replica] = LeanPool(
                lambda: self._pool.current(replica), FORWARD_HOST, FORWARD_PORT, None,
                connect_timeout_s=PEER_CONNECT_TIMEOUT_S, keepalive_s=PEER_KEEPALIVE_S)
        return lean

    async def _relay(self, request: web.Request, replica: str) -> web.StreamResponse:
        lean = await self._lean_pool(replica)
        head = _forward_head(request, self.name)
        return await exchange(request, lean, head, f"replica {replica}")

    async def _splice(self, request: web.Request, replica: str) -> web.StreamResponse:
        """This request, and the connection's next ones for the same replica, on one pooled
        peer stream below aiohttp (``splice.py``); aiohttp gets the connection back for a
        request that is not for that replica."""
        conn = await (await self._lean_pool(replica)).acquire()

        def sends_to_peer(cluster_id: str) -> bool:
            return not self._held_here(cluster_id) and self._holder_of(cluster_id) == replica

        def counted() -> None:
            self.forwarded += 1

        def failed() -> None:
            self.failed += 1

        splice = Splice(request, conn, sends_to_peer, request.remote or "", self.name,
                        counted, failed, replica)
        try:
            splice.start(_forward_head(request, self.name), request.method == "HEAD")
            handed_back = await splice.done
        except BaseException:  # cancelled (the server stopping), or a fault taking over
            splice.abort()
            raise
        return SplicedResponse(handed_back)

    def close(self) -> None:
        for lean in self._lean.values():
            lean.close()
        self._lean.clear()


def _forward_head(request: web.Request, name: str) -> bytes:
    """The request as it came, for the holder: its own headers (the user's credentials
    included), minus hop-by-hop ones and forwarding headers a client may have sent, plus ours."""
    out = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), request.raw_path.encode())]
    for key, value in request.raw_headers:
        if key.lower().decode("latin-1") in _DROPPED:
            continue
        out.append(b"%s: %s\r\n" % (key, value))
    out.append(b"Host: %s\r\n" % request.headers.get("Host", request.host).encode("latin-1"))
    out.append(b"%s: %s\r\n" % (FORWARDED_FOR.encode(), (request.remote or "").encode()))
    out.append(b"%s: %s\r\n" % (FORWARDED_BY.encode(), name.encode()))
    out.append(body_framing(request))
    out.append(b"\r\n")
    return b"".join(out)


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
