"""Password hashes are memory-hard, salted and verified in constant time; token secrets are
256-bit and stored as salted SHA-256."""

from __future__ import annotations

import base64
import hashlib

from kube_api_auth.hashing import verify_hash
from rancher_server.auth import passwords as pw


def test_password_hash_is_salted_memory_hard_and_verifies() -> None:
    h1, h2 = pw.hash_password("correct horse"), pw.hash_password("correct horse")
    assert h1 != h2  # salted
    params = pw.parse_params(h1)
    memory_bytes = 128 * (1 << params["ln"]) * params["r"]
    assert memory_bytes >= 16 * 1024 * 1024  # memory-hard: at least 16 MiB per guess
    assert pw.verify_password("correct horse", h1) and pw.verify_password("correct horse", h2)
    assert not pw.verify_password("correct horsE", h1)
    assert not pw.verify_password("", h1)
    assert "correct horse" not in h1


def test_verify_refuses_malformed_or_tampered_hashes() -> None:
    good = pw.hash_password("secret-password")
    scheme, params, salt, digest = good.split("$")
    assert not pw.verify_password("secret-password", f"{scheme}$ln=30,r=8,p=1${salt}${digest}")
    assert not pw.verify_password("secret-password", f"md5${params}${salt}${digest}")
    assert not pw.verify_password("secret-password", "garbage")
    assert not pw.verify_password("secret-password", f"{scheme}${params}${salt}$AAAA")


def test_token_secret_hash_is_salted_and_in_rancher_format() -> None:
    secret = pw.new_token_secret()
    assert len(secret) >= 52 and secret.isalnum()  # 256 bits
    h1, h2 = pw.hash_token_secret(secret), pw.hash_token_secret(secret)
    assert h1 != h2 and secret not in h1
    unsalted = base64.b64encode(hashlib.sha3_512(secret.encode()).digest()).decode().rstrip("=")
    assert unsalted not in h1
    assert h1.startswith("$3:1:")  # what kube-api-auth verifies downstream
    assert verify_hash(h1, secret)
    assert pw.verify_token_secret(secret, h1) and pw.verify_token_secret(secret, h2)
    assert not pw.verify_token_secret(secret[:-1], h1)
    assert not pw.verify_token_secret(secret, "$3:1:bad")
    assert not pw.verify_token_secret(secret, "garbage")
    assert pw.new_token_secret() != secret


async def test_async_hash_runs_off_the_loop() -> None:
    h = await pw.hash_password_async("off-the-loop")
    assert await pw.verify_password_async("off-the-loop", h)
