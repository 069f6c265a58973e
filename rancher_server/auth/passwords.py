"""Password hashing (memory-hard scrypt) and API token secrets (salted SHA3-512).

Passwords are chosen by people, so they are guessable: each guess must cost real memory and time.
scrypt with N=2^15, r=8 needs 128*N*r = 32 MiB and ~0.1 s per hash (OWASP's minimum is N=2^17 with
r=8, p=1 for interactive logins on servers; we take N=2^15 because the whole server shares two
cores, and raise it by changing SCRYPT_LOG2_N: the encoding carries the parameters, so old hashes
still verify). The encoding is ``scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>``.

Token secrets are 256 bits from ``secrets``: nobody can guess one, so a memory-hard hash would only
slow down every request. A salted hash is enough: preimage resistance is what protects a
stolen database, and a 2^256 search space needs no key stretching. We use SHA3-512 in Rancher's
``$3:1:<salt>:<hash>`` format (:mod:`kube_api_auth.hashing`) so the stored hash can be synced to
kube-api-auth as it is. Both comparisons are constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets

from kube_api_auth import hashing as token_hashing

SCRYPT_LOG2_N = 15  # N = 32768 iterations of the memory-hard mix
SCRYPT_R = 8  # block size: memory = 128 * N * r bytes = 32 MiB
SCRYPT_P = 1  # parallelism
SCRYPT_SALT_BYTES = 16
SCRYPT_DKLEN_BYTES = 32
SCRYPT_MAX_LOG2_N = 18  # refuse stored parameters beyond this (a tampered DB): 512 MiB at r=16
SCRYPT_MAX_R = 2 * SCRYPT_R
SCRYPT_MAX_P = 4
SCRYPT_MAXMEM_BYTES = 128 * (1 << SCRYPT_MAX_LOG2_N) * SCRYPT_MAX_R + (1 << 20)  # + 1 MiB slack
SCHEME = "scrypt"

GENERATED_PASSWORD_BYTES = 18  # 144 random bits, 24 URL-safe characters
TOKEN_SECRET_BYTES = 32  # 256-bit bearer secrets


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=1 << log2_n, r=r, p=p, dklen=dklen,
        maxmem=SCRYPT_MAXMEM_BYTES,
    )


def hash_password(password: str, *, log2_n: int = SCRYPT_LOG2_N) -> str:
    """CPU- and memory-expensive: call it via :func:`hash_password_async` on the event loop."""
    salt = secrets.token_bytes(SCRYPT_SALT_BYTES)
    digest = _scrypt(password, salt, log2_n, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN_BYTES)
    return f"{SCHEME}$ln={log2_n},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def parse_params(encoded: str) -> dict[str, int]:
    """The scrypt parameters of an encoded hash (``ln``, ``r``, ``p``); ValueError if malformed."""
    scheme, params, _salt, _digest = encoded.split("$")
    if scheme != SCHEME:
        raise ValueError("not an scrypt hash")
    out = {k: int(v) for k, v in (kv.split("=", 1) for kv in params.split(","))}
    if set(out) != {"ln", "r", "p"} or not 1 <= out["ln"] <= SCRYPT_MAX_LOG2_N:
        raise ValueError("bad scrypt parameters")
    if not (1 <= out["r"] <= SCRYPT_MAX_R and 1 <= out["p"] <= SCRYPT_MAX_P):
        raise ValueError("bad scrypt parameters")
    return out


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against an encoding from :func:`hash_password`."""
    try:
        params = parse_params(encoded)
        salt, digest = (_unb64(x) for x in encoded.split("$")[2:])
    except (ValueError, binascii.Error):
        return False
    candidate = _scrypt(password, salt, params["ln"], params["r"], params["p"], len(digest))
    return hmac.compare_digest(candidate, digest)


# A valid hash of a random password: verifying an unknown username against it costs the same time
# as a real check, so response times do not reveal which usernames exist.
_DUMMY_HASH: str | None = None


def dummy_hash() -> str:
    global _DUMMY_HASH  # noqa: PLW0603 - computed once, lazily (it is expensive)
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, encoded: str) -> bool:
    return await asyncio.to_thread(verify_password, password, encoded)


def generate_password() -> str:
    """A random password for the bootstrap admin or ``user create`` without one."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def new_token_secret() -> str:
    """A bearer secret: 256 random bits as 52 lowercase base32 chars (Rancher's are [a-z0-9])."""
    return base64.b32encode(secrets.token_bytes(TOKEN_SECRET_BYTES)).decode().rstrip("=").lower()


def hash_token_secret(secret: str) -> str:
    """Salted SHA3-512 in kube-api-auth's format (``$3:1:<salt>:<hash>``, Rancher's): the very
    hash the server stores is what it syncs to clusters with an authorized endpoint, so the
    plain secret never needs to be kept or sent anywhere."""
    return token_hashing.create_hash(secret)


def verify_token_secret(secret: str, encoded: str) -> bool:
    """Constant-time check of ``secret`` against a stored hash; False for a malformed hash."""
    try:
        return token_hashing.verify_hash(encoded, secret)
    except token_hashing.MalformedHashError:
        return False
