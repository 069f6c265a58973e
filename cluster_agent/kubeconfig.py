"""Reading a user's kubeconfig: the current context's API server, CA and credentials, as an
aiohttp-ready TLS context plus headers (client certificates and bearer tokens; exec plugins are
not supported and say so)."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cluster_agent.config import ConfigError


@dataclass(frozen=True)
class KubeTarget:
    server: str  # https://host:port
    ca_pem: str
    ssl: ssl.SSLContext
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def address(self) -> str:
        hostport = self.server.split("://", 1)[-1].split("/", 1)[0]
        if ":" not in hostport.rsplit("]", 1)[-1]:
            hostport += ":443"
        return hostport


def _data_or_file(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        path = Path(entry[key])
        return (path if path.is_absolute() else base / path).read_bytes()
    return None


def load(path: str | Path) -> KubeTarget:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
        ctx_name = doc["current-context"]
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user: dict[str, Any] = next(
            (u["user"] for u in doc.get("users", []) if u["name"] == ctx.get("user")), {}
        )
    except (OSError, KeyError, StopIteration, TypeError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read kubeconfig {path}: {e}") from e
    base = path.parent
    if user.get("exec") or user.get("auth-provider"):
        raise ConfigError("kubeconfig users with exec or auth-provider plugins are not supported")
    ca = _data_or_file(cluster, "certificate-authority", base)
    ctx_ssl = ssl.create_default_context(cadata=ca.decode() if ca else None)
    cert = _data_or_file(user, "client-certificate", base)
    key = _data_or_file(user, "client-key", base)
    if cert and key:
        with tempfile.TemporaryDirectory() as d:
            cert_path, key_path = Path(d) / "c.pem", Path(d) / "k.pem"
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
            cert_path.write_bytes(cert)
            ctx_ssl.load_cert_chain(cert_path, key_path)
    headers: dict[str, str] = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return KubeTarget(
        server=str(cluster["server"]).rstrip("/"),
        ca_pem=ca.decode() if ca else "",
        ssl=ctx_ssl,
        headers=headers,
    )
