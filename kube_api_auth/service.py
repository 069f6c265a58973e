"""One kube-api-auth process: the feeder (list+watch or static file) and the HTTP server.

:func:`serve` runs until ``stop`` is set (the shutdown trigger is injectable, so tests stop
a service without signals), then shuts down in order: stop accepting, let in-flight
reviews finish within :data:`SHUTDOWN_GRACE_S`, cancel the watches, close the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from kube_api_auth import kubeapi, static_feed, watch
from kube_api_auth.config import Config
from kube_api_auth.constants import (
    MAX_WATCH_LINE_BYTES,
    REQUEST_LINGER_S,
    SHUTDOWN_GRACE_S,
    TLS12_CIPHERS,
)
from kube_api_auth.index import Index
from kube_api_auth.metrics import Metrics
from kube_api_auth.server import ReviewSettings, make_app
from rancher_tunnel.httpguard import RUNNER_LIMITS, GuardedSite
from rancher_tunnel.logs import get_logger


def log() -> Any:
    """The module's logger, bound when used (after the service configured logging)."""
    return get_logger(component="kube-api-auth")


class FeederError(RuntimeError):
    """The list+watch feeder stopped on an unexpected error; the process should exit 1."""


def api_target(config: Config) -> kubeapi.ApiTarget:
    if config.kubeconfig is not None:
        return kubeapi.from_kubeconfig(config.kubeconfig, config.context)
    return kubeapi.in_cluster(config.service_account_dir)


def _server_ssl(config: Config) -> ssl.SSLContext | None:
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)  # TLS 1.3 suites are all AEAD; OpenSSL prefers 1.3
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    ctx.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    return ctx


async def serve(
    config: Config, stop: asyncio.Event, on_listening: Callable[[str], None] | None = None
) -> None:
    index = Index()
    metrics = Metrics()
    metrics.watch(index)
    index.listeners.append(_freeze_when_ready(index))
    app = make_app(
        index,
        metrics,
        ReviewSettings(
            cluster_name=config.cluster_name,
            max_reviews_per_s=config.max_reviews_per_s,
            review_burst=config.review_burst,
            max_body_bytes=config.max_body_bytes,
        ),
    )
    feeder_task: asyncio.Task[None] | None = None
    session: aiohttp.ClientSession | None = None
    if config.tokens_file is not None:
        static_feed.load(index, config.tokens_file)
        gc.freeze()  # the index is long-lived: keep it out of the collector's scans
        log().warning(
            "static token file loaded; nothing will ever be revoked (benchmark mode)",
            tokens=len(index.tokens),
        )
    else:
        target = api_target(config)
        session = aiohttp.ClientSession(
            read_bufsize=MAX_WATCH_LINE_BYTES // 2,
            connector=aiohttp.TCPConnector(ssl=target.ssl_context),
        )
        feeder = watch.Feeder(
            session,
            target,
            index,
            metrics,
            watch.WatchSettings(inactivity_timeout_s=config.watch_inactivity_timeout_s),
        )
        feeder_task = asyncio.create_task(
            feeder.run(watch.resources(config.namespace, config.secret_label_selector)),
            name="kube-api-auth-feeder",
        )
        feeder_task.add_done_callback(_feeder_done(stop))
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=SHUTDOWN_GRACE_S,
        handle_signals=False,
        lingering_time=REQUEST_LINGER_S,
        **RUNNER_LIMITS,  # header sizes and keep-alive idle bound
    )
    try:
        await runner.setup()
        server_ssl = _server_ssl(config)
        # A deadline for the TLS handshake and the request head (slow clients).
        site = GuardedSite(runner, config.listen_host, config.listen_port, ssl_context=server_ssl)
        await site.start()
        sockets = runner.addresses
        host, port = sockets[0][0], sockets[0][1]
        scheme = "https" if server_ssl else "http"
        url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
        log().info("listening", url=url, cluster=config.cluster_name or None)
        if on_listening is not None:
            on_listening(url)
        await stop.wait()
        log().info("stopping")
    finally:
        await runner.cleanup()
        failure: BaseException | None = None
        if feeder_task is not None:
            if feeder_task.done() and not feeder_task.cancelled():
                failure = feeder_task.exception()
            else:
                feeder_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feeder_task
        if session is not None:
            await session.close()
    if failure is not None:
        raise FeederError("the list+watch feeder failed") from failure


def _freeze_when_ready(index: Index) -> Callable[[object], None]:
    """Once the initial lists are in, move them out of the garbage collector's scans (a
    full collection over 10,000s of records is a latency spike on the review path)."""
    frozen = False

    def changed(_kind: object) -> None:
        nonlocal frozen
        if not frozen and index.is_ready():
            frozen = True
            gc.freeze()

    return changed


def _feeder_done(stop: asyncio.Event) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        log().error("feeder exited unexpectedly; stopping", error=repr(exc))
        stop.set()

    return done
