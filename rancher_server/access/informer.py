"""A list+watch cache of one collection of a downstream cluster (kopf's layering: forever -> one
list+watch -> one call). Lists, then watches from the list's resourceVersion with bookmarks;
relists on ``410 Gone``; backs off with full jitter on errors; keeps only the fields the
reconciler compares (:func:`slim`), so thousands of objects stay small."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from rancher_server.clusters.kube import Kube, KubeError
from rancher_tunnel.logs import get_logger

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
LIST_PAGE_LIMIT = 500

log = get_logger(component="informer")

# Fields other than metadata that a cache keeps, per kind (everything we write and compare).
KEPT_FIELDS = ("rules", "aggregationRule", "roleRef", "subjects", "data", "type", "userName",
               "enabled", "expiresAt", "clusterName", "secretRef", "groups")
KEPT_METADATA = ("name", "namespace", "resourceVersion", "uid", "labels", "annotations",
                 "deletionTimestamp")

ObjKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {"metadata": {k: meta[k] for k in KEPT_METADATA if k in meta}}
    for key in KEPT_FIELDS:
        if key in obj:
            out[key] = obj[key]
    return out


def key_of(obj: dict[str, Any]) -> ObjKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


class Informer:
    """Watches ``path`` (a collection URL path) with an optional label selector."""

    def __init__(
        self, kube: Kube, path: str, label_selector: str, on_change: Callable[[], None],
        name: str,
    ) -> None:
        self._kube = kube
        self.path = path
        self._selector = label_selector
        self._on_change = on_change
        self.name = name
        self.items: dict[ObjKey, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.last_error = ""
        self._rv = ""

    def observe(self, obj: dict[str, Any]) -> None:
        """Record an object we just wrote (its watch event will say the same, later)."""
        self.items[key_of(obj)] = slim(obj)

    def forget(self, key: ObjKey) -> None:
        self.items.pop(key, None)

    def _query(self) -> dict[str, str]:
        return {"labelSelector": self._selector} if self._selector else {}

    async def _list(self) -> None:
        items: dict[ObjKey, dict[str, Any]] = {}
        cont = ""
        while True:
            q = {**self._query(), "limit": str(LIST_PAGE_LIMIT)}
            if cont:
                q["continue"] = cont
            doc = await self._kube.call("GET", self.path, query=q)
            for obj in doc.get("items") or []:
                if isinstance(obj, dict):
                    items[key_of(obj)] = slim(obj)
            meta = doc.get("metadata") or {}
            cont = str(meta.get("continue") or "")
            if not cont:
                self._rv = str(meta.get("resourceVersion") or "")
                break
        self.items = items
        self.synced.set()
        self._on_change()

    async def _watch(self) -> None:
        q = {**self._query(), "resourceVersion": self._rv}
        async for event in self._kube.watch(self.path, q):
            etype = event.get("type")
            obj = event.get("object") or {}
            if etype == "ERROR":
                code = obj.get("code")
                if code == 410:
                    raise KubeError(410, "Expired", str(obj.get("message", "")), self.name)
                raise KubeError(int(code or 500), str(obj.get("reason", "")),
                                str(obj.get("message", "")), self.name)
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self._rv = str(rv)
            if etype == "BOOKMARK":
                continue
            if etype == "DELETED":
                self.items.pop(key_of(obj), None)
            elif etype in ("ADDED", "MODIFIED"):
                self.items[key_of(obj)] = slim(obj)
            else:
                continue
            self._on_change()

    async def run(self) -> None:
        """Forever: list, then watch until the watch ends (a new watch from the last version)
        or fails (a relist after 410; a backoff after other errors)."""
        failures = 0
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch()
                failures = 0
                self.last_error = ""
            except KubeError as e:
                if e.status == 410:
                    need_list = True
                    continue
                failures += 1
                need_list = need_list or e.status != 0
                delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**failures))
                if self.last_error != str(e):
                    log.warning("watch failed; retrying", informer=self.name,
                                cluster=self._kube.cluster_id, error=str(e),
                                retry_in_s=round(delay, 2))
                self.last_error = str(e)
                await asyncio.sleep(delay)
