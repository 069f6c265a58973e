"""The tunnel between replicas: a replica that must forward a request opens (on first need) one
websocket to the replica holding the cluster's agent, over mutual TLS with certificates from the
deployment's CA, and multiplexes every forwarded request on it as streams of the same tunnel
protocol the agents speak. Connections exist only between replicas that forward to each other:
no full mesh. The receiving end serves each stream as one more HTTP connection of its own
application (:class:`PeerServer`), so a forwarded request is handled exactly like a local one."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import weakref
from collections.abc import Callable

import aiohttp
from aiohttp import web

from rancher_tunnel.constants import WS_MAX_MESSAGE_BYTES, Limits
from rancher_tunnel.errors import SessionClosed
from rancher_tunnel.frames import Role
from rancher_tunnel.logs import get_logger
from rancher_tunnel.session import Session, format_target
from rancher_tunnel.stream import IncomingStream

PEER_PATH = "/v3/peer"
REPLICA_HEADER = "X-Rancher-Replica"  # the dialing replica's name (logs, metrics)
FORWARD_HOST, FORWARD_PORT = "forwarded.request", 1  # the one stream target a peer accepts
FORWARD_TARGET = format_target(FORWARD_HOST, FORWARD_PORT)
PEER_CONNECT_TIMEOUT_S = 5.0
PEER_IDLE_S = 60.0  # a tunnel with no stream for this long is closed (re-opened on next need)

log = get_logger(component="ha-peer")

# Transports of requests that came from a peer replica: their forwarding headers are trusted.
FORWARDED_TRANSPORTS: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()


class PeerRefused(Exception):
    """The peer's certificate is not a replica's."""


class PeerServer:
    """The mutual-TLS listener other replicas dial (``--peer-listen``)."""

    def __init__(self, app_server: Callable[[], web.Server], limits: Limits,
                 server_ctx: ssl.SSLContext,
                 is_peer_cert: Callable[[bytes], bool]) -> None:
        self._app_server = app_server
        self._limits = limits
        self._ctx = server_ctx
        self._is_peer_cert = is_peer_cert
        self._runner: web.AppRunner | None = None
        self._sessions: set[Session] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get(PEER_PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=self._ctx, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        self.port = server.sockets[0].getsockname()[1] if server and server.sockets else port

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der or not self._is_peer_cert(der):
            return web.Response(status=403, text="not a replica certificate")
        name = request.headers.get(REPLICA_HEADER, "?")[:128]
        ws = web.WebSocketResponse(max_msg_size=WS_MAX_MESSAGE_BYTES, compress=False,
                                   autoping=True, heartbeat=None)
        await ws.prepare(request)
        session = Session(ws, Role.SERVER, name=f"peer:{name}", on_stream=self._on_stream,
                          limits=self._limits)
        self._sessions.add(session)
        log.info("peer connected", peer=name)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            log.info("peer disconnected", peer=name, reason=session.close_reason)
        return ws

    async def _on_stream(self, incoming: IncomingStream) -> None:
        if incoming.target != FORWARD_TARGET:
            await incoming.refuse("a peer forwards requests only")
            return
        stream = await incoming.accept()
        protocol = self._app_server()()  # one more HTTP connection of this replica's app
        transport = stream.attach(protocol)
        FORWARDED_TRANSPORTS.add(transport)

    async def stop(self) -> None:
        await asyncio.gather(*(s.close(1001, "replica stopping") for s in list(self._sessions)),
                             return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()


class _Peer:
    def __init__(self) -> None:
        self.session: Session | None = None
        self.task: asyncio.Task[None] | None = None
        self.ws_client: aiohttp.ClientSession | None = None
        self.lock = asyncio.Lock()
        self.idle_since: float | None = None


class PeerPool:
    """One tunnel per peer replica this one forwards to, opened on first need, re-opened when
    it broke; each with a pooled HTTP client whose connections are streams of that tunnel."""

    def __init__(self, name: str, address_of: Callable[[str], str | None],
                 client_ctx: ssl.SSLContext, limits: Limits) -> None:
        self._name = name
        self._address_of = address_of
        self._ctx = client_ctx
        self._limits = limits
        self._peers: dict[str, _Peer] = {}
        self.opened = 0  # tunnels opened (tests, metrics)

    def open_count(self) -> int:
        return sum(1 for p in self._peers.values() if p.session is not None
                   and not p.session.closed)

    async def session(self, replica: str) -> Session:
        peer = self._peers.setdefault(replica, _Peer())
        current = peer.session
        if current is not None and not current.closed:
            return current
        async with peer.lock:
            if peer.session is not None and not peer.session.closed:
                return peer.session
            await self._drop(peer)
            address = self._address_of(replica)
            if address is None:
                raise SessionClosed(f"replica {replica} is not registered (gone?)")
            peer.ws_client = aiohttp.ClientSession()
            try:
                async with asyncio.timeout(PEER_CONNECT_TIMEOUT_S):
                    ws = await peer.ws_client.ws_connect(
                        f"wss://{address}{PEER_PATH}", ssl=self._ctx, autoping=True,
                        heartbeat=None, max_msg_size=WS_MAX_MESSAGE_BYTES, compress=0,
                        headers={REPLICA_HEADER: self._name})
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                await self._drop(peer)
                raise SessionClosed(f"replica {replica} at {address} is unreachable: {e}") from e
            session = Session(ws, Role.AGENT, name=f"peer:{replica}", limits=self._limits)
            peer.task = asyncio.create_task(session.run(), name=f"peer:{replica}")
            await session.wait_ready()
            peer.session = session
            self.opened += 1
            log.info("peer tunnel opened", peer=replica, address=address)
            return session

    def current(self, replica: str) -> Session:
        """The open tunnel to ``replica`` (after :meth:`session` opened it)."""
        peer = self._peers.get(replica)
        if peer is None or peer.session is None or peer.session.closed:
            raise SessionClosed(f"no tunnel to replica {replica}")
        return peer.session

    async def close_idle(self, now: float) -> int:
        """Closes tunnels that carried no stream for :data:`PEER_IDLE_S` (pooled keep-alive
        connections are streams: they end first, after aiohttp's keep-alive timeout); how many."""
        closed = 0
        for replica, peer in list(self._peers.items()):
            session = peer.session
            if session is None or session.closed:
                continue
            if session.stats.open_streams:
                peer.idle_since = None
            elif peer.idle_since is None:
                peer.idle_since = now
            elif now - peer.idle_since >= PEER_IDLE_S:
                async with peer.lock:
                    await self._drop(peer)
                peer.idle_since = None
                closed += 1
                log.info("idle peer tunnel closed", peer=replica)
        return closed

    async def _drop(self, peer: _Peer) -> None:
        if peer.session is not None:
            with contextlib.suppress(Exception):
                await peer.session.close(1001, "peer tunnel replaced")
        if peer.task is not None:
            peer.task.cancel()
            with contextlib.suppress(BaseException):
                await peer.task
        if peer.ws_client is not None:
            await peer.ws_client.close()
        peer.session = peer.task = peer.ws_client = None

    async def close(self) -> None:
        for peer in self._peers.values():
            await self._drop(peer)
        self._peers.clear()
