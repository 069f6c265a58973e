"""The server's TLS material: a CA and a serving certificate generated on first start (or given),
the CA published at ``/v3/settings/cacerts`` with its SHA-256 for agents' ``CATTLE_CA_CHECKSUM``.
The listener speaks TLS 1.3, or TLS 1.2 with AEAD suites only; HTTPS answers carry HSTS.

Replicas on one store share one CA (``shared_material``): it lives in the store as the secret
``serving-ca`` (certificate and key), created once by whichever replica comes first, and each
replica issues its own serving certificate from it for its ``--hostname``s, so every replica
behind one address presents the same CA and agents' checksum holds wherever they land. The same
CA can issue replicas' peer certificates (``issue_peer_material``: ``OU=rancher-replica``, both
server and client usages) for mutual TLS between replicas. The CA key is never logged."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rancher_server.constants import (
    CA_VALIDITY_DAYS,
    HSTS_MAX_AGE_S,
    SERVING_CERT_VALIDITY_DAYS,
    TLS12_CIPHERS,
    TLS_MIN_VERSION,
)

if TYPE_CHECKING:
    from rancher_server.store.base import Store

HSTS_VALUE = f"max-age={HSTS_MAX_AGE_S}"
SERVING_CA_SECRET = "serving-ca"  # in the store: {"cert": CA PEM, "key": CA key PEM}
PEER_OU = "rancher-replica"  # the organizational unit of a replica's peer certificate
PEER_CERT_VALIDITY_DAYS = 365
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class TLSMaterial:
    ca_pem: bytes
    cert_path: Path
    key_path: Path
    # The CA's key, for replicas sharing a CA from the store (``shared_material``) only: what
    # ``issue_peer_material`` signs with. Kept out of repr() so no log line can carry it.
    ca_key_pem: bytes | None = field(default=None, repr=False)

    @property
    def ca_checksum(self) -> str:
        return ca_checksum(self.ca_pem)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        harden(ctx)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def harden(ctx: ssl.SSLContext) -> None:
    """TLS 1.2 at least, and there only forward-secret AEAD suites (TLS 1.3's are all AEAD)."""
    ctx.minimum_version = ssl.TLSVersion[TLS_MIN_VERSION]
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION


async def add_hsts(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: HTTPS answers tell browsers to use nothing but HTTPS here."""
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS_VALUE)


def ca_checksum(ca_pem: bytes) -> str:
    """SHA-256 hex digest of the CA exactly as served (Rancher's ``CATTLE_CA_CHECKSUM``)."""
    return hashlib.sha256(ca_pem).hexdigest()


def _key() -> ec.EllipticCurvePrivateKey:
    """ECDSA P-256: a TLS handshake signs about 10x faster than with RSA-2048, which is what lets
    a thousand agents reconnect within seconds after a restart."""
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _san_list(hostnames: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for h in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return names


def _new_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = dt.datetime.now(dt.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rancher-py-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca_cert, ca_key


def _issue(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, subject: x509.Name,
    hostnames: list[str], usages: list[x509.ObjectIdentifier], days: int,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = dt.datetime.now(dt.UTC)
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_san_list(hostnames)), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _write_serving(dir_: Path, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
                   hostnames: list[str]) -> None:
    """A serving certificate for ``hostnames`` from the CA, with the CA, into ``dir_``."""
    cert, key = _issue(
        ca_cert, ca_key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]),
        hostnames, [ExtendedKeyUsageOID.SERVER_AUTH], SERVING_CERT_VALIDITY_DAYS)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    _write_private(dir_ / "tls.key", _key_pem(key))
    (dir_ / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    (dir_ / "ca.pem").write_bytes(ca_pem)


def generate(dir_: Path, hostnames: list[str]) -> TLSMaterial:
    """Create a CA and a serving certificate for ``hostnames`` in ``dir_``."""
    dir_.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _new_ca()
    _write_private(dir_ / "ca-key.pem", _key_pem(ca_key))
    _write_serving(dir_, ca_cert, ca_key, hostnames)
    return TLSMaterial(ca_pem=(dir_ / "ca.pem").read_bytes(), cert_path=dir_ / "tls.crt",
                       key_path=dir_ / "tls.key")


def _load_ca(cert_pem: bytes, key_pem: bytes) -> tuple[x509.Certificate,
                                                      ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an ECDSA key")
    return cert, key


def _serving_still_good(dir_: Path, ca_cert: x509.Certificate, hostnames: list[str]) -> bool:
    """``dir_`` holds a serving certificate from this CA for exactly these names, with its key,
    valid for at least another day."""
    try:
        cert = x509.load_pem_x509_certificate((dir_ / "tls.crt").read_bytes())
        if not (dir_ / "tls.key").exists() or (dir_ / "ca.pem").read_bytes() != \
                ca_cert.public_bytes(serialization.Encoding.PEM):
            return False
        cert.verify_directly_issued_by(ca_cert)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False  # missing, unreadable, or not this CA's
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return set(sans) == set(_san_list(hostnames)) and left > dt.timedelta(days=1)


def shared_material(store: Store, tls_dir: Path, hostnames: list[str]) -> TLSMaterial:
    """The deployment's CA from the store (created now if none: the first replica's wins, and a
    CA this data directory generated before, when this server ran alone, is offered first so
    agents keep their checksum), and this replica's serving certificate from it in ``tls_dir``
    (reused when it still fits)."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    stored = store.get_secret(SERVING_CA_SECRET)
    if stored is None:
        local_cert, local_key = tls_dir / "ca.pem", tls_dir / "ca-key.pem"
        if local_cert.exists() and local_key.exists():
            offer = {"cert": local_cert.read_text(), "key": local_key.read_text()}
        else:
            cert, key = _new_ca()
            offer = {"cert": cert.public_bytes(serialization.Encoding.PEM).decode(),
                     "key": _key_pem(key).decode()}
        stored = store.put_secret_if_absent(SERVING_CA_SECRET, json.dumps(offer))
    doc = json.loads(stored)
    ca_key_pem = str(doc["key"]).encode()
    ca_cert, ca_key = _load_ca(str(doc["cert"]).encode(), ca_key_pem)
    if not _serving_still_good(tls_dir, ca_cert, hostnames):
        _write_serving(tls_dir, ca_cert, ca_key, hostnames)
        stale = tls_dir / "ca-key.pem"  # another CA's (this directory's own, which lost)
        if stale.exists() and stale.read_bytes() != ca_key_pem:
            stale.unlink()
    return TLSMaterial(ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
                       cert_path=tls_dir / "tls.crt", key_path=tls_dir / "tls.key",
                       ca_key_pem=ca_key_pem)


@dataclass(frozen=True)
class PeerTLS:
    """A replica's peer certificate (``OU=rancher-replica``) and the CA every replica trusts."""

    ca_pem: bytes
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        """Accepts only clients presenting a certificate of the CA (check the OU with
        ``is_peer_certificate`` on ``getpeercert(binary_form=True)``)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=self.ca_pem.decode())
        harden(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """Presents this replica's certificate; trusts only the CA, checks the host name."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=self.ca_pem.decode())
        harden(ctx)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx


def issue_peer_material(
    ca_cert_pem: bytes, ca_key_pem: bytes, replica_name: str, hostnames: list[str],
    out_dir: Path,
) -> PeerTLS:
    """This replica's peer certificate from the shared CA into ``out_dir`` (``peer.crt``,
    ``peer.key``): CN the replica's name, ``OU=rancher-replica``, the names it is dialled at."""
    ca_cert, ca_key = _load_ca(ca_cert_pem, ca_key_pem)
    names = sorted({h for h in hostnames if h not in WILDCARD_HOSTS} | {"localhost"})
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, PEER_OU),
                         x509.NameAttribute(NameOID.COMMON_NAME, replica_name[:64])])
    cert, key = _issue(ca_cert, ca_key, subject, names,
                       [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                       PEER_CERT_VALIDITY_DAYS)
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / "peer.crt", out_dir / "peer.key"
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return PeerTLS(ca_cert.public_bytes(serialization.Encoding.PEM), cert_path, key_path)


def is_peer_certificate(der: bytes) -> bool:
    """The certificate says it is a replica's (``OU=rancher-replica``); the handshake has
    already checked that the shared CA issued it."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return False
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return any(a.value == PEER_OU for a in units)


def load_or_generate(
    dir_: Path,
    hostnames: list[str],
    cert_file: Path | None = None,
    key_file: Path | None = None,
    ca_file: Path | None = None,
) -> TLSMaterial:
    """Given files win; otherwise reuse what an earlier start generated, or generate it now."""
    if cert_file and key_file:
        ca_pem = ca_file.read_bytes() if ca_file else cert_file.read_bytes()
        return TLSMaterial(ca_pem=ca_pem, cert_path=cert_file, key_path=key_file)
    if (dir_ / "tls.crt").exists() and (dir_ / "tls.key").exists() and (dir_ / "ca.pem").exists():
        return TLSMaterial(
            ca_pem=(dir_ / "ca.pem").read_bytes(),
            cert_path=dir_ / "tls.crt",
            key_path=dir_ / "tls.key",
        )
    return generate(dir_, hostnames)
