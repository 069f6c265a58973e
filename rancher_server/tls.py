"""The server's TLS material: a CA and a serving certificate generated on first start (or given),
the CA published at ``/v3/settings/cacerts`` with its SHA-256 for agents' ``CATTLE_CA_CHECKSUM``.
The listener speaks TLS 1.3, or TLS 1.2 with AEAD suites only; HTTPS answers carry HSTS."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography import x509
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

HSTS_VALUE = f"max-age={HSTS_MAX_AGE_S}"


@dataclass(frozen=True)
class TLSMaterial:
    ca_pem: bytes
    cert_path: Path
    key_path: Path

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


def generate(dir_: Path, hostnames: list[str]) -> TLSMaterial:
    """Create a CA and a serving certificate for ``hostnames`` in ``dir_``."""
    dir_.mkdir(parents=True, exist_ok=True)
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
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVING_CERT_VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san_list(hostnames)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    (dir_ / "ca.pem").write_bytes(ca_pem)
    _write_private(dir_ / "ca-key.pem", _key_pem(ca_key))
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_pem
    (dir_ / "tls.crt").write_bytes(chain)
    _write_private(dir_ / "tls.key", _key_pem(key))
    return TLSMaterial(ca_pem=ca_pem, cert_path=dir_ / "tls.crt", key_path=dir_ / "tls.key")


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
