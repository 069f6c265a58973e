"""Server configuration: command-line flags, each with an environment variable default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rancher_server.constants import DEFAULT_DATA_DIR_NAME, DEFAULT_LISTEN


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / DEFAULT_DATA_DIR_NAME


@dataclass
class ServerConfig:
    listen: str = DEFAULT_LISTEN
    data_dir: Path = field(default_factory=default_data_dir)
    hostnames: list[str] = field(default_factory=lambda: ["localhost", "127.0.0.1"])
    server_url: str = ""  # what agents and kubeconfigs use; derived from listen if empty
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tcp_forwards: list[str] = field(default_factory=list)
    metrics_anonymous: bool = False
    store_url: str = ""  # etcd://host:port[,host:port]; empty: SQLite in data_dir

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)

    def url_for(self, port: int) -> str:
        if self.server_url:
            return self.server_url.rstrip("/")
        return f"https://{self.hostnames[0]}:{port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "rancher.db"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"
