"""Label and field selectors (the string forms kubectl and clients send)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import errors
from .resources import ResourceType

_SET_RE = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        v = labels.get(self.key)
        if self.op == "=":
            return has and v == self.values[0]
        if self.op == "!=":
            return not has or v != self.values[0]
        if self.op == "in":
            return has and v in self.values
        if self.op == "notin":
            return not has or v not in self.values
        if self.op == "exists":
            return has
        return not has


def _split_top(s: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in (x.strip() for x in parts) if p]


def parse_labels(selector: str) -> list[Requirement]:
    reqs: list[Requirement] = []
    for term in _split_top(selector):
        for op in ("!=", "==", "="):
            if op in term and "(" not in term:
                k, v = term.split(op, 1)
                reqs.append(Requirement(k.strip(), "!=" if op == "!=" else "=", (v.strip(),)))
                break
        else:
            m = _SET_RE.match(term)
            if not m:
                raise errors.bad_request(f"unable to parse requirement: {term}")
            neg, key, setop, vals = m.groups()
            if setop:
                values = tuple(x.strip() for x in vals.split(",") if x.strip())
                reqs.append(Requirement(key, setop, values))
            else:
                reqs.append(Requirement(key, "!" if neg else "exists"))
    return reqs


def parse_fields(selector: str) -> list[Requirement]:
    reqs: list[Requirement] = []
    for term in _split_top(selector):
        for op in ("!=", "==", "="):
            if op in term:
                k, v = term.split(op, 1)
                reqs.append(Requirement(k.strip(), "!=" if op == "!=" else "=", (v.strip(),)))
                break
        else:
            raise errors.bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
    return reqs


def field_value(obj: dict[str, Any], path: str) -> str | None:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return ""
        cur = cur[part]
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if cur is None:
        return ""
    if isinstance(cur, dict | list):
        return None
    return str(cur)


_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
_EVENT_CORE = frozenset(
    {
        f"involvedObject.{f}"
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    }
    | {"reason", "reportingComponent", "source", "type"}
)
_EVENT_V1 = frozenset(
    {
        f"regarding.{f}"
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    }
    | {"reason", "reportingController", "type", "deprecatedSource.component"}
)
# The kinds that register a field-label conversion of their own in kube-apiserver, and the fields
# it accepts besides metadata.name/namespace: anything else is "field label not supported: <f>".
# Every other built-in kind has the default conversion, whose error names the two metadata fields.
SUPPORTED_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("", "pods"): frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        }
    ),
    ("", "events"): _EVENT_CORE,
    ("events.k8s.io", "events"): _EVENT_V1,
    ("", "secrets"): frozenset({"type"}),
    ("", "namespaces"): frozenset({"status.phase"}),
    ("", "nodes"): frozenset({"spec.unschedulable"}),
    ("", "services"): frozenset({"spec.clusterIP", "spec.type"}),
    ("", "replicationcontrollers"): frozenset({"status.replicas"}),
    ("apps", "replicasets"): frozenset({"status.replicas"}),
}


def _default_conversion_error(label: str) -> str:
    """apimachinery's ``DefaultMetaV1FieldSelectorConversion``: kinds without a field-label
    conversion of their own (ConfigMaps, Deployments, ...) know only the metadata fields."""
    return f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'


def _own_conversion_error(label: str) -> str:
    """The error of the kinds that register a field-label conversion (Pods, Secrets, ...)."""
    return f"field label not supported: {label}"


class Selector:
    """A compiled label + field selector."""

    def __init__(
        self,
        label_selector: str = "",
        field_selector: str = "",
        allowed_fields: frozenset[str] | None = None,
        *,
        own_conversion: bool = True,
    ) -> None:
        self.labels = parse_labels(label_selector) if label_selector else []
        self.fields = parse_fields(field_selector) if field_selector else []
        if allowed_fields is not None:
            allowed = _COMMON_FIELDS | allowed_fields
            message = _own_conversion_error if own_conversion else _default_conversion_error
            for r in self.fields:
                if r.key not in allowed:
                    raise errors.bad_request(message(r.key))

    @property
    def empty(self) -> bool:
        return not self.labels and not self.fields

    def matches(self, obj: dict[str, Any]) -> bool:
        if self.labels:
            labels = obj.get("metadata", {}).get("labels") or {}
            if not all(r.matches(labels) for r in self.labels):
                return False
        for r in self.fields:
            v = field_value(obj, r.key) or ""
            if (v == r.values[0]) != (r.op == "="):
                return False
        return True


def selector_for(rt: ResourceType, label_selector: str, field_selector: str) -> Selector:
    """A selector for ``rt`` that rejects the field labels kube-apiserver does not support."""
    own = SUPPORTED_FIELDS.get((rt.group, rt.resource))
    allowed = own if own is not None else frozenset()
    if rt.crd is not None:
        allowed = frozenset(
            str(f.get("jsonPath", "")).lstrip(".") for f in rt.crd.get("selectableFields") or []
        )
    return Selector(
        label_selector,
        field_selector,
        allowed,
        own_conversion=own is not None or rt.crd is not None,
    )
