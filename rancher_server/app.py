"""The server's aiohttp application and its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rancher_server import api, proxy, ui
from rancher_server.access.impersonation import Impersonator
from rancher_server.access.manager import AccessCollector, AccessManager
from rancher_server.api.compression import compress_large_json
from rancher_server.api.errors import error_middleware
from rancher_server.auth import authenticate_bearer, error_response, unauthorized
from rancher_server.auth.bootstrap import ensure_admin
from rancher_server.clusters.metrics import PictureCollector
from rancher_server.clusters.public_url import loopback_warning, public_url
from rancher_server.config import ServerConfig
from rancher_server.constants import SHUTDOWN_GRACE_S
from rancher_server.ha.forward import HELD_BY, Forwarder, forward_middleware
from rancher_server.ha.metrics import HACollector
from rancher_server.ha.runtime import start_ha, stop_ha
from rancher_server.looplag import LoopLag, loop_lag_histogram
from rancher_server.metrics import ReplicaInfoCollector, make_registry
from rancher_server.proxy.streams import StreamGuard, StreamGuardCollector
from rancher_server.proxy.upstream import UpstreamPool
from rancher_server.state import STATE, ServerState
from rancher_server.store.etcd_open import open_store
from rancher_server.tls import add_hsts, load_or_generate, shared_material
from rancher_server.tunnel import endpoint as tunnel_endpoint
from rancher_server.tunnel.dialer import Dialer
from rancher_server.tunnel.forward import ForwardSpec, start_forward, stop_forwards
from rancher_server.tunnel.registry import SessionRegistry
from rancher_server.tunnel.revalidate import revalidation_ctx
from rancher_tunnel.envlimits import limits_from_env
from rancher_tunnel.httpguard import RUNNER_LIMITS, GuardedSite
from rancher_tunnel.logs import get_logger
from rancher_tunnel.process import freeze_heap

log = get_logger(component="server")
DIALER: web.AppKey[Dialer] = web.AppKey("dialer", Dialer)


async def ping(_: web.Request) -> web.Response:
    return web.Response(text="pong")


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.shutting_down:
        return web.Response(status=503, text="shutting down")
    return web.Response(text="ok")


async def cacerts(request: web.Request) -> web.Response:
    """Rancher's settings resource shape: the CA PEM in ``value``."""
    state = request.app[STATE]
    return web.json_response(
        {
            "type": "setting",
            "id": "cacerts",
            "name": "cacerts",
            "value": state.tls.ca_pem.decode(),
            "checksum": state.tls.ca_checksum,
        }
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics: an admin's bearer token is required (they name clusters and
    sessions) unless the operator opted into anonymous scrapes (``--metrics-anonymous``)."""
    state = request.app[STATE]
    if not state.config.metrics_anonymous:
        principal = await authenticate_bearer(state, request.headers.get("Authorization"))
        if principal is None:
            return unauthorized()
        if not principal.is_admin:
            return error_response(403, "metrics are for administrators")
    body = generate_latest(state.metrics)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _forwarder(app: web.Application) -> Forwarder | None:
    ha = app[STATE].ha
    return None if ha is None else ha.forwarder


async def _replica_header(request: web.Request, response: web.StreamResponse) -> None:
    """With replicas, every answer says which one served it (support, tests)."""
    ha = request.app[STATE].ha
    if ha is not None:
        response.headers.setdefault(HELD_BY, ha.name)


def build_state(config: ServerConfig) -> ServerState:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.store_url, config.db_path)
    # Replicas on etcd present one CA, kept in the store; given files, or alone: the data dir's.
    tls = shared_material(store, config.tls_dir, config.hostnames) if (
        config.store_url and not config.tls_cert) else load_or_generate(
        config.tls_dir, config.hostnames, config.tls_cert, config.tls_key, config.tls_ca)
    sessions = SessionRegistry()
    reg, collector = make_registry(sessions)
    return ServerState(
        config=config,
        store=store,
        tls=tls,
        sessions=sessions,
        metrics=reg,
        collector=collector,
        limits=limits_from_env(),
    )


async def _close_store_last(app: web.Application) -> AsyncIterator[None]:
    yield
    app[STATE].store.close()


def create_app(state: ServerState) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024,
                          middlewares=[forward_middleware(_forwarder), error_middleware,
                                       compress_large_json])
    app[STATE] = state
    app[DIALER] = Dialer(state.sessions)
    app.on_response_prepare.append(add_hsts)
    app.on_response_prepare.append(_replica_header)
    app.router.add_get("/ping", ping)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v3/settings/cacerts", cacerts)
    app.add_routes(tunnel_endpoint.routes())
    # First in, so last out: every task that reads the store (cluster controllers, directory
    # refresh, access) has stopped before it is closed.
    app.cleanup_ctx.append(_close_store_last)
    api.setup(app)
    ui.setup(app)  # the web UI at /ui/ (docs/ui.md)
    app.add_routes(proxy.routes())
    app[proxy.POOL] = UpstreamPool(state.sessions, state.store)
    manager = AccessManager(state.store, state.sessions, app[proxy.POOL], state.owns,
                            state.config.replica if state.config.store_url else "",
                            owns_version=state.owns_version)
    app[proxy.ACCESS] = manager
    app[proxy.IMPERSONATOR] = Impersonator(manager)
    state.metrics.register(AccessCollector(manager))
    state.metrics.register(PictureCollector(lambda: state.controllers))
    state.metrics.register(HACollector(lambda: state.ha))
    # each replica's /metrics says which replica (and store) it is, so sums over replicas can
    # be split or checked by it
    state.metrics.register(ReplicaInfoCollector(
        state.config.replica, "etcd" if state.config.store_url else "sqlite"))
    app[proxy.GUARD] = StreamGuard(state.store)
    state.metrics.register(StreamGuardCollector(app[proxy.GUARD]))
    loop_lag = LoopLag(loop_lag_histogram(state.metrics))

    async def sample_loop_lag(app: web.Application) -> AsyncIterator[None]:
        loop_lag.start(asyncio.get_running_loop())
        yield
        loop_lag.stop()

    app.cleanup_ctx.append(sample_loop_lag)

    async def on_shutdown(app: web.Application) -> None:
        st = app[STATE]
        st.shutting_down = True
        if st.controllers is not None:  # the agents' disconnection is ours, not their clusters'
            st.controllers.last_states.freeze()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                st.sessions.close_all(1001, "server shutting down"), SHUTDOWN_GRACE_S
            )

    app.on_shutdown.append(on_shutdown)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        stop_access = asyncio.Event()
        access_task = asyncio.create_task(app[proxy.ACCESS].run(stop_access), name="access")
        guard_task = asyncio.create_task(app[proxy.GUARD].run(stop_access), name="stream-guard")
        yield
        stop_access.set()
        await access_task
        await guard_task
        await app[proxy.POOL].close()

    app.cleanup_ctx.append(lifecycle)
    app.cleanup_ctx.append(revalidation_ctx)
    return app


async def serve(config: ServerConfig, stop: asyncio.Event | None = None,
                freeze: bool = False) -> None:
    """Run until ``stop`` is set (tests) or the process gets SIGTERM/SIGINT (``__main__``).
    ``freeze``: once ready, move the state built at start out of the garbage collector's scans
    (:func:`~rancher_tunnel.process.freeze_heap`; the server's own process only, not a test's)."""
    stop = stop or asyncio.Event()
    state = build_state(config)
    app = create_app(state)
    runner = web.AppRunner(
        app, shutdown_timeout=SHUTDOWN_GRACE_S, access_log=None, **RUNNER_LIMITS
    )
    await runner.setup()
    host, port = config.host_port
    site = GuardedSite(  # deadlines for the TLS handshake and the request head
        runner,
        host,
        port,
        ssl_context=state.tls.server_context(),
        backlog=4096,
        reuse_address=True,
    )
    await site.start()
    bound_port = port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        bound_port = server.sockets[0].getsockname()[1]
    state.url = config.url_for(bound_port)
    if config.store_url:  # replicas on etcd: register, listen for peers, forward, own
        app_server = runner.server
        assert app_server is not None
        state.ha = await start_ha(config, state.store, state.sessions, state.limits,
                                  app_server, bound_port, config.tls_dir / "peer")
    bootstrap_password = ensure_admin(state)
    forwards = [await start_forward(ForwardSpec.parse(s), app[DIALER]) for s in config.tcp_forwards]
    if freeze:
        freeze_heap()
    log.info("server ready", url=state.url, ca_checksum=state.tls.ca_checksum)
    warning = loopback_warning(public_url(state.store, state.url))
    if warning:
        log.warning(warning)
    ready: dict[str, object] = {
        "ready": True,
        "url": state.url,
        "port": bound_port,
        "ca_checksum": state.tls.ca_checksum,
        "data_dir": str(config.data_dir),
    }
    if bootstrap_password is not None:
        # Shown once, on stdout only (never in a log line).
        ready["bootstrap_user"] = "admin"
        ready["bootstrap_password"] = bootstrap_password
    print(json.dumps(ready), flush=True, file=sys.stdout)
    try:
        await stop.wait()
    finally:
        log.info("server stopping")
        await stop_forwards(forwards)
        await runner.cleanup()
        if state.ha is not None:
            await stop_ha(state.ha)
        log.info("server stopped")
