"""Server configuration: command-line flags, each with an environment variable default."""

from __future__ import annotations

import os
import socket
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
    replica_name: str = ""  # on etcd; empty: <host name>-<listen port>
    peer_listen: str = ""  # on etcd: the mutual-TLS listener for other replicas; empty: any port
    peer_address: str = ""  # what other replicas dial; empty: derived from peer_listen

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)

    def url_for(self, port: int) -> str:
        if self.server_url:
            return self.server_url.rstrip("/")
        return f"https://{self.hostnames[0]}:{port}"

    @property
    def replica(self) -> str:
        """Unique per process on one host too (two replicas on one machine); stable across
        restarts on the same listener."""
        return self.replica_name or f"{socket.gethostname()}-{self.host_port[1]}"

    def peer_host_port(self, bound_port: int) -> tuple[str, int]:
        """Where the peer listener binds (default: the main listener's host, a port the system
        picks: the directory records the one it got, so nothing needs to know it in advance)."""
        if self.peer_listen:
            host, _, port = self.peer_listen.rpartition(":")
            return host.strip("[]") or "0.0.0.0", int(port)
        return self.host_port[0], 0

    def peer_dial_address(self, host: str, port: int) -> str:
        if self.peer_address:
            return self.peer_address
        if host in ("0.0.0.0", "::", ""):
            host = self.hostnames[0]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "rancher.db"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"
