"""List+watch feeders for the index, layered by lifetime as kopf does.

- :func:`run_resource` (forever): relists on 410 Gone, backs off with jitter on errors,
  never empties the index while the API server is unreachable;
- :func:`list_resource` / :func:`watch_once` (one list, one watch call): one HTTP call each,
  the watch with an inactivity timeout that resets on every line (event or bookmark).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from kube_api_auth.backoff import backoff
from kube_api_auth.constants import (
    API_CONNECT_TIMEOUT_S,
    API_LIST_TIMEOUT_S,
    DEFAULT_NAMESPACE,
    LIST_PAGE_LIMIT,
    MAX_API_ERROR_LOG_CHARS,
    MAX_RETRY_AFTER_S,
    WATCH_INACTIVITY_TIMEOUT_S,
    WATCH_SERVER_TIMEOUT_S,
)
from kube_api_auth.index import Index, Kind
from kube_api_auth.kubeapi import ApiTarget, KubeCalls
from kube_api_auth.metrics import Metrics
from rancher_tunnel.logs import get_logger

CRD_GROUP = "cluster.cattle.io"
CRD_VERSION = "v3"


class ApiError(Exception):
    """The API server answered with an error status (retryable, after a backoff)."""

    def __init__(self, status: int, body: str, retry_after_s: float = 0.0) -> None:
        super().__init__(f"HTTP {status}: {body[:MAX_API_ERROR_LOG_CHARS]}")
        self.status = status
        self.retry_after_s = retry_after_s  # from a 429/503 Retry-After header


class GoneError(Exception):
    """The resourceVersion we watch from is too old (410): relist."""


class InactivityError(Exception):
    """No line from the watch for the inactivity timeout: reconnect."""


@dataclass(frozen=True)
class Resource:
    kind: Kind
    path: str  # collection path, e.g. /api/v1/namespaces/cattle-system/secrets
    label_selector: str = ""


def resources(namespace: str = DEFAULT_NAMESPACE, secret_selector: str = "") -> list[Resource]:
    crd_base = f"/apis/{CRD_GROUP}/{CRD_VERSION}/namespaces/{namespace}"
    return [
        Resource(Kind.TOKENS, f"{crd_base}/clusterauthtokens"),
        Resource(Kind.USERS, f"{crd_base}/clusteruserattributes"),
        Resource(Kind.SECRETS, f"/api/v1/namespaces/{namespace}/secrets", secret_selector),
    ]


@dataclass
class WatchSettings:
    inactivity_timeout_s: float = WATCH_INACTIVITY_TIMEOUT_S
    server_timeout_s: int = WATCH_SERVER_TIMEOUT_S
    page_limit: int = LIST_PAGE_LIMIT


async def _error(resp: aiohttp.ClientResponse) -> ApiError | GoneError:
    text = await resp.text(errors="replace")
    if resp.status == 410:
        return GoneError(text[:MAX_API_ERROR_LOG_CHARS])
    retry_after = resp.headers.get("Retry-After", "")
    wait_s = float(retry_after) if retry_after.isdigit() else 0.0
    return ApiError(resp.status, text, min(wait_s, MAX_RETRY_AFTER_S))


async def list_resource(
    kube: KubeCalls, res: Resource, settings: WatchSettings
) -> tuple[list[dict[str, Any]], str]:
    """All objects of ``res`` (paginated) and the list's resourceVersion."""
    items: list[dict[str, Any]] = []
    cont = ""
    timeout = aiohttp.ClientTimeout(total=API_LIST_TIMEOUT_S, connect=API_CONNECT_TIMEOUT_S)
    while True:
        params = {"limit": str(settings.page_limit)}
        if cont:
            params["continue"] = cont
        if res.label_selector:
            params["labelSelector"] = res.label_selector
        async with await kube.get(res.path, params, timeout) as resp:
            if resp.status != 200:
                raise await _error(resp)
            doc = await resp.json(content_type=None)
        if not isinstance(doc, dict):
            raise ApiError(resp.status, "list answer is not a JSON object")
        items.extend(i for i in doc.get("items") or [] if isinstance(i, dict))
        meta = doc.get("metadata") or {}
        cont = meta.get("continue") or ""
        if not cont:
            return items, str(meta.get("resourceVersion") or "")


