"""Each replica's /metrics says which replica it is (``rancher_server_replica_info``), so that
Prometheus can sum per-replica figures over replicas and tell them apart."""

from __future__ import annotations

import socket
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from rancher_server.config import ServerConfig
from rancher_server.metrics import ReplicaInfoCollector
from tests.procs import ServerProc, free_port, running
from tests.rest import Rest


def test_replica_info_gauge() -> None:
    reg = CollectorRegistry()
    reg.register(ReplicaInfoCollector("rancher-0", "etcd"))
    text = generate_latest(reg).decode()
    assert 'rancher_server_replica_info{replica="rancher-0",store="etcd"} 1.0' in text


def test_replica_name_defaults_from_the_host_name() -> None:
    assert ServerConfig().replica.startswith(socket.gethostname())
    assert ServerConfig(replica_name="r-1").replica == "r-1"


def test_server_exports_its_replica_name_and_store(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log", port=free_port(),
                        env={"RANCHER_REPLICA_NAME": "from-env"})
    server.extra_args = ["--replica-name", "r-7"]  # the flag wins over the environment
    server.start()
    with running(server):
        text = Rest(server.url, server.ca_path).call_text("GET", "/metrics")
    lines = [line for line in text.splitlines()
             if line.startswith("rancher_server_replica_info")]
    assert lines == ['rancher_server_replica_info{replica="r-7",store="sqlite"} 1.0']
