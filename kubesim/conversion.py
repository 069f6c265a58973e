"""Resources that share storage with another version: events.k8s.io/v1 Events are a view of
core v1 Events (kube-apiserver stores both in one place)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .resources import ResourceType

Obj = dict[str, Any]

# events.k8s.io/v1 field <- core/v1 field
_EVENT_FIELDS = (
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("action", "action"),
    ("reason", "reason"),
    ("regarding", "involvedObject"),
    ("related", "related"),
    ("note", "message"),
    ("type", "type"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)
_FIELD_TO_CORE = {new: old for new, old in _EVENT_FIELDS}


def event_from_core(obj: Obj) -> Obj:
    out: Obj = {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": obj["metadata"]}
    for new, old in _EVENT_FIELDS:
        if old in obj and obj[old] not in (None, "", 0, {}):
            out[new] = obj[old]
    if "eventTime" not in out:
        out["eventTime"] = None
    return out


def event_to_core(obj: Obj) -> Obj:
    out: Obj = {"kind": "Event", "apiVersion": "v1", "metadata": obj.get("metadata") or {}}
    for new, old in _EVENT_FIELDS:
        if new in obj and obj[new] is not None:
            out[old] = obj[new]
    out.setdefault("involvedObject", {})
    return out


def event_field_to_core(path: str) -> str:
    head, _, rest = path.partition(".")
    core = _FIELD_TO_CORE.get(head)
    return f"{core}.{rest}" if core and rest else (core or path)


@dataclass(frozen=True)
class Alias:
    """A resource served from another resource's storage."""

    storage: tuple[str, str]
    to_storage: Callable[[Obj], Obj]
    from_storage: Callable[[Obj], Obj]
    field_to_storage: Callable[[str], str]


ALIASES: dict[tuple[str, str], Alias] = {
    ("events.k8s.io", "events"): Alias(
        ("", "events"), event_to_core, event_from_core, event_field_to_core
    ),
}


def as_version(rt: ResourceType, obj: Obj) -> Obj:
    """A custom resource read through another served version: only apiVersion differs (the
    None conversion strategy). Built-in kinds have one version here and pass through."""
    if rt.crd is None or obj.get("kind") != rt.kind or obj.get("apiVersion") == rt.api_version:
        return obj
    return {**obj, "apiVersion": rt.api_version}
