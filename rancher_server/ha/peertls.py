"""Mutual TLS between replicas. The deployment's peer CA lives in etcd (created once by the first
replica, in one transaction: two replicas starting together end with the same CA); each replica
issues itself a certificate from it at start, with ``OU=rancher-replica`` and both the server and
client usages. A peer listener accepts only certificates of that CA carrying that OU: neither an
agent nor a user can present one. The CA's key is as secret as etcd itself (whoever reads etcd
owns the deployment anyway) and is never logged."""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from aetcd import rpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rancher_server.ha.directory import DEFAULT_HA_PREFIX
from rancher_server.store.etcd_conn import EtcdConnection, absent, put_op
from rancher_server.tls import _key, _key_pem, _san_list, _write_private, harden

PEER_OU = "rancher-replica"
PEER_CA_KEY = b"peer-ca"  # under the HA prefix: {cert PEM}\n{key PEM}
PEER_CA_VALIDITY_DAYS = 3650
PEER_CERT_VALIDITY_DAYS = 365


@dataclass(frozen=True)
class PeerTLS:
    ca_pem: bytes
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=self.ca_pem.decode())
        harden(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=self.ca_pem.decode())
        harden(ctx)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    @staticmethod
    def is_peer(der: bytes) -> bool:
        return is_peer_certificate(der)


def is_peer_certificate(der: bytes) -> bool:
    """The certificate says it is a replica's (the CA was checked by the handshake)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return False
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return any(a.value == PEER_OU for a in units)


def _new_ca() -> bytes:
    now = dt.datetime.now(dt.UTC)
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rancher-py-peer-ca")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=PEER_CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM) + b"\n" + _key_pem(key)


def peer_ca(conn: EtcdConnection, prefix: bytes = DEFAULT_HA_PREFIX) -> tuple[bytes, bytes]:
    """The deployment's peer CA (cert PEM, key PEM), created now if there is none."""
    key = prefix + PEER_CA_KEY
    candidate = _new_ca()
    conn.txn([absent(key)], [put_op(key, candidate)])
    resp = conn.range_raw(rpc.RangeRequest(key=key))
    stored = bytes(resp.kvs[0].value)
    cert_pem, _, key_pem = stored.partition(b"\n-----BEGIN PRIVATE KEY")
    return cert_pem.strip() + b"\n", b"-----BEGIN PRIVATE KEY" + key_pem


def peer_tls(conn: EtcdConnection, replica: str, hostnames: list[str], out_dir: Path,
             prefix: bytes = DEFAULT_HA_PREFIX) -> PeerTLS:
    """This replica's peer certificate, issued from the deployment's peer CA into ``out_dir``."""
    ca_pem, ca_key_pem = peer_ca(conn, prefix)
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    key = _key()
    names = sorted({h for h in hostnames if h and h not in ("0.0.0.0", "::")} | {"localhost"})
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, PEER_OU),
            x509.NameAttribute(NameOID.COMMON_NAME, replica[:64])]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=PEER_CERT_VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san_list(names)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / "peer.crt", out_dir / "peer.key"
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return PeerTLS(ca_pem, cert_path, key_path)
