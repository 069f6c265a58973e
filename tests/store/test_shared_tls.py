"""Per-deployment state of replicas on one etcd: one CA for every replica (each with its own
serving certificate from it), peer certificates from that CA for mutual TLS between replicas,
and settings, the audit log and login throttling seen alike through every replica."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rancher_server.auth.constants import LOGIN_USER_FREE_FAILURES
from rancher_server.store import SQLiteStore
from rancher_server.tls import (
    PEER_OU,
    SERVING_CA_SECRET,
    PeerTLS,
    generate,
    is_peer_certificate,
    issue_peer_material,
    shared_material,
)
from tests.procs import ServerProc, free_port
from tests.rest import ApiError, Rest
from tests.store.conftest import EtcdMember

ADMIN_PASSWORD = "admin-password-for-shared-1"
HANDSHAKE_TIMEOUT_S = 5.0


def replica(tmp_path: Path, name: str, etcd: EtcdMember) -> ServerProc:
    proc = ServerProc(tmp_path / name, tmp_path / f"{name}.log", port=free_port(),
                      env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD})
    proc.extra_args = ["--store", etcd.url, "--replica-name", name]
    return proc.start()


def test_replicas_share_ca_settings_audit_and_login_throttle(tmp_path: Path) -> None:
    etcd_member = EtcdMember(tmp_path / "etcd")
    etcd_member.start()
    a = b = None
    try:
        a = replica(tmp_path, "a", etcd_member)
        b = replica(tmp_path, "b", etcd_member)
        # One CA: the same checksum from both, each one's certificate trusted with the other's
        # CA file (agents check CATTLE_CA_CHECKSUM wherever the front sends them).
        assert a.ca_checksum == b.ca_checksum
        assert a.ca_path.read_bytes() == b.ca_path.read_bytes()
        on_a, on_b = Rest(a.url, b.ca_path), Rest(b.url, a.ca_path)
        for rest in (on_a, on_b):
            served = rest.call("GET", "/v3/settings/cacerts")
            assert served["checksum"] == a.ca_checksum
            assert hashlib.sha256(served["value"].encode()).hexdigest() == a.ca_checksum
        assert (a.data_dir / "tls" / "tls.crt").read_bytes() != \
            (b.data_dir / "tls" / "tls.crt").read_bytes()  # each its own serving certificate
        assert not (a.data_dir / "tls" / "ca-key.pem").exists()  # the CA key is in the store
        for log in (a.log_path, b.log_path):
            assert "PRIVATE KEY" not in log.read_text()
        # A setting written through a is read through b; its audit entry is listed on b.
        on_a.token = on_a.login("admin", ADMIN_PASSWORD)
        on_b.token = on_a.token
        on_a.call("PUT", "/v3/settings/server-url", {"value": "https://rancher.example.com"})
        got = on_b.call("GET", "/v3/settings/server-url")
        assert (got["value"], got["source"]) == ("https://rancher.example.com", "setting")
        entries = on_b.call("GET", "/v3/auditlogs?limit=50")["data"]
        assert any(e["action"] == "setting.update" and e["target"] == "setting:server-url"
                   for e in entries)
        # Failed logins count on every replica: alternating between a and b, each replica
        # alone sees at most 4 of these 8 guesses (fewer than the 5 free ones) and would never
        # refuse; counted together, the guesses after the fifth meet the lockout.
        answers = []
        for i in range(2 * (LOGIN_USER_FREE_FAILURES - 1)):
            proc = (a, b)[i % 2]
            with pytest.raises(ApiError) as failed:
                Rest(proc.url, proc.ca_path).login("admin", "wrong-password-guess")
            answers.append(failed.value.status)
        assert answers[:LOGIN_USER_FREE_FAILURES] == [401] * LOGIN_USER_FREE_FAILURES
        assert 429 in answers[LOGIN_USER_FREE_FAILURES:], answers
    finally:
        for proc in (b, a):
            if proc is not None:
                proc.stop()
        etcd_member.stop()


# Shared material without a server ------------------------------------------------------------


def test_shared_material_keeps_a_standalone_servers_ca_and_reuses_its_certificate(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "db")
    try:
        alone = generate(tmp_path / "old", ["localhost"])  # this server before it had replicas
        first = shared_material(store, tmp_path / "old", ["localhost", "127.0.0.1"])
        assert first.ca_checksum == alone.ca_checksum  # its agents keep their checksum
        assert first.ca_key_pem is not None and "ca_key_pem" not in repr(first)
        other = shared_material(store, tmp_path / "other", ["localhost"])
        assert other.ca_pem == first.ca_pem and not (tmp_path / "other" / "ca-key.pem").exists()
        cert_before = other.cert_path.read_bytes()
        again = shared_material(store, tmp_path / "other", ["localhost"])
        assert again.cert_path.read_bytes() == cert_before  # still fits: reused
        shared_material(store, tmp_path / "other", ["localhost", "rancher.example.com"])
        assert other.cert_path.read_bytes() != cert_before  # new names: issued again
        assert store.get_secret(SERVING_CA_SECRET) is not None
    finally:
        store.close()


# Peer certificates ---------------------------------------------------------------------------


def _peer(tmp_path: Path, name: str, ca_dir: str = "ca") -> PeerTLS:
    store_dir = tmp_path / ca_dir
    store = SQLiteStore(tmp_path / f"{ca_dir}.db")
    try:
        material = shared_material(store, store_dir, ["localhost"])
    finally:
        store.close()
    assert material.ca_key_pem is not None
    return issue_peer_material(material.ca_pem, material.ca_key_pem, name,
                               ["127.0.0.1", "0.0.0.0"], tmp_path / f"peer-{name}")


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext,
               server_name: str = "127.0.0.1") -> tuple[bytes | None, BaseException | None]:
    """One TLS handshake on loopback; (the client certificate the server saw, its error)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[bytes | None] = []
    failed: list[BaseException] = []

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                seen.append(tls.getpeercert(binary_form=True))
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as e:
            failed.append(e)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), HANDSHAKE_TIMEOUT_S) as raw, \
                client.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.recv(2)  # TLS 1.3: a refused client certificate shows on the first read
    except (ssl.SSLError, OSError):
        pass
    thread.join(HANDSHAKE_TIMEOUT_S)
    listener.close()
    return (seen[0] if seen else None), (failed[0] if failed else None)


