"""The store fixtures: ``store`` runs a test on both backends (SQLite, and etcd from Debian's
``etcd-server`` package, one member started here on free loopback ports with a temporary data
directory). Each etcd test gets its own key prefix on the session's member; the fault tests start
``etcd_cluster``, three members of their own."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rancher_server.store import SQLiteStore, Store, StoreError
from rancher_server.store.etcd import EtcdStore
from rancher_server.store.etcd_conn import EtcdConnection

ETCD_START_TIMEOUT_S = 20.0
BACKENDS = ("sqlite", "etcd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EtcdMember:
    """One etcd member on loopback, restartable on the same ports and data. Alone it is a cluster
    of one; ``EtcdCluster`` gives three members one ``--initial-cluster``."""

    def __init__(self, data_dir: Path, name: str = "m0") -> None:
        binary = shutil.which("etcd") or "/usr/bin/etcd"
        if not Path(binary).exists():
            pytest.fail("etcd is not installed: apt-get install etcd-server (scripts/test.sh does)")
        self.binary = binary
        self.name = name
        self.data_dir = data_dir
        self.client_port, self.peer_port = free_port(), free_port()
        self.initial_cluster = f"{name}={self.peer_url}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}.log"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def url(self) -> str:
        return f"etcd://{self.endpoint}"

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Starts the process (a member of a new cluster answers once a quorum has started)."""
        client = f"http://{self.endpoint}"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--name", self.name, "--data-dir", str(self.data_dir),
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", self.peer_url,
                 "--initial-advertise-peer-urls", self.peer_url,
                 "--initial-cluster", self.initial_cluster, "--logger", "zap",
                 "--log-level", "error"],
                stdout=log, stderr=log)

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + ETCD_START_TIMEOUT_S
        while True:
            conn = EtcdConnection([self.endpoint])
            try:
                conn.range_prefix(b"/ready/")
                return
            except StoreError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    tail = self.log.read_text()[-2000:]
                    raise RuntimeError(f"etcd did not start: {tail}") from None
                time.sleep(0.1)
            finally:
                conn.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.send_signal(signal.SIGCONT)  # a paused member cannot exit
                self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the member keeps its sockets open and answers nothing (a hung host)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


class EtcdCluster:
    """Three etcd members on loopback, one cluster; each can be killed (SIGKILL), paused
    (SIGSTOP) and restarted on the same ports and data directory."""

    def __init__(self, root: Path, size: int = 3) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.members = [EtcdMember(root / f"m{i}", name=f"m{i}") for i in range(size)]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for m in self.members:
            m.initial_cluster = initial

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(m.endpoint for m in self.members)

    def start(self) -> EtcdCluster:
        for m in self.members:
            if not m.running:
                m.launch()
        for m in self.members:
            m.wait_ready()
        return self

    def leader(self) -> EtcdMember:
        """The member the running ones agree leads (after an election settles)."""
        from aetcd import rpc
        from aetcd.rpc import rpc_pb2_grpc

        deadline = time.monotonic() + ETCD_START_TIMEOUT_S
        while True:
            for m in self.members:
                if not m.running:
                    continue
                conn = EtcdConnection([m.endpoint])
                try:
                    status = rpc_pb2_grpc.MaintenanceStub(conn.channel()).Status(
                        rpc.StatusRequest(), timeout=2)
                    if status.leader and status.leader == status.header.member_id:
                        return m
                except Exception:  # not up yet, or electing
                    pass
                finally:
                    conn.close()
            if time.monotonic() > deadline:
                raise RuntimeError("no etcd member leads")
            time.sleep(0.1)

    def member_at(self, endpoint: str) -> EtcdMember:
        return next(m for m in self.members if m.endpoint == endpoint)

    def stop(self) -> None:
        for m in self.members:
            m.stop(kill=True)  # its data is the test's: no graceful leader hand-over to wait for


@pytest.fixture(scope="session")
def etcd_member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdMember]:
    member = EtcdMember(tmp_path_factory.mktemp("etcd") / "data")
    member.start()
    yield member
    member.stop()


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    """Three members of the test's own (faults leave a cluster in no state to share)."""
    cluster = EtcdCluster(tmp_path / "etcd").start()
    yield cluster
    cluster.stop()


@pytest.fixture
def etcd_prefix() -> bytes:
    return f"/t-{uuid.uuid4().hex[:12]}/".encode()


@pytest.fixture
def open_etcd(etcd_member: EtcdMember, etcd_prefix: bytes) -> Iterator[Callable[[], EtcdStore]]:
    """Opens stores on the test's prefix (several "replicas"); closes them all after the test."""
    opened: list[EtcdStore] = []

    def open_store() -> EtcdStore:
        s = EtcdStore(etcd_member.url, prefix=etcd_prefix)
        opened.append(s)
        return s

    yield open_store
    for s in opened:
        s.close()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SQLiteStore(tmp_path / "db")
        yield s
        s.close()
    else:
        opener: Callable[[], EtcdStore] = request.getfixturevalue("open_etcd")
        yield opener()
