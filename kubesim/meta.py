"""Small helpers on object metadata: timestamps, uids, name validation."""

from __future__ import annotations

import datetime
import re
import secrets
import uuid
from typing import Any

DNS1123_SUBDOMAIN_MAX_LEN = 253
GENERATE_NAME_SUFFIX_LEN = 5
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix() -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(GENERATE_NAME_SUFFIX_LEN))


def valid_subdomain(name: str) -> bool:
    return len(name) <= DNS1123_SUBDOMAIN_MAX_LEN and bool(_DNS1123_SUBDOMAIN.match(name))


def metadata(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj.get("metadata")
    if not isinstance(md, dict):
        md = {}
        obj["metadata"] = md
    return md


__all__ = [
    "SUBDOMAIN_MSG",
    "metadata",
    "new_uid",
    "now_rfc3339",
    "random_suffix",
    "valid_subdomain",
]
