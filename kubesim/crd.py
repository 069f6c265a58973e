"""CustomResourceDefinition controller: serves the custom resources a CRD declares."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

from . import meta
from .logutil import LazyLogger
from .resources import ResourceType, Subresource
from .store import Store

CRD_GROUP = "apiextensions.k8s.io"
CRD_RESOURCE = "customresourcedefinitions"
log = LazyLogger(component="kubesim.crd")


def _version_priority(v: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, 0, 0)
    major = int(m.group(1))
    stage = {"alpha": 2, "beta": 1, None: 0}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor)


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    plural = names.get("plural", "")
    versions = sorted(
        (v for v in spec.get("versions") or [] if v.get("served", True)),
        key=lambda v: _version_priority(v.get("name", "")),
    )
    out = []
    for v in versions:
        subs = []
        sr = v.get("subresources") or {}
        if "status" in sr:
            subs.append(Subresource("status", ["get", "patch", "update"], None))
        if "scale" in sr:
            subs.append(
                Subresource(
                    "scale",
                    ["get", "patch", "update"],
                    {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                )
            )
        out.append(
            ResourceType(
                group=group,
                version=v.get("name", ""),
                resource=plural,
                kind=names.get("kind", ""),
                namespaced=spec.get("scope") == "Namespaced",
                singular=names.get("singular") or names.get("kind", "").lower(),
                verbs=[
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "create",
                    "update",
                    "watch",
                ],
                short_names=list(names.get("shortNames") or []),
                categories=list(names.get("categories") or []),
                subresources=subs,
                crd=v,
                printer_columns=list(v.get("additionalPrinterColumns") or []),
            )
        )
    return out


class CrdController:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._unsubscribe: Callable[[], None] | None = None
        self._served: dict[str, tuple[str, str]] = {}  # crd name -> (group, plural)

    def start(self) -> None:
        for crd in self.store.list_items(CRD_GROUP, CRD_RESOURCE):
            self._serve(crd)
        self._unsubscribe = self.store.subscribe(self._on_event)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_event(self, etype: str, group: str, resource: str, obj: dict[str, Any]) -> None:
        if group != CRD_GROUP or resource != CRD_RESOURCE:
            return
        name = obj["metadata"]["name"]
        loop = asyncio.get_running_loop()
        if etype == "DELETED":
            loop.call_soon(self._unserve, name)
            return
        if obj["metadata"].get("deletionTimestamp"):
            return
        self._serve(obj)
        if not _established(obj):
            loop.call_soon(self._set_status, name)

    def _serve(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        prev = self._served.get(name)
        rts = resource_types(crd)
        if prev is not None:
            self.store.registry.remove_group_resource(*prev)
        for rt in rts:
            self.store.registry.add(rt)
        if rts:
            self._served[name] = (rts[0].group, rts[0].resource)

    def _unserve(self, name: str) -> None:
        gr = self._served.pop(name, None)
        if gr is None:
            return
        group, plural = gr
        if self.store.registry.by_group_resource(group, plural) is None:
            return
        for obj in list(self.store.list_items(group, plural)):
            md = obj["metadata"]
            self.store.delete_item(group, plural, md.get("namespace"), md["name"])
        self.store.registry.remove_group_resource(group, plural)

    def _set_status(self, name: str) -> None:
        crd = self.store.get_item(CRD_GROUP, CRD_RESOURCE, "", name)
        if crd is None or _established(crd):
            return
        new = copy.deepcopy(crd)
        spec = new.get("spec") or {}
        now = meta.now_rfc3339()
        names = dict(spec.get("names") or {})
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        new["status"] = {
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "lastTransitionTime": now,
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                },
                {
                    "type": "Established",
                    "status": "True",
                    "lastTransitionTime": now,
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                },
            ],
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
        }
        try:
            self.store.update_item(CRD_GROUP, CRD_RESOURCE, new, "status")
        except Exception:
            log.exception("crd_status_failed", crd=name)


def _established(crd: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )
