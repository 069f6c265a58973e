"""Small helpers shared by the simulated cluster: timestamps, names, owner references."""

from __future__ import annotations

import datetime
import hashlib
import secrets
from typing import Any

from kubesim.sim.store_api import Obj

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString
NAME_SUFFIX_LEN = 5
TEMPLATE_HASH_LEN = 10


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def rfc3339(t: datetime.datetime | None = None) -> str:
    """``metav1.Time``: second precision, ``Z``."""
    return (t or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(t: datetime.datetime | None = None) -> str:
    """``metav1.MicroTime``: microsecond precision, ``Z``."""
    return (t or now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_nano(t: datetime.datetime) -> str:
    """RFC 3339 with nanoseconds, as kubelet prefixes log lines with ``timestamps=true``."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def safe_encode(data: bytes, length: int) -> str:
    """Map bytes onto the alphabet of Kubernetes' generated names (no vowels, no look-alikes)."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in data[:length])


def random_suffix(length: int = NAME_SUFFIX_LEN) -> str:
    return "".join(secrets.choice(SAFE_ALPHABET) for _ in range(length))


def stable_hash(text: str, length: int = TEMPLATE_HASH_LEN) -> str:
    """A deterministic name-safe hash (the pod-template-hash of a template)."""
    return safe_encode(hashlib.sha256(text.encode()).digest(), length)


def meta(obj: Obj) -> dict[str, Any]:
    md = obj.setdefault("metadata", {})
    assert isinstance(md, dict)
    return md


def name_of(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def namespace_of(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("namespace", "") or "")


def uid_of(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("uid", ""))


def is_terminating(obj: Obj) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


def controller_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    """An ownerReference marking ``owner`` as the managing controller."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Obj) -> str | None:
    """The uid of ``obj``'s managing controller, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def labels_match(selector: Obj | None, labels: dict[str, str] | None) -> bool:
    """Evaluate a ``metav1.LabelSelector`` (matchLabels and matchExpressions)."""
    if not selector:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def condition(obj: Obj, ctype: str) -> Obj | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None
