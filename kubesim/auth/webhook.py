"""The token webhook authenticator (``--authentication-token-webhook-config-file``).

The config is a kubeconfig naming the TokenReview endpoint (``clusters[0].cluster.server``,
its CA, optional client credentials). Each unknown token is sent as kube-apiserver sends
it: ``POST <server>?timeout=30s`` with a ``TokenReview`` v1 carrying ``spec.audiences``;
successful answers are cached for ``SUCCESS_CACHE_TTL_S`` like kube-apiserver's token cache.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from kubesim.authtypes import UserInfo
from rancher_tunnel.logs import get_logger

REQUEST_TIMEOUT_S = 30
SUCCESS_CACHE_TTL_S = 10.0
CACHE_MAX_ENTRIES = 4096
MAX_RESPONSE_BYTES = 1024 * 1024
HEADERS = {
    "User-Agent": "Go-http-client/1.1",
    "Accept": "application/json, */*",
    "Content-Type": "application/json",
    "Accept-Encoding": "gzip",
}

log = get_logger(component="kubesim.auth.webhook")


class WebhookConfigError(ValueError):
    """The webhook kubeconfig cannot be used."""


@dataclass(frozen=True)
class WebhookConfig:
    server: str
    ssl_context: ssl.SSLContext | None
    bearer_token: str = ""


def _data_or_file(section: dict[str, Any], key: str, base: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    path = section.get(key)
    if path:
        full = Path(path) if os.path.isabs(path) else base / path
        return full.read_bytes()
    return None


def load_config(path: str | Path) -> WebhookConfig:
    base = Path(path).parent
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    clusters = doc.get("clusters") or []
    if not clusters or not (clusters[0].get("cluster") or {}).get("server"):
        raise WebhookConfigError(f"{path}: no clusters[0].cluster.server")
    cluster = clusters[0]["cluster"]
    users = doc.get("users") or []
    user = (users[0].get("user") or {}) if users else {}
    server = str(cluster["server"])
    ctx: ssl.SSLContext | None = None
    if server.startswith("https://"):
        ctx = ssl.create_default_context()
        ca = _data_or_file(cluster, "certificate-authority", base)
        if ca is not None:
            ctx.load_verify_locations(cadata=ca.decode("ascii"))
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        cert = _data_or_file(user, "client-certificate", base)
        key = _data_or_file(user, "client-key", base)
        if cert is not None and key is not None:
            _load_client_pair(ctx, cert, key)
    return WebhookConfig(server, ctx, str(user.get("token") or ""))


def _load_client_pair(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl only loads key pairs from files: write them to a private temporary directory
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp, "c.pem"), Path(tmp, "k.pem")
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        os.chmod(key_path, 0o600)
        ctx.load_cert_chain(cert_path, key_path)


def review_body(token: str, audiences: list[str]) -> bytes:
    """The exact bytes kube-apiserver's webhook client sends."""
    review = {
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"token": token, "audiences": audiences},
        "status": {"user": {}},
    }
    return json.dumps(review, separators=(",", ":")).encode() + b"\n"


def user_from_status(status: dict[str, Any]) -> UserInfo | None:
    if not status.get("authenticated"):
        return None
    user = status.get("user") or {}
    extra = {str(k): [str(x) for x in v or []] for k, v in (user.get("extra") or {}).items()}
    return UserInfo(
        name=str(user.get("username", "")),
        uid=str(user.get("uid", "")),
        groups=[str(g) for g in user.get("groups") or []],
        extra=extra,
    )


class WebhookAuthenticator:
    """Asks the configured TokenReview endpoint; one HTTP session, a small success cache."""

    def __init__(self, config: WebhookConfig, audiences: list[str]) -> None:
        self.config = config
        self.audiences = audiences
        self._session: aiohttp.ClientSession | None = None
        self._cache: dict[str, tuple[float, UserInfo]] = {}
        sep = "&" if "?" in config.server else "?"
        self.url = f"{config.server}{sep}timeout={REQUEST_TIMEOUT_S}s"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _cached(self, key: str) -> UserInfo | None:
        hit = self._cache.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._cache[key]
            return None
        return hit[1]

    async def authenticate(self, token: str) -> UserInfo | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cached(key)
        if cached is not None:
            return cached
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
            )
        headers = dict(HEADERS)
        if self.config.bearer_token:
            headers["Authorization"] = f"Bearer {self.config.bearer_token}"
        try:
            async with self._session.post(
                self.url,
                data=review_body(token, self.audiences),
                headers=headers,
                ssl=self.config.ssl_context if self.config.ssl_context is not None else True,
            ) as resp:
                raw = await resp.content.read(MAX_RESPONSE_BYTES)
                if resp.status // 100 != 2:
                    log.warning("webhook_rejected", status=resp.status)
                    return None
            answer = json.loads(raw)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("webhook_failed", error=type(exc).__name__)
            return None
        user = user_from_status(answer.get("status") or {}) if isinstance(answer, dict) else None
        if user is not None:
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + SUCCESS_CACHE_TTL_S, user)
        return user
