"""Real HTTPS servers on loopback for the authenticator tests (ports chosen by the OS)."""

from __future__ import annotations

import base64
import contextlib
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from kubesim.certs import Pki

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def server_context(pki: Pki, *, request_client_cert: bool, require: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        cert = _write(Path(tmp), "s.crt", pki.serving.cert_pem)
        key = _write(Path(tmp), "s.key", pki.serving.key_pem)
        ctx.load_cert_chain(cert, key)
    if request_client_cert:
        ctx.load_verify_locations(cadata=pki.ca.cert_pem.decode())
        ctx.verify_mode = ssl.CERT_REQUIRED if require else ssl.CERT_OPTIONAL
    return ctx


def client_context(pki: Pki, *, with_admin_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=pki.ca.cert_pem.decode())
    if with_admin_cert:
        with tempfile.TemporaryDirectory() as tmp:
            cert = _write(Path(tmp), "a.crt", pki.admin.cert_pem)
            key = _write(Path(tmp), "a.key", pki.admin.key_pem)
            ctx.load_cert_chain(cert, key)
    return ctx


@contextlib.asynccontextmanager
async def https_server(
    handler: Handler, ctx: ssl.SSLContext, path: str = "/{tail:.*}"
) -> AsyncIterator[str]:
    """Serve ``handler`` for every method on ``path``; yields the base URL."""
    app = web.Application()
    app.router.add_route("*", path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def webhook_kubeconfig(tmp: Path, server: str, pki: Pki, *, client_cert: bool = False) -> Path:
    ca = base64.b64encode(pki.ca.cert_pem).decode()
    path = tmp / "webhook.kubeconfig"
    user = "{}"
    if client_cert:
        cert = base64.b64encode(pki.admin.cert_pem).decode()
        key = base64.b64encode(pki.admin.key_pem).decode()
        user = f"\n    client-certificate-data: {cert}\n    client-key-data: {key}"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: webhook\n  cluster:\n    server: {server}\n"
        f"    certificate-authority-data: {ca}\n"
        f"users:\n- name: apiserver\n  user: {user}\n"
        "contexts:\n- name: webhook\n  context: {cluster: webhook, user: apiserver}\n"
        "current-context: webhook\n"
    )
    return path
