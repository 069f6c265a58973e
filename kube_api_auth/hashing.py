"""Salted SHA3-512 token hashes in Rancher's format ``$3:1:<salt>:<hash>``.

Pure functions, no I/O and no dependency beyond the standard library, so that the server
can import this module to produce the hashes it syncs into downstream clusters.

Format (fields separated by ``:``):

- ``$3``: the hash version, 3 = SHA3-512 (Rancher's ``SHA3Version``);
- ``1``: the iteration count / format marker; only ``1`` (one pass) exists;
- ``<salt>``: the random salt, base64 standard alphabet without padding;
- ``<hash>``: ``SHA3-512(salt || secret)``, base64 standard alphabet without padding.

The standard alphabet without padding is what Rancher's Go code writes
(``base64.RawStdEncoding``); it never contains ``:``, so the split is unambiguous, and
hashes made by either implementation verify in the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

HASH_VERSION = 3
HASH_ITERATIONS = 1
SALT_BYTES = 16  # fresh salts; stored salts of any length in [MIN, MAX] are accepted
MIN_SALT_BYTES = 8  # Rancher's Go hasher writes 8-byte salts
MAX_SALT_BYTES = 64
DIGEST_BYTES = 64  # SHA3-512
MAX_HASH_CHARS = 512  # a stored hash longer than this is refused before decoding
_PREFIX = f"${HASH_VERSION}:{HASH_ITERATIONS}:"


class MalformedHashError(ValueError):
    """A stored hash does not follow ``$3:1:<salt>:<hash>``; the message says which part."""


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _b64decode(text: str, field: str) -> bytes:
    if not text:
        raise MalformedHashError(f"empty {field}")
    if len(text) % 4 == 1:
        raise MalformedHashError(f"{field} has an impossible base64 length {len(text)}")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedHashError(f"{field} is not unpadded standard base64") from exc


def _digest(salt: bytes, secret: str) -> bytes:
    # surrogatepass: a JSON token may carry a lone surrogate (\ud800); it must hash (and fail
    # to match), not raise
    return hashlib.sha3_512(salt + secret.encode("utf-8", "surrogatepass")).digest()


def create_hash(secret: str, salt: bytes | None = None) -> str:
    """Hash ``secret`` with a fresh random salt (or ``salt``, for tests) into the stored form."""
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    if not MIN_SALT_BYTES <= len(salt) <= MAX_SALT_BYTES:
        raise ValueError(f"salt must be {MIN_SALT_BYTES}..{MAX_SALT_BYTES} bytes")
    return f"{_PREFIX}{_b64encode(salt)}:{_b64encode(_digest(salt, secret))}"


def parse_hash(stored: str) -> tuple[bytes, bytes]:
    """Split a stored hash into (salt, digest); raise :class:`MalformedHashError` if it is bad."""
    if len(stored) > MAX_HASH_CHARS:
        raise MalformedHashError(f"stored hash longer than {MAX_HASH_CHARS} characters")
    parts = stored.split(":")
    if len(parts) != 4:
        raise MalformedHashError(
            f"expected 4 ':'-separated fields ($version:iterations:salt:hash), got {len(parts)}"
        )
    version, iterations, salt_text, digest_text = parts
    if version != f"${HASH_VERSION}":
        raise MalformedHashError(f"unsupported hash version {version[:8]!r}, want ${HASH_VERSION}")
    if iterations != str(HASH_ITERATIONS):
        raise MalformedHashError(
            f"unsupported iteration marker {iterations[:8]!r}, want {HASH_ITERATIONS}"
        )
    salt = _b64decode(salt_text, "salt")
    if not MIN_SALT_BYTES <= len(salt) <= MAX_SALT_BYTES:
        raise MalformedHashError(
            f"salt is {len(salt)} bytes, want {MIN_SALT_BYTES}..{MAX_SALT_BYTES}"
        )
    digest = _b64decode(digest_text, "hash")
    if len(digest) != DIGEST_BYTES:
        raise MalformedHashError(f"hash is {len(digest)} bytes, want {DIGEST_BYTES} (SHA3-512)")
    return salt, digest


def verify_hash(stored: str, secret: str) -> bool:
    """True if ``secret`` matches ``stored``; the digest comparison takes constant time.

    Raises :class:`MalformedHashError` when ``stored`` itself is malformed, so a caller can
    tell "wrong secret" from "bad data synced into the cluster".
    """
    salt, digest = parse_hash(stored)
    return matches(salt, digest, secret)


def matches(salt: bytes, digest: bytes, secret: str) -> bool:
    """True if ``secret`` hashes to ``digest`` with ``salt`` (from :func:`parse_hash`);
    constant-time comparison. The review path parses stored hashes once, then calls this."""
    return hmac.compare_digest(_digest(salt, secret), digest)
