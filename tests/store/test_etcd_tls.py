"""The store over TLS to etcd (``etcds://``): etcd started with a serving certificate and
``--client-cert-auth``; the store (and a whole server with its replica machinery) connects with
the CA and a client certificate from ``RANCHER_ETCD_*`` files; without a client certificate etcd
refuses it; a missing CA is a clear error before anything connects."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rancher_server.store import StorageUnavailable, StoreError
from rancher_server.store.etcd import EtcdStore
from rancher_server.store.etcd_conn import EtcdConnection, EtcdTLS
from tests.procs import ServerProc, free_port
from tests.rest import Rest
from tests.store.conftest import ETCD_START_TIMEOUT_S, EtcdMember
from tests.tlsutil import self_signed


class TLSEtcd(EtcdMember):
    def __init__(self, data_dir: Path, certs: Path) -> None:
        super().__init__(data_dir)
        certs.mkdir(parents=True, exist_ok=True)
        self.server_cert, self.server_key = self_signed(
            certs, "etcd", file_names=("server.crt", "server.key"))
        self.client_cert, self.client_key = self_signed(
            certs, "rancher", file_names=("client.crt", "client.key"))

    @property
    def url(self) -> str:
        return f"etcds://{self.endpoint}"

    def env(self, client_cert: bool = True) -> dict[str, str]:
        out = {"RANCHER_ETCD_CAFILE": str(self.server_cert)}
        if client_cert:
            out |= {"RANCHER_ETCD_CERTFILE": str(self.client_cert),
                    "RANCHER_ETCD_KEYFILE": str(self.client_key)}
        return out

    def launch(self) -> None:
        client = f"https://{self.endpoint}"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--name", self.name, "--data-dir", str(self.data_dir),
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", self.peer_url,
                 "--initial-advertise-peer-urls", self.peer_url,
                 "--initial-cluster", self.initial_cluster,
                 "--cert-file", str(self.server_cert), "--key-file", str(self.server_key),
                 "--client-cert-auth", "--trusted-ca-file", str(self.client_cert),
                 "--logger", "zap", "--log-level", "error"],
                stdout=log, stderr=log)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + ETCD_START_TIMEOUT_S
        tls = EtcdTLS.from_env(self.env())
        while True:
            conn = EtcdConnection([self.endpoint], tls=tls)
            try:
                conn.range_prefix(b"/ready/")
                return
            except StoreError:
                if time.monotonic() > deadline:
                    raise RuntimeError("etcd did not start: "
                                       + self.log.read_text()[-2000:]) from None
                time.sleep(0.1)
            finally:
                conn.close()


@pytest.fixture
def tls_etcd(tmp_path: Path) -> Iterator[TLSEtcd]:
    member = TLSEtcd(tmp_path / "etcd", tmp_path / "certs")
    member.start()
    yield member
    member.stop()


def test_store_over_tls_with_a_client_certificate(tls_etcd: TLSEtcd,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in tls_etcd.env().items():
        monkeypatch.setenv(k, v)
    store = EtcdStore(tls_etcd.url, prefix=b"/tls-test/")
    try:
        user = store.create_user("over-tls", "", "hash")
        assert store.user_by_username("over-tls") == user
    finally:
        store.close()


def test_etcd_refuses_a_client_without_certificate(tls_etcd: TLSEtcd) -> None:
    conn = EtcdConnection([tls_etcd.endpoint], rpc_timeout_s=2.0,
                          tls=EtcdTLS.from_env(tls_etcd.env(client_cert=False)))
    try:
        with pytest.raises(StorageUnavailable):
            conn.range_prefix(b"/any/")
    finally:
        conn.close()


def test_etcds_without_a_ca_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="RANCHER_ETCD_CAFILE"):
        EtcdTLS.from_env({})
    with pytest.raises(ValueError, match="go together"):
        EtcdTLS.from_env({"RANCHER_ETCD_CAFILE": "/x", "RANCHER_ETCD_CERTFILE": "/y"})


def test_a_server_runs_on_etcd_over_tls(tls_etcd: TLSEtcd, tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "srv", tmp_path / "srv.log", port=free_port(),
                        env={"CATTLE_BOOTSTRAP_PASSWORD": "admin-password-over-tls",
                             **tls_etcd.env()})
    server.extra_args = ["--store", tls_etcd.url, "--replica-name", "tls-0"]
    server.start()
    try:
        api = Rest(server.url, server.ca_path)
        api.token = api.login("admin", "admin-password-over-tls")
        created = api.call("POST", "/v3/users", {"username": "via-tls",
                                                 "password": "via-tls-password-1"})
        assert any(u["id"] == created["id"] for u in api.call("GET", "/v3/users")["data"])
    finally:
        server.stop()