def test_peer_certificate_carries_the_replica_ou_and_both_usages(tmp_path: Path) -> None:
    peer = _peer(tmp_path, "replica-1")
    cert = x509.load_pem_x509_certificate(peer.cert_path.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value \
        == PEER_OU
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "replica-1"
    usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert oct(peer.key_path.stat().st_mode & 0o777) == "0o600"


def test_peers_of_one_ca_complete_a_mutual_tls_handshake(tmp_path: Path) -> None:
    a, b = _peer(tmp_path, "a"), _peer(tmp_path, "b")
    seen, error = _handshake(a.server_context(), b.client_context())
    assert error is None and seen is not None and is_peer_certificate(seen)
    _, error = _handshake(a.server_context(), b.client_context(), server_name="localhost")
    assert error is None


def test_peer_listener_refuses_another_cas_cert_and_no_cert(tmp_path: Path) -> None:
    ours = _peer(tmp_path, "a")
    theirs = _peer(tmp_path, "x", ca_dir="other-ca")
    seen, error = _handshake(ours.server_context(), theirs.client_context())
    assert seen is None and isinstance(error, ssl.SSLError)
    anonymous = ssl.create_default_context(cadata=ours.ca_pem.decode())
    seen, error = _handshake(ours.server_context(), anonymous)
    assert seen is None and isinstance(error, ssl.SSLError)


def test_client_checks_the_peers_name_and_ca(tmp_path: Path) -> None:
    a, b = _peer(tmp_path, "a"), _peer(tmp_path, "b")
    seen, _ = _handshake(a.server_context(), b.client_context(), server_name="elsewhere.example")
    assert seen is None  # not a name in a's certificate: the client gave up
    stranger = _peer(tmp_path, "x", ca_dir="other-ca")
    seen, _ = _handshake(stranger.server_context(), b.client_context())
    assert seen is None


def test_serving_certificate_is_not_a_peer_certificate(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    try:
        material = shared_material(store, tmp_path / "tls", ["localhost"])
    finally:
        store.close()
    serving = x509.load_pem_x509_certificate(material.cert_path.read_bytes())
    from cryptography.hazmat.primitives.serialization import Encoding

    assert not is_peer_certificate(serving.public_bytes(Encoding.DER))
    assert not is_peer_certificate(b"not a certificate")
