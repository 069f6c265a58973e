"""Compact JWS (RS256) signing and verification with ``cryptography``: just what SA tokens need."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ALGORITHM = "RS256"
MAX_TOKEN_BYTES = 16 * 1024


class JWTError(ValueError):
    """A token that is not a well-formed, correctly signed RS256 JWT."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise JWTError("malformed base64url") from exc


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """kube-apiserver's ``kid``: base64url(sha256(PKIX DER of the public key))."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64url(hashlib.sha256(der).digest())


def looks_like_jwt(token: str) -> bool:
    parts = token.split(".")
    return len(parts) == 3 and all(parts)


def sign(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str) -> str:
    header = {"alg": ALGORITHM, "kid": kid}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(signature)


def verify(token: str, public_key: rsa.RSAPublicKey) -> dict[str, Any]:
    """The claims of ``token`` if its RS256 signature is ``public_key``'s; else JWTError."""
    if len(token) > MAX_TOKEN_BYTES or not looks_like_jwt(token):
        raise JWTError("not a compact JWS")
    head_b64, claims_b64, sig_b64 = token.split(".")
    try:
        header = json.loads(b64url_decode(head_b64))
        claims = json.loads(b64url_decode(claims_b64))
    except (ValueError, UnicodeDecodeError) as exc:
        raise JWTError("malformed JSON") from exc
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise JWTError("unexpected signing algorithm")
    if not isinstance(claims, dict):
        raise JWTError("claims are not an object")
    try:
        public_key.verify(
            b64url_decode(sig_b64),
            f"{head_b64}.{claims_b64}".encode("ascii"),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature as exc:
        raise JWTError("invalid signature") from exc
    return claims
