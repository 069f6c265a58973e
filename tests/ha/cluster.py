"""A deployment of replicas for the HA tests: one etcd member (or three), the stand-in, N server
replicas on that etcd with their peer listeners, agents; helpers to read the shared directory."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import yaml

from rancher_server.ha.directory import DEFAULT_HA_PREFIX
from rancher_server.store.etcd import DEFAULT_PREFIX
from rancher_server.store.etcd_conn import EtcdConnection
from tests.ha.front import Front
from tests.kube import KubeSimProc
from tests.procs import AgentProc, ServerProc, free_port, metrics, wait_until
from tests.rest import Rest
from tests.store.conftest import EtcdMember

ADMIN_PASSWORD = "admin-password-for-ha-1"
ACTIVE_WITHIN_S = 30.0


@dataclass
class Replica:
    name: str
    proc: ServerProc
    peer_port: int
    ca_path: Path

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def alive(self) -> bool:
        return self.proc.proc is not None and self.proc.proc.poll() is None


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class RawRest(Rest):
    def raw(self, method: str, path: str) -> Answer:
        host, port = self.url.removeprefix("https://").rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), context=self.ctx, timeout=30)
        try:
            conn.request(method, path, headers={"Authorization": f"Bearer {self.token}"})
            resp = conn.getresponse()
            return Answer(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()


class Deployment:
    def __init__(self, tmp: Path, replicas: int = 2, sim_args: tuple[str, ...] = (),
                 front: bool = False) -> None:
        """``front``: HAProxy in front of the replicas, which name it as their public URL (agents
        and kubeconfigs use it); their serving certificates come from the store's one CA."""
        self.tmp = tmp
        self.etcd = EtcdMember(tmp / "etcd")
        self.sim = KubeSimProc(tmp / "sim", ["--nodes", "1", "--authorization-mode", "RBAC",
                                             *sim_args])
        self.replicas: list[Replica] = []
        self.agents: list[AgentProc] = []
        self._wanted = replicas
        self.front: Front | None = None
        self._ports = [free_port() for _ in range(replicas)]
        if front:
            self.front = Front(tmp / "front", [(f"r{i}", p) for i, p in enumerate(self._ports)])
        self.token = ""
        self.registrations: dict[str, dict[str, Any]] = {}

    def __enter__(self) -> Deployment:
        self.etcd.start()
        self.sim.start()
        if self.front is not None:
            self.front.start()
        for i in range(self._wanted):
            self.add_replica(f"r{i}", self._ports[i])
        self.token = self.rest(self.replicas[0]).login("admin", ADMIN_PASSWORD)
        return self

    def add_replica(self, name: str, port: int = 0) -> Replica:
        peer = free_port()
        proc = ServerProc(self.tmp / name, self.tmp / f"{name}.log", port=port or free_port(),
                          env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD})
        # Peers dial each replica at its own loopback address, which is in neither its
        # --hostname list nor its listen address: the peer certificate must name it anyway.
        peer_host = f"127.0.0.{2 + len(self.replicas)}"
        proc.extra_args = ["--store", self.etcd.url, "--replica-name", name,
                           "--peer-listen", f"0.0.0.0:{peer}",
                           "--peer-address", f"{peer_host}:{peer}"]
        if self.front is not None:  # one serving CA for all: the store's (shared_material)
            proc.extra_args += ["--server-url", self.front.url]
        replica = Replica(name, proc.start(), peer, proc.ca_path)
        self.replicas.append(replica)
        return replica

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        for agent in self.agents:
            agent.stop()
        for r in self.replicas:
            r.proc.stop()  # closes a killed replica's log too
        if self.front is not None:
            self.front.stop()
        self.sim.stop()
        self.etcd.stop()

    def rest(self, replica: Replica) -> RawRest:
        return RawRest(replica.url, replica.ca_path, self.token or None)

    def front_rest(self) -> RawRest:
        assert self.front is not None
        return RawRest(self.front.url, self.replicas[0].ca_path, self.token or None)

    def import_cluster(self, through: Replica | None = None, name: str = "") -> str:
        """An agent connected to ``through``, or to the front when None."""
        api = self.rest(through) if through is not None else self.front_rest()
        server = through.url if through is not None else api.url
        checksum = self.replicas[0].proc.ca_checksum if through is None \
            else through.proc.ca_checksum
        reg = api.call("POST", "/v3/clusters", {"name": name or f"ha-{time.monotonic_ns()}"})
        agent = AgentProc({"CATTLE_SERVER": server,
                           "CATTLE_TOKEN": reg["registrationToken"],
                           "CATTLE_CA_CHECKSUM": checksum},
                          self.tmp / f"agent-{reg['id']}.log",
                          args=["import", "--kubeconfig", str(self.sim.kubeconfig)]).start()
        self.agents.append(agent)
        self.registrations[reg["id"]] = reg
        wait_until(lambda: api.call("GET", f"/v3/clusters/{reg['id']}")["state"] == "active",
                   ACTIVE_WITHIN_S, 0.2, what="the agent connected")
        return str(reg["id"])

    def kubeconfig(self, cluster_id: str, via: Replica) -> Path:
        path = self.tmp / f"{cluster_id}-{via.name}.kubeconfig"
        doc = self.rest(via).call("POST", f"/v3/clusters/{cluster_id}?action=generateKubeconfig")
        config = yaml.safe_load(doc["config"])
        # The replicas here have no common public URL: aim every context at ``via`` itself.
        ca = base64.b64encode(via.ca_path.read_bytes()).decode()
        for entry in config["clusters"]:
            server = urlsplit(entry["cluster"]["server"])
            entry["cluster"]["server"] = via.url + server.path
            entry["cluster"]["certificate-authority-data"] = ca
        path.write_text(yaml.safe_dump(config))
        return path

    def _etcd_range(self, prefix: bytes) -> dict[str, str]:
        """Every key under ``prefix`` and its value, read from etcd itself."""
        conn = EtcdConnection([self.etcd.endpoint])
        try:
            loaded = conn.range_prefix(prefix)
        finally:
            conn.close()
        return {bytes(kv.key).decode(): bytes(kv.value).decode() for kv in loaded.kvs}

    def directory(self, kind: str) -> dict[str, str]:
        return {k.split(f"/{kind}/", 1)[1]: v for k, v in
                self._etcd_range(DEFAULT_HA_PREFIX + kind.encode() + b"/").items()}

    def store_records(self, kind: str) -> dict[str, str]:
        """The store's raw keys under ``<prefix><kind>/`` (not loaded into memory: read here)."""
        return self._etcd_range(DEFAULT_PREFIX + kind.encode() + b"/")

    def holder(self, cluster_id: str) -> str | None:
        doc = self.directory("sessions").get(f"{cluster_id}/{cluster_id}")
        return None if doc is None else str(json.loads(doc)["replica"])

    def owner(self, cluster_id: str) -> str | None:
        return self.directory("owners").get(cluster_id)

    def metric(self, replica: Replica, name: str) -> float:
        scraped = metrics(f"{replica.url}/metrics", replica.ca_path)
        return sum(v for k, v in scraped.items() if k == name or k.startswith(name + "{"))

    def peer_tunnels_opened(self, replica: Replica) -> float:
        return self.metric(replica, "rancher_ha_peer_tunnels_opened_total")

    def wait_owner(self, cluster_id: str, replica: Replica, within_s: float = 15.0) -> None:
        wait_until(lambda: self.owner(cluster_id) == replica.name, within_s, 0.1,
                   what=f"{replica.name} owns {cluster_id}")


def ssl_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))
