"""The aiohttp server: TLS with its own CA, the admin kubeconfig, start/stop of the sim."""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from . import certs
from .api import Api
from .kubeconfig import write_admin_kubeconfig
from .logutil import LazyLogger
from .options import Options
from .store import Store

SHUTDOWN_TIMEOUT_S = 2.0
MAX_REQUEST_BYTES = 64 * 1024 * 1024
log = LazyLogger(component="kubesim.server")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class KubeSim:
    """``async with KubeSim(options) as sim:`` runs the API stand-in until the block ends."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.store = Store()
        host = self.options.host
        wildcard_or_loopback = ("", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost")
        self.pki = certs.make_pki(() if host in wildcard_or_loopback else (host,))
        self.ca_pem: bytes = self.pki.ca.cert_pem
        self.store.root_ca_pem = self.ca_pem.decode()
        self.url = ""
        self.kubeconfig_path = ""
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._sim_ctx: Any = None
        self.api = Api(self.store, self.options)

    def _ssl_context(self, cert_dir: Path) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        (cert_dir / "apiserver.crt").write_bytes(self.pki.serving.cert_pem)
        key_path = cert_dir / "apiserver.key"
        _write_private(key_path, self.pki.serving.key_pem)
        ctx.load_cert_chain(str(cert_dir / "apiserver.crt"), str(key_path))
        ctx.load_verify_locations(cadata=self.ca_pem.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _prepare_cert_dir(self) -> Path:
        if self.options.cert_dir:
            cert_dir = Path(self.options.cert_dir)
            cert_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="kubesim-")
            cert_dir = Path(self._tmp.name)
        (cert_dir / "ca.crt").write_bytes(self.ca_pem)
        (cert_dir / "admin.crt").write_bytes(self.pki.admin.cert_pem)
        _write_private(cert_dir / "admin.key", self.pki.admin.key_pem)
        return cert_dir

    async def start(self) -> None:
        opts = self.options
        cert_dir = self._prepare_cert_dir()
        self.store.seed()
        await self.api.start()
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        await self._start_sim(app)
        self.api.install(app)
        self.store.compact()  # resourceVersions from before start are "too old" (410)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            handler_cancellation=True,  # a client that goes away ends its watch at once
        )
        await self._runner.setup()
        ssl_ctx = None if opts.plain_http else self._ssl_context(cert_dir)
        site = web.TCPSite(
            self._runner,
            opts.host,
            opts.port,
            ssl_context=ssl_ctx,
        )
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else opts.port
        scheme = "http" if opts.plain_http else "https"
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(opts.host, opts.host)
        host = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{host}:{port}"
        kc = Path(opts.kubeconfig_out) if opts.kubeconfig_out else cert_dir / "admin.kubeconfig"
        if opts.plain_http:
            write_admin_kubeconfig(kc, self.url, None, None, None)
        else:
            write_admin_kubeconfig(
                kc, self.url, self.ca_pem, self.pki.admin.cert_pem, self.pki.admin.key_pem
            )
        self.kubeconfig_path = str(kc)
        log.info("kubesim_ready", url=self.url)

    async def _start_sim(self, app: web.Application) -> None:
        try:
            from . import sim as sim_pkg
        except ImportError:
            return
        start = getattr(sim_pkg, "start_sim", None)
        if start is None:
            return
        self._sim_ctx = await start(self.store, self.options)
        self.api.sim_ctx = self._sim_ctx
        try:
            from .sim import admin
        except ImportError:
            return
        routes = getattr(admin, "routes", None)
        if routes is not None:
            app.router.add_routes(routes(self._sim_ctx))

    async def stop(self) -> None:
        if self._sim_ctx is not None:
            from . import sim as sim_pkg

            stop = getattr(sim_pkg, "stop_sim", None)
            if stop is not None:
                await stop(self._sim_ctx)
            self._sim_ctx = None
        await self.api.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> KubeSim:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
