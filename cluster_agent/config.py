"""Agent configuration from environment variables (the incumbent's names where they exist)."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(Exception):
    """The agent's configuration is incomplete or invalid; the message says what to set."""


@dataclass(frozen=True)
class Target:
    host: str  # "*" matches any host
    port: int  # 0 matches any port

    def matches(self, host: str, port: int) -> bool:
        return (self.host in ("*", host.lower())) and self.port in (0, port)

    @classmethod
    def parse(cls, raw: str) -> Target:
        host, sep, port = raw.strip().rpartition(":")
        if not sep or not host:
            raise ConfigError(f"allowed target {raw!r} must be HOST:PORT (HOST or PORT may be *)")
        try:
            p = 0 if port == "*" else int(port)
        except ValueError as e:
            raise ConfigError(f"allowed target {raw!r} has a bad port") from e
        return cls(host.strip("[]").lower(), p)


@dataclass(frozen=True)
class AgentConfig:
    server: str  # https://host:port of the server
    token: str
    ca_checksum: str = ""
    ca_cert_file: str = ""
    api_address: str = ""  # host:port of the cluster's API server, as the agent reaches it
    api_ca_pem: str = ""
    allowed: tuple[Target, ...] = field(default_factory=tuple)
    node_name: str = ""
    health_listen: str = ""

    def allows(self, host: str, port: int) -> bool:
        return any(t.matches(host, port) for t in self.allowed)


def _kubeconfig_api(path: str) -> tuple[str, str]:
    """API address and CA PEM from the current context of a kubeconfig (import from outside)."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
        ctx_name = doc["current-context"]
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    except (OSError, KeyError, StopIteration, TypeError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read the cluster from kubeconfig {path}: {e}") from e
    server = str(cluster["server"])
    hostport = server.split("://", 1)[-1].split("/", 1)[0]
    if ":" not in hostport.rsplit("]", 1)[-1]:
        hostport += ":443"
    ca = ""
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    elif "certificate-authority" in cluster:
        ca = Path(cluster["certificate-authority"]).read_text()
    return hostport, ca


def from_env(env: Mapping[str, str] | None = None) -> AgentConfig:
    env = os.environ if env is None else env
    server = env.get("CATTLE_SERVER", "").rstrip("/")
    token = env.get("CATTLE_TOKEN", "")
    if not server.startswith("https://"):
        raise ConfigError("CATTLE_SERVER must be set to the server's https:// URL")
    if not token:
        raise ConfigError("CATTLE_TOKEN must be set to the cluster's registration token")
    api_address = env.get("CATTLE_K8S_API", "")
    api_ca = ""
    if env.get("CATTLE_KUBECONFIG"):
        api_address, api_ca = _kubeconfig_api(env["CATTLE_KUBECONFIG"])
    elif not api_address and env.get("KUBERNETES_SERVICE_HOST"):
        api_address = f"{env['KUBERNETES_SERVICE_HOST']}:{env.get('KUBERNETES_SERVICE_PORT', '443')}"
    if not api_ca and (SA_DIR / "ca.crt").exists():
        api_ca = (SA_DIR / "ca.crt").read_text()
    if env.get("CATTLE_K8S_CA_FILE"):
        api_ca = Path(env["CATTLE_K8S_CA_FILE"]).read_text()
    raw_allowed = env.get("CATTLE_ALLOWED_TARGETS", "")
    allowed = tuple(Target.parse(x) for x in raw_allowed.split(",") if x.strip())
    if not allowed and api_address:
        allowed = (Target.parse(api_address),)
    return AgentConfig(
        server=server,
        token=token,
        ca_checksum=env.get("CATTLE_CA_CHECKSUM", "").strip().lower(),
        ca_cert_file=env.get("CATTLE_CA_CERT_FILE", ""),
        api_address=api_address,
        api_ca_pem=api_ca,
        allowed=allowed,
        node_name=env.get("CATTLE_NODE_NAME", ""),
        health_listen=env.get("CATTLE_HEALTH_LISTEN", ""),
    )
