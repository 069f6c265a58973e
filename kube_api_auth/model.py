"""Compact records built from the Kubernetes objects kube-api-auth watches (pure, no I/O).

The contract with the server that syncs them (all in namespace ``cattle-system`` by default):

- ``ClusterAuthToken`` (``cluster.cattle.io/v3``), named after the token's access key
  (``kubeconfig-u-<id>`` or ``token-<id>``), with top-level fields like Rancher's:
  ``userName``, ``enabled``, ``expiresAt`` (RFC 3339, empty = never), ``clusterName`` (the
  cluster it was synced for) and ``secretRef`` (``{"name": ..., "key": ...}``; default: the
  Secret named like the token, key ``hash``). The deprecated inline ``hash`` field of older
  Rancher versions is honoured when no Secret is referenced.
- ``Secret`` holding ``$3:1:<salt>:<hash>`` (see :mod:`kube_api_auth.hashing`) under the key.
- ``ClusterUserAttribute`` (``cluster.cattle.io/v3``) named after the user:
  ``groups`` (list of strings) and ``enabled``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

from kube_api_auth import hashing

DEFAULT_HASH_KEY = "hash"


class InvalidObjectError(ValueError):
    """An object synced into the cluster cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    name: str
    user_name: str
    enabled: bool
    expires_at: float | None  # unix seconds, None = never
    cluster_name: str
    secret_name: str
    secret_key: str
    inline_hash: tuple[bytes, bytes] | None  # parsed legacy ``hash`` field


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    enabled: bool
    groups: tuple[str, ...]


def object_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise InvalidObjectError("object without metadata.name")
    return str(meta["name"])


def parse_time(text: str) -> float:
    """RFC 3339 (``2026-11-26T15:00:00Z``, with or without fraction/offset) to unix seconds."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidObjectError(f"expiresAt {text[:40]!r} is not RFC 3339") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def token_from_object(obj: dict[str, Any]) -> TokenRecord:
    name = object_name(obj)
    user = obj.get("userName")
    if not isinstance(user, str) or not user:
        raise InvalidObjectError(f"ClusterAuthToken {name}: userName missing")
    expires_text = obj.get("expiresAt") or ""
    if not isinstance(expires_text, str):
        raise InvalidObjectError(f"ClusterAuthToken {name}: expiresAt is not a string")
    ref = obj.get("secretRef") or {}
    if not isinstance(ref, dict):
        raise InvalidObjectError(f"ClusterAuthToken {name}: secretRef is not an object")
    inline = obj.get("hash") or ""
    inline_hash = None
    if inline and not ref:
        try:
            inline_hash = hashing.parse_hash(str(inline))
        except hashing.MalformedHashError as exc:
            raise InvalidObjectError(f"ClusterAuthToken {name}: {exc}") from exc
    return TokenRecord(
        name=name,
        user_name=user,
        enabled=obj.get("enabled") is True,
        expires_at=parse_time(expires_text) if expires_text else None,
        cluster_name=str(obj.get("clusterName") or ""),
        secret_name=str(ref.get("name") or name),
        secret_key=str(ref.get("key") or DEFAULT_HASH_KEY),
        inline_hash=inline_hash,
    )


def user_from_object(obj: dict[str, Any]) -> UserRecord:
    name = object_name(obj)
    groups = obj.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise InvalidObjectError(f"ClusterUserAttribute {name}: groups is not a list of strings")
    return UserRecord(name=name, enabled=obj.get("enabled") is True, groups=tuple(groups))


def secret_hashes(obj: dict[str, Any]) -> dict[str, tuple[bytes, bytes]]:
    """Every key of a Secret that holds a well-formed stored hash, parsed once.

    Keys whose value is not a stored hash are skipped (a Secret may carry other data).
    """
    found: dict[str, tuple[bytes, bytes]] = {}
    data = obj.get("data") or {}
    string_data = obj.get("stringData") or {}
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(value, str):
                continue
            try:
                text = base64.b64decode(value, validate=True).decode("utf-8")
                found[str(key)] = hashing.parse_hash(text)
            except (binascii.Error, UnicodeDecodeError, hashing.MalformedHashError):
                continue
    if isinstance(string_data, dict):
        for key, value in string_data.items():
            try:
                found[str(key)] = hashing.parse_hash(str(value))
            except hashing.MalformedHashError:
                continue
    return found
