from __future__ import annotations

import base64
import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_api_auth import hashing

secrets_st = st.text(min_size=0, max_size=80)
salts_st = st.binary(min_size=hashing.MIN_SALT_BYTES, max_size=hashing.MAX_SALT_BYTES)


def test_format_and_known_vector() -> None:
    salt = bytes(range(8))
    stored = hashing.create_hash("s3cret", salt)
    version, iterations, salt_text, digest_text = stored.split(":")
    assert (version, iterations) == ("$3", "1")
    assert salt_text == "AAECAwQFBgc"  # unpadded standard base64, as Rancher writes it
    expected = hashlib.sha3_512(salt + b"s3cret").digest()
    assert base64.b64decode(digest_text + "=" * (-len(digest_text) % 4)) == expected
    assert "=" not in stored


def test_fresh_salts_differ() -> None:
    assert hashing.create_hash("x") != hashing.create_hash("x")


@settings(max_examples=200, deadline=None)
@given(secret=secrets_st, salt=salts_st)
def test_round_trip(secret: str, salt: bytes) -> None:
    stored = hashing.create_hash(secret, salt)
    assert hashing.parse_hash(stored)[0] == salt
    assert hashing.verify_hash(stored, secret)


@settings(max_examples=200, deadline=None)
@given(secret=secrets_st, other=secrets_st)
def test_wrong_secret(secret: str, other: str) -> None:
    stored = hashing.create_hash(secret)
    assert hashing.verify_hash(stored, other) == (secret == other)


@settings(max_examples=200, deadline=None)
@given(secret=secrets_st, salt=salts_st, other_salt=salts_st)
def test_wrong_salt(secret: str, salt: bytes, other_salt: bytes) -> None:
    """The same digest under another salt does not verify."""
    digest_text = hashing.create_hash(secret, salt).rsplit(":", 1)[1]
    swapped = hashing.create_hash("", other_salt).rsplit(":", 1)[0] + ":" + digest_text
    assert hashing.verify_hash(swapped, secret) == (salt == other_salt)


@settings(max_examples=300, deadline=None)
@given(secret=secrets_st, cut=st.integers(min_value=1, max_value=200))
def test_truncated_is_malformed_or_mismatch(secret: str, cut: int) -> None:
    """Any truncation is either refused as malformed or fails to verify; never accepted."""
    stored = hashing.create_hash(secret)
    truncated = stored[: max(0, len(stored) - cut)]
    try:
        ok = hashing.verify_hash(truncated, secret)
    except hashing.MalformedHashError:
        return
    assert not ok


@settings(max_examples=200, deadline=None)
@given(junk=st.text(max_size=120))
def test_arbitrary_text_never_crashes(junk: str) -> None:
    with contextlib.suppress(hashing.MalformedHashError):
        hashing.parse_hash(junk)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("", "4 ':'-separated fields"),
        ("$3:1:AAECAwQFBgc", "got 3"),
        ("$2:1:AAECAwQFBgc:" + "A" * 86, "unsupported hash version"),
        ("$3:2:AAECAwQFBgc:" + "A" * 86, "unsupported iteration marker"),
        ("$3:1::" + "A" * 86, "empty salt"),
        ("$3:1:AAECAwQFBgc:", "empty hash"),
        ("$3:1:AAEC:" + "A" * 86, "salt is 3 bytes"),
        ("$3:1:AAECAwQFBgc:" + "A" * 40, "hash is 30 bytes"),
        ("$3:1:AA-CAwQFBgc:" + "A" * 86, "salt is not unpadded standard base64"),
        ("$3:1:AAECAwQFBgc:" + "A" * 85, "impossible base64 length"),
        ("$3:1:" + "A" * 600 + ":x", "longer than"),
    ],
)
def test_malformed_messages(stored: str, message: str) -> None:
    with pytest.raises(hashing.MalformedHashError, match=message.replace("$", r"\$")):
        hashing.verify_hash(stored, "secret")
