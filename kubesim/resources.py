"""The registry of served resource types: built-in kinds from package data plus CRDs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources as pkg_resources
from typing import Any

# Core group order for discovery (kube-apiserver's priority order, restricted to our groups).
GROUP_ORDER = [
    "",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
]
CRD_GROUP_PRIORITY = 1000
REVIEW_RESOURCES = frozenset(
    {
        ("authentication.k8s.io", "tokenreviews"),
        ("authentication.k8s.io", "selfsubjectreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "localsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
    }
)


@dataclass
class Subresource:
    name: str
    verbs: list[str]
    response_kind: dict[str, str] | None = None


@dataclass
class ResourceType:
    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    singular: str
    verbs: list[str]
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    storage_version_hash: str = ""
    subresources: list[Subresource] = field(default_factory=list)
    crd: dict[str, Any] | None = None  # the CustomResourceDefinition version entry for CRs
    printer_columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def has_sub(self, name: str) -> bool:
        return any(s.name == name for s in self.subresources)

    @property
    def is_review(self) -> bool:
        return (self.group, self.resource) in REVIEW_RESOURCES


def _load_builtin() -> list[ResourceType]:
    raw = json.loads(
        pkg_resources.files("kubesim").joinpath("data/resources.json").read_text(encoding="utf-8")
    )
    out = []
    for e in raw:
        out.append(
            ResourceType(
                group=e["group"],
                version=e["version"],
                resource=e["resource"],
                kind=e["kind"],
                namespaced=e["namespaced"],
                singular=e["singular"],
                verbs=e["verbs"],
                short_names=e.get("shortNames", []),
                categories=e.get("categories", []),
                storage_version_hash=e.get("storageVersionHash", ""),
                subresources=[
                    Subresource(s["name"], s["verbs"], s.get("responseKind"))
                    for s in e["subresources"]
                ],
            )
        )
    return out


class Registry:
    """Lookup of resource types by (group, version, resource) and by (group, resource)."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._by_gr: dict[tuple[str, str], ResourceType] = {}
        self.generation = 0  # bumped whenever the set of served types changes
        for rt in _load_builtin():
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.resource)] = rt
        # the storage version (first added) answers (group, resource) lookups
        self._by_gr.setdefault((rt.group, rt.resource), rt)
        self.generation += 1

    def remove_group_resource(self, group: str, resource: str) -> None:
        for key in [k for k in self._types if k[0] == group and k[2] == resource]:
            del self._types[key]
        self._by_gr.pop((group, resource), None)
        self.generation += 1

    def get(self, group: str, version: str, resource: str) -> ResourceType | None:
        return self._types.get((group, version, resource))

    def by_group_resource(self, group: str, resource: str) -> ResourceType | None:
        return self._by_gr.get((group, resource))

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def groups(self) -> list[tuple[str, list[str]]]:
        """Served groups in discovery order with their versions (preferred first)."""
        seen: dict[str, list[str]] = {}
        for rt in self._types.values():
            vs = seen.setdefault(rt.group, [])
            if rt.version not in vs:
                vs.append(rt.version)
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        names = sorted(seen, key=lambda g: (order.get(g, CRD_GROUP_PRIORITY), g))
        return [(g, seen[g]) for g in names]

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (rt for rt in self._types.values() if rt.group == group and rt.version == version),
            key=lambda r: r.resource,
        )
