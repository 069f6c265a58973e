"""Agent configuration from environment variables (the incumbent's names where they exist)."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_REPORT_INTERVAL_S = 15.0  # how often the cluster agent reports health (Rancher: 15 s)
DEFAULT_NAMESPACE = "cattle-system"
DEFAULT_WATCH_TIMEOUT_S = 300.0  # the informers ask the API server to end a watch after this


class ConfigError(Exception):
    """The agent's configuration is incomplete or invalid; the message says what to set."""


TARGET_FORMS = (
    "HOST:PORT where HOST is a host name, an IP address ([v6] in brackets), * (any host) or "
    "*.DOMAIN (any host under DOMAIN), and PORT is 1-65535 or * (any port)"
)
_HOST_RE = re.compile(r"^[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9_])?$")


@dataclass(frozen=True)
class Target:
    """One entry of ``CATTLE_ALLOWED_TARGETS`` (see :data:`TARGET_FORMS`)."""

    host: str  # "*" matches any host; "*.svc" any host ending in ".svc"
    port: int  # 0 matches any port

    def matches(self, host: str, port: int) -> bool:
        if self.port not in (0, port):
            return False
        host = host.lower().rstrip(".")
        if self.host in ("*", host):
            return True
        return self.host.startswith("*.") and host.endswith(self.host[1:])

    @classmethod
    def parse(cls, raw: str) -> Target:
        host, sep, port = raw.strip().rpartition(":")
        host = host.lower()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not sep or not host:
            raise ConfigError(f"allowed target {raw!r} is not {TARGET_FORMS}")
        if port == "*":
            p = 0
        elif port.isdigit() and 0 < int(port) < 65536:
            p = int(port)
        else:
            raise ConfigError(f"allowed target {raw!r} has a bad port: {TARGET_FORMS}")
        if not _valid_host(host):
            raise ConfigError(f"allowed target {raw!r} has an unsupported host: {TARGET_FORMS}")
        return cls(host, p)


def _valid_host(host: str) -> bool:
    if host == "*":
        return True
    name = host[2:] if host.startswith("*.") else host
    try:
        ipaddress.ip_address(name)
        return not host.startswith("*.")  # "*.10.0.0.1" means nothing
    except ValueError:
        pass
    return bool(_HOST_RE.match(name)) and ".." not in name and "*" not in name


@dataclass(frozen=True)
class AgentConfig:
    server: str  # https://host:port of the server
    token: str
    ca_checksum: str = ""
    ca_cert_file: str = ""
    api_address: str = ""  # host:port of the cluster's API server, as the agent reaches it
    api_ca_pem: str = ""
    api_token: str = field(default="", repr=False)  # the agent's service-account token
    allowed: tuple[Target, ...] = field(default_factory=tuple)
    node_name: str = ""
    health_listen: str = ""
    report_interval_s: float = DEFAULT_REPORT_INTERVAL_S
    credential_file: str = ""  # where the agent keeps its own credential (cluster-agent import)
    credential_secret: str = ""  # or this Secret in ``namespace`` (in the cluster)
    namespace: str = DEFAULT_NAMESPACE
    watch_timeout_s: float = DEFAULT_WATCH_TIMEOUT_S

    def allows(self, host: str, port: int) -> bool:
        return any(t.matches(host, port) for t in self.allowed)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from e
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value


def from_env(env: Mapping[str, str] | None = None) -> AgentConfig:
    """The configuration; every mistake at once in one :class:`ConfigError` (a line each, named
    by its variable), so a person fixes them in one go."""
    env = os.environ if env is None else env
    errors: list[str] = []

    def check(fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except ConfigError as e:
            errors.append(str(e))
            return default

    server = env.get("CATTLE_SERVER", "").rstrip("/")
    token = env.get("CATTLE_TOKEN", "")
    if not server.startswith("https://"):
        errors.append("CATTLE_SERVER must be set to the server's https:// URL"
                      + (f" (got {server!r})" if server else ""))
    if not token:
        errors.append("CATTLE_TOKEN must be set to the cluster's registration token")
    api_address = env.get("CATTLE_K8S_API", "")
    api_ca = ""
    if env.get("CATTLE_KUBECONFIG"):
        from cluster_agent.kubeconfig import load  # imports ConfigError from here

        target = check(lambda: load(env["CATTLE_KUBECONFIG"]), None)
        if target is not None:
            api_address, api_ca = target.address, target.ca_pem
    elif not api_address and env.get("KUBERNETES_SERVICE_HOST"):
        port = env.get("KUBERNETES_SERVICE_PORT", "443")
        api_address = f"{env['KUBERNETES_SERVICE_HOST']}:{port}"
    if not api_ca and (SA_DIR / "ca.crt").exists():
        api_ca = (SA_DIR / "ca.crt").read_text()
    if env.get("CATTLE_K8S_CA_FILE"):
        try:
            api_ca = Path(env["CATTLE_K8S_CA_FILE"]).read_text()
        except OSError as e:
            errors.append(f"CATTLE_K8S_CA_FILE: cannot read {env['CATTLE_K8S_CA_FILE']}: "
                          f"{e.strerror}")
    api_token = ""
    token_file = env.get("CATTLE_K8S_TOKEN_FILE") or (
        str(SA_DIR / "token") if (SA_DIR / "token").exists() else ""
    )
    if token_file:
        try:
            api_token = Path(token_file).read_text().strip()
        except OSError as e:
            errors.append(f"CATTLE_K8S_TOKEN_FILE: cannot read the service-account token "
                          f"{token_file}: {e.strerror}")
    raw_allowed = env.get("CATTLE_ALLOWED_TARGETS", "")
    allowed_list: list[Target] = []
    for raw in (x for x in raw_allowed.split(",") if x.strip()):
        try:
            allowed_list.append(Target.parse(raw))
        except ConfigError as e:
            errors.append(f"CATTLE_ALLOWED_TARGETS: {e}")
    allowed = tuple(allowed_list)
    if not allowed and api_address and not raw_allowed.strip():
        allowed = check(lambda: (Target.parse(api_address),), ())
    report_interval_s = check(lambda: _positive_float(
        env, "CATTLE_HEALTH_INTERVAL_S", DEFAULT_REPORT_INTERVAL_S), DEFAULT_REPORT_INTERVAL_S)
    watch_timeout_s = check(lambda: _positive_float(
        env, "CATTLE_WATCH_TIMEOUT_S", DEFAULT_WATCH_TIMEOUT_S), DEFAULT_WATCH_TIMEOUT_S)
    if errors:
        raise ConfigError("\n".join(errors))
    return AgentConfig(
        server=server,
        token=token,
        ca_checksum=env.get("CATTLE_CA_CHECKSUM", "").strip().lower(),
        ca_cert_file=env.get("CATTLE_CA_CERT_FILE", ""),
        api_address=api_address,
        api_ca_pem=api_ca,
        api_token=api_token,
        allowed=allowed,
        node_name=env.get("CATTLE_NODE_NAME", ""),
        health_listen=env.get("CATTLE_HEALTH_LISTEN", ""),
        report_interval_s=report_interval_s,
        credential_file=env.get("CATTLE_CREDENTIAL_FILE", ""),
        credential_secret=env.get("CATTLE_CREDENTIAL_SECRET", ""),
        namespace=env.get("CATTLE_NAMESPACE", "") or DEFAULT_NAMESPACE,
        watch_timeout_s=watch_timeout_s,
    )