def _apply(index: Index, kind: Kind, event: Any) -> str | None:
    """Apply one watch event; return the object's resourceVersion (None for nothing new)."""
    if not isinstance(event, dict):
        raise ApiError(0, "watch event is not a JSON object")
    etype = event.get("type")
    obj = event.get("object")
    if not isinstance(obj, dict):
        raise ApiError(0, "watch event without an object")
    if etype == "ERROR":
        code = obj.get("code")
        if code == 410:
            raise GoneError(str(obj.get("message") or "")[:MAX_API_ERROR_LOG_CHARS])
        raise ApiError(int(code) if isinstance(code, int) else 0, json.dumps(obj))
    if etype in ("ADDED", "MODIFIED"):
        index.upsert(kind, obj)
    elif etype == "DELETED":
        index.delete(kind, obj)
    elif etype != "BOOKMARK":
        raise ApiError(0, f"unknown watch event type {str(etype)[:20]!r}")
    meta = obj.get("metadata")
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return str(rv) if rv else None


@dataclass
class Feeder:
    """Feeds ``index`` from one API server: one forever-loop per resource. Its calls go through
    kubernetes_asyncio (:class:`KubeCalls`) over ``session``."""

    session: aiohttp.ClientSession
    target: ApiTarget
    index: Index
    metrics: Metrics
    settings: WatchSettings
    _kube: KubeCalls | None = field(default=None, init=False)

    @property
    def kube(self) -> KubeCalls:
        """The API client, while :meth:`run` runs."""
        if self._kube is None:
            raise RuntimeError("the feeder is not running")
        return self._kube

    async def watch_once(self, res: Resource, resource_version: str) -> str:
        """One watch call from ``resource_version``; returns the last version seen when the
        server ends the call normally."""
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.settings.server_timeout_s),
        }
        if res.label_selector:
            params["labelSelector"] = res.label_selector
        inactivity_s = self.settings.inactivity_timeout_s
        timeout = aiohttp.ClientTimeout(total=None, connect=API_CONNECT_TIMEOUT_S)
        async with await self.kube.get(res.path, params, timeout) as resp:
            if resp.status != 200:
                raise await _error(resp)
            while True:
                try:
                    async with asyncio.timeout(inactivity_s):
                        line = await resp.content.readline()
                except TimeoutError as exc:
                    raise InactivityError(f"no watch event for {inactivity_s} s") from exc
                if not line:
                    return resource_version
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError as exc:
                    raise ApiError(0, "watch line is not JSON") from exc
                rv = _apply(self.index, res.kind, event)
                if rv:
                    resource_version = rv

    async def run_resource(self, res: Resource, delays: Iterator[float] | None = None) -> None:
        """Forever: list, then watch; relist on 410; back off with jitter on errors."""
        log = get_logger(component="kube-api-auth.watch", resource=res.kind.value)
        delays = delays or backoff()
        restarts = self.metrics.watch_restarts
        version: str | None = None
        attempt = 0
        while True:
            try:
                if version is None:
                    items, version = await list_resource(self.kube, res, self.settings)
                    self.index.replace(res.kind, items)
                    log.info("listed", objects=len(items))
                version = await self.watch_once(res, version)
                restarts.labels(kind=res.kind.value, reason="closed").inc()
                attempt = 0
                delays = backoff()
            except GoneError:
                restarts.labels(kind=res.kind.value, reason="gone").inc()
                log.info("resource version gone; relisting")
                version = None
                attempt = 0
            except InactivityError as exc:
                restarts.labels(kind=res.kind.value, reason="inactivity").inc()
                log.info("watch inactive; reconnecting", reason=str(exc))
            except (aiohttp.ClientError, ApiError, TimeoutError, ValueError) as exc:
                restarts.labels(kind=res.kind.value, reason="error").inc()
                attempt += 1
                delay = next(delays)
                if isinstance(exc, ApiError):
                    delay = max(delay, exc.retry_after_s)
                log.warning(
                    f"attempt {attempt} failed; retrying in {delay:.1f} s",
                    error=f"{type(exc).__name__}: {str(exc)[:MAX_API_ERROR_LOG_CHARS]}",
                )
                await asyncio.sleep(delay)

    async def run(self, watched: list[Resource]) -> None:
        """Run every resource's loop until cancelled."""
        self._kube = KubeCalls(self.session, self.target)
        try:
            async with asyncio.TaskGroup() as group:
                for res in watched:
                    group.create_task(self.run_resource(res), name=f"watch-{res.kind.value}")
        finally:
            await self.kube.close()
            self._kube = None
