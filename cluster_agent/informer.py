"""A list+watch cache of one collection of the agent's cluster, in kopf's layers: forever (relist
after ``410 Gone``, back off after errors) -> one list+watch -> one HTTP call.

It lists (paginated), then watches from the list's resourceVersion with bookmarks, resuming from
the last resourceVersion seen when a watch ends. It keeps only what ``slim`` returns for each
object and reports every change as ``on_change(key, old, new)`` (``None``: absent); a relist
reports exactly the differences with what it held, so a consumer never misses a deletion."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from cluster_agent.kube import AgentKube, KubeError
from rancher_tunnel.logs import get_logger
from rancher_tunnel.malloc import trim

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
LIST_PAGE_LIMIT = 500
HTTP_GONE = 410

log = get_logger(component="agent-informer")

Slim = dict[str, Any]
SlimFn = Callable[[dict[str, Any]], Slim]
ChangeFn = Callable[[str, Slim | None, Slim | None], None]


def key_of(obj: dict[str, Any]) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    return f"{ns}/{name}" if ns else name


class Informer:
    """Watches the collection at ``path`` (e.g. ``/api/v1/nodes``)."""

    def __init__(self, kube: AgentKube, path: str, slim: SlimFn, on_change: ChangeFn) -> None:
        self._kube = kube
        self.path = path
        self._slim = slim
        self._on_change = on_change
        self.items: dict[str, Slim] = {}
        self.synced = asyncio.Event()
        self.last_error = ""
        self.relists = 0  # lists after the first (410 Gone or a broken watch)
        self.resource_version = ""

    def _set(self, key: str, new: Slim | None) -> None:
        old = self.items.get(key)
        if new is None:
            if old is None:
                return
            del self.items[key]
        else:
            if old == new:
                return
            self.items[key] = new
        self._on_change(key, old, new)

    async def _list(self) -> None:
        fresh: dict[str, Slim] = {}
        cont = ""
        while True:
            q = {"limit": str(LIST_PAGE_LIMIT)}
            if cont:
                q["continue"] = cont
            doc = await self._kube.get_json(self.path, q)
            for obj in doc.get("items") or []:
                if isinstance(obj, dict):
                    fresh[key_of(obj)] = self._slim(obj)
            meta = doc.get("metadata") or {}
            cont = str(meta.get("continue") or "")
            if not cont:
                self.resource_version = str(meta.get("resourceVersion") or "")
                break
        for key in [k for k in self.items if k not in fresh]:
            self._set(key, None)
        for key, value in fresh.items():
            self._set(key, value)
        del fresh
        trim()  # the pages' JSON is garbage now: give it back rather than keep it mapped
        self.synced.set()

    async def _watch(self) -> None:
        q = {"resourceVersion": self.resource_version}
        async for event in self._kube.watch(self.path, q):
            etype = event.get("type")
            obj = event.get("object") or {}
            if etype == "ERROR":
                code = int(obj.get("code") or 500)
                raise KubeError(code, str(obj.get("reason", "")), str(obj.get("message", "")),
                                f"watch {self.path}")
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = str(rv)
            if etype == "DELETED":
                self._set(key_of(obj), None)
            elif etype in ("ADDED", "MODIFIED"):
                self._set(key_of(obj), self._slim(obj))

    async def run(self) -> None:
        """Forever: list, then watch until the watch ends (a new watch from the last version)
        or fails (a relist after 410; a backoff after other errors)."""
        failures = 0
        need_list = True
        while True:
            try:
                if need_list:
                    if self.synced.is_set():
                        self.relists += 1
                    await self._list()
                    need_list = False
                await self._watch()
                failures = 0
                self.last_error = ""
            except (KubeError, ValueError, TypeError, KeyError) as e:
                if not isinstance(e, KubeError):  # an object we could not read: start over
                    e = KubeError(500, type(e).__name__, str(e), f"informer {self.path}")
                if e.status == HTTP_GONE:
                    log.info("watch expired (410); relisting", path=self.path,
                             resource_version=self.resource_version)
                    need_list = True
                    continue
                failures += 1
                need_list = need_list or e.status != 0
                delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**failures))
                if self.last_error != str(e):
                    log.warning("watch failed; retrying", path=self.path, error=str(e),
                                retry_in_s=round(delay, 2))
                self.last_error = str(e)
                await asyncio.sleep(delay)
