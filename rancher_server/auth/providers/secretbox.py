"""Secrets at rest (bind passwords): AES-256-GCM with a key from ``RANCHER_SECRETS_KEY``
(URL-safe base64 of 32 bytes) or, without it, a key generated once into ``<data dir>/secrets.key``
(mode 0600). Replicas on one etcd store cannot share a file: without ``RANCHER_SECRETS_KEY`` (and
with no key file from an earlier single-replica life) they share a key generated once into the
store's secrets (``secrets/secrets-key``), so a secret saved through one replica decrypts on all;
the key then sits in etcd beside what it encrypts, and the server says so at start: set
``RANCHER_SECRETS_KEY`` so that an etcd backup alone reveals nothing. The setting's name is the
associated data, so a ciphertext moved to another field does not decrypt.

Encoding: ``aesgcm:<key id>:<base64(nonce || ciphertext)>``; the key id is the first characters of
the key's SHA-256, so a ciphertext names the key it needs. Rotation: set the new key in
``RANCHER_SECRETS_KEY`` and the old one(s) in ``RANCHER_SECRETS_OLD_KEYS`` (comma-separated),
restart; every stored secret is re-encrypted with the new key at start
(:func:`rancher_server.auth.providers.service.rewrap_secrets`), after which the old keys can be
dropped."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rancher_server.auth.providers.constants import (
    SECRETS_KEY_BYTES,
    SECRETS_KEY_ENV,
    SECRETS_KEY_FILE,
    SECRETS_KEY_ID_CHARS,
    SECRETS_NONCE_BYTES,
    SECRETS_OLD_KEYS_ENV,
)

SCHEME = "aesgcm"
KEY_FILE_MODE = 0o600
SHARED_KEY_SECRET = "secrets-key"  # the store secret replicas share when no key is configured


class SharedSecrets(Protocol):
    def put_secret_if_absent(self, name: str, value: str) -> str: ...


class SecretError(Exception):
    """A secret that cannot be decrypted (unknown key, tampered) or a malformed key."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:SECRETS_KEY_ID_CHARS]


def parse_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as e:
        raise SecretError("a secrets key must be URL-safe base64 of 32 bytes") from e
    if len(key) != SECRETS_KEY_BYTES:
        raise SecretError(f"a secrets key must be {SECRETS_KEY_BYTES} bytes "
                          f"(got {len(key)})")
    return key


def new_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRETS_KEY_BYTES)).decode()


class SecretBox:
    def __init__(self, key: bytes, old_keys: tuple[bytes, ...] = ()) -> None:
        self._current = key
        self.current_id = key_id(key)
        self._keys = {key_id(k): k for k in (*old_keys, key)}

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(SECRETS_NONCE_BYTES)
        ct = AESGCM(self._current).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{SCHEME}:{self.current_id}:{base64.b64encode(nonce + ct).decode()}"

    def decrypt(self, encoded: str, context: str) -> str:
        scheme, _, rest = encoded.partition(":")
        kid, _, payload = rest.partition(":")
        if scheme != SCHEME or not payload:
            raise SecretError("not an encrypted secret")
        key = self._keys.get(kid)
        if key is None:
            raise SecretError(f"secret encrypted with an unknown key (id {kid}): set that key in "
                              f"{SECRETS_OLD_KEYS_ENV}")
        try:
            raw = base64.b64decode(payload, validate=True)
            return AESGCM(key).decrypt(
                raw[:SECRETS_NONCE_BYTES], raw[SECRETS_NONCE_BYTES:], context.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag) as e:
            raise SecretError("secret does not decrypt (tampered, or another field's)") from e

    def needs_rewrap(self, encoded: str) -> bool:
        return encoded.split(":", 2)[1:2] != [self.current_id]


def _key_file(data_dir: Path) -> bytes:
    path = data_dir / SECRETS_KEY_FILE
    try:
        return parse_key(path.read_text())
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    text = new_key_text()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError:  # another process wrote it first
        return parse_key(path.read_text())
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return parse_key(text)


def key_source(data_dir: Path, env: Mapping[str, str] | None = None,
               shared: SharedSecrets | None = None) -> str:
    """Where :func:`load_box` takes the key from: "env", "file" or "store"."""
    env = os.environ if env is None else env
    if env.get(SECRETS_KEY_ENV, "").strip():
        return "env"
    return "store" if shared is not None and not (data_dir / SECRETS_KEY_FILE).exists() else (
        "file")


def load_box(data_dir: Path, env: Mapping[str, str] | None = None,
             shared: SharedSecrets | None = None) -> SecretBox:
    """``shared``: the store, when replicas share it (etcd)."""
    env = os.environ if env is None else env
    source = key_source(data_dir, env, shared)
    if source == "env":
        key = parse_key(env[SECRETS_KEY_ENV].strip())
    elif source == "store":
        assert shared is not None
        key = parse_key(shared.put_secret_if_absent(SHARED_KEY_SECRET, new_key_text()))
    else:
        key = _key_file(data_dir)
    old = tuple(parse_key(k) for k in env.get(SECRETS_OLD_KEYS_ENV, "").split(",") if k.strip())
    return SecretBox(key, old)
