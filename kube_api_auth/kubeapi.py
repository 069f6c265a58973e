"""How to reach the downstream API server (a kubeconfig file or the in-cluster service account),
and :class:`KubeCalls`, kubernetes_asyncio's API client through which every call goes.

Only what list+watch needs: the base URL, an SSL context (CA, client certificate) and an
optional bearer token (re-read from its file on every call, as projected tokens rotate).
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kubernetes_asyncio.client import ApiClient, Configuration

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(ValueError):
    """The kubeconfig (or in-cluster environment) cannot be used; the message says why."""


@dataclass
class ApiTarget:
    base_url: str
    ssl_context: ssl.SSLContext | bool  # False = plain http
    token: str | None = None
    token_file: Path | None = None

    def headers(self) -> dict[str, str]:
        token = self.token
        if self.token_file is not None:
            token = self.token_file.read_text().strip()
        return {"Authorization": f"Bearer {token}"} if token else {}


def _pick(entries: Any, name: str, what: str) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            inner = entry.get(what)
            if isinstance(inner, dict):
                return inner
    raise KubeConfigError(f"kubeconfig has no {what} named {name!r}")


def _material(section: dict[str, Any], key: str, base: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    path = section.get(key)
    if path:
        full = Path(path) if Path(path).is_absolute() else base / path
        return full.read_bytes()
    return None


def _ssl_context(
    ca: bytes | None, insecure: bool, cert: bytes | None, key: bytes | None
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca.decode("ascii") if ca else None)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert and key:
        # load_cert_chain wants files: write them to a private temporary directory briefly
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            cert_path.write_bytes(cert)
            key_path.touch(mode=0o600)
            key_path.write_bytes(key)
            ctx.load_cert_chain(cert_path, key_path)
    return ctx


def from_kubeconfig(path: Path, context: str | None = None) -> ApiTarget:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise KubeConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise KubeConfigError(f"kubeconfig {path} is not a mapping")
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise KubeConfigError("kubeconfig has no current-context")
    ctx = _pick(doc.get("contexts"), ctx_name, "context")
    cluster = _pick(doc.get("clusters"), str(ctx.get("cluster")), "cluster")
    user = _pick(doc.get("users"), str(ctx.get("user")), "user") if ctx.get("user") else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise KubeConfigError("kubeconfig cluster has no server")
    base = path.parent
    ssl_ctx: ssl.SSLContext | bool = False
    if server.startswith("https://"):
        ssl_ctx = _ssl_context(
            _material(cluster, "certificate-authority", base),
            bool(cluster.get("insecure-skip-tls-verify")),
            _material(user, "client-certificate", base),
            _material(user, "client-key", base),
        )
    token_file = user.get("tokenFile")
    return ApiTarget(
        base_url=server,
        ssl_context=ssl_ctx,
        token=user.get("token"),
        token_file=Path(token_file) if token_file else None,
    )


def in_cluster(sa_dir: Path = SERVICE_ACCOUNT_DIR) -> ApiTarget:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise KubeConfigError("not in a cluster: KUBERNETES_SERVICE_HOST is not set")
    if ":" in host:
        host = f"[{host}]"
    ca = (sa_dir / "ca.crt").read_bytes()
    return ApiTarget(
        base_url=f"https://{host}:{port}",
        ssl_context=_ssl_context(ca, False, None, None),
        token_file=sa_dir / "token",
    )


class KubeCalls:
    """kubernetes_asyncio's :class:`ApiClient` towards ``target``, over the caller's aiohttp
    session (whose connector carries the target's TLS): it builds each request (path, query,
    headers) and sends it; bodies stay raw (``_preload_content=False``) because the index reads a
    few fields of each object and a watch is a stream of lines. Close with :meth:`close`."""

    def __init__(self, session: aiohttp.ClientSession, target: ApiTarget) -> None:
        self.target = target
        self._api = ApiClient(Configuration(host=target.base_url))
        self._own_session = self._api.rest_client.pool_manager
        self._api.rest_client.pool_manager = session

    async def close(self) -> None:
        await self._own_session.close()

    async def get(
        self, path: str, query: Mapping[str, str], client_timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """One GET; the caller reads and releases the response (``async with``)."""
        resp: aiohttp.ClientResponse = await self._api.call_api(
            path, "GET",
            query_params=list(query.items()),
            header_params={"Accept": "application/json", **self.target.headers()},
            _preload_content=False, _return_http_data_only=True, _request_timeout=client_timeout,
        )
        return resp
