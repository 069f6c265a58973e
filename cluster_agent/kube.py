"""kubernetes_asyncio towards the agent's own cluster: generic JSON calls by path, one retry loop
(5xx, 429 with Retry-After, lost connections), typed errors and watches.

Configured from the agent's configuration (in-cluster service account, ``CATTLE_K8S_*``, or the
API server and CA of ``CATTLE_KUBECONFIG``) or from a kubeconfig's current context (client
certificates and tokens). Bodies stay plain JSON: the informers keep a few fields of thousands of
objects, model classes would cost more than they give."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from cluster_agent.config import AgentConfig
from cluster_agent.kubeconfig import load as load_kubeconfig
from cluster_agent.kubelib import ApiClient, Configuration
from rancher_tunnel.kubecalls import (
    MAX_ATTEMPTS,
    KubeError,
    error_from,
    retry_delay,
    watch_events,
)
from rancher_tunnel.logs import get_logger

REQUEST_TIMEOUT_S = 30.0
WATCH_TIMEOUT_S = 300  # ask the API server to end a watch after this; we then re-watch
WATCH_INACTIVITY_S = 90.0  # nothing (not even a bookmark) for this long: the watch is dead
CONNECTION_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)

log = get_logger(component="agent-kube")

__all__ = ["AgentKube", "KubeError"]


class AgentKube:
    """The cluster's API server as the agent sees it. Use as an async context manager."""

    def __init__(
        self, server: str, ssl_context: ssl.SSLContext, headers: Mapping[str, str],
        watch_timeout_s: int = WATCH_TIMEOUT_S,
    ) -> None:
        self.server = server.rstrip("/")
        self._headers = {"Accept": "application/json", **headers}
        self._ssl = ssl_context
        self.watch_timeout_s = watch_timeout_s
        self._api = ApiClient(Configuration(host=self.server))
        self._own_http = self._api.rest_client.pool_manager
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, config: AgentConfig, watch_timeout_s: int = WATCH_TIMEOUT_S) -> AgentKube:
        """In-cluster or ``CATTLE_K8S_*`` (the agent's service-account token)."""
        ctx = ssl.create_default_context(cadata=config.api_ca_pem or None)
        headers = {"Authorization": f"Bearer {config.api_token}"} if config.api_token else {}
        return cls(f"https://{config.api_address}", ctx, headers, watch_timeout_s)

    @classmethod
    def from_kubeconfig(cls, path: str, watch_timeout_s: int = WATCH_TIMEOUT_S) -> AgentKube:
        target = load_kubeconfig(path)
        return cls(target.server, target.ssl, target.headers, watch_timeout_s)

    async def __aenter__(self) -> AgentKube:
        connector = aiohttp.TCPConnector(ssl=self._ssl)
        self._http = aiohttp.ClientSession(connector=connector)
        self._api.rest_client.pool_manager = self._http
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._http is not None:
            await self._http.close()
        await self._own_http.close()

    async def _send(
        self, method: str, path: str, query: Mapping[str, str] | None,
        client_timeout: aiohttp.ClientTimeout, body: Mapping[str, Any] | None = None,
        content_type: str = "",
    ) -> aiohttp.ClientResponse:
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        resp: aiohttp.ClientResponse = await self._api.call_api(
            path, method,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=dict(body) if body is not None else None,
            _preload_content=False, _return_http_data_only=True,
            _request_timeout=client_timeout,
        )
        return resp

    async def call_once(
        self, method: str, path: str, query: Mapping[str, str] | None = None
    ) -> tuple[int, str]:
        """One call: (status, body text); only a lost connection raises."""
        what = f"{method} {path}"
        try:
            resp = await self._send(
                method, path, query, aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))
            async with resp:
                return resp.status, await resp.text(errors="replace")
        except CONNECTION_ERRORS as e:
            raise KubeError(0, "Unreachable", str(e) or type(e).__name__, what) from e

    async def get_json(self, path: str, query: Mapping[str, str] | None = None) -> dict[str, Any]:
        """A GET; 429, 5xx and lost connections are retried (Retry-After honoured)."""
        _, doc = await self.request_json("GET", path, query=query)
        return doc

    async def request_json(
        self, method: str, path: str, *, query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None, accept: frozenset[int] = frozenset(),
        content_type: str = "",
    ) -> tuple[int, dict[str, Any]]:
        """One call with the retry loop: 429, 5xx and lost connections are retried (Retry-After
        honoured); a status in ``accept`` (e.g. 409 for a create that may have happened) is an
        answer, not an error. ``content_type``: of the body (default JSON; e.g. a merge patch).
        (status, JSON body)."""
        what = f"{method} {path}"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                try:
                    resp = await self._send(
                        method, path, query, aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S), body,
                        content_type)
                except CONNECTION_ERRORS as e:
                    raise KubeError(0, "Unreachable", str(e) or type(e).__name__, what) from e
                async with resp:
                    if resp.status >= 300 and resp.status not in accept:
                        raise await error_from(resp, what)
                    doc = await resp.json(content_type=None)
                return resp.status, doc if isinstance(doc, dict) else {}
            except KubeError as e:
                delay = retry_delay(e, attempt)
                if delay is None:
                    raise
                log.info(f"attempt {attempt}/{MAX_ATTEMPTS} failed; retrying in {delay:.1f} s",
                         call=what, error=str(e))
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def watch(self, path: str, query: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch call (with bookmarks) until the API server ends it. A call
        refused before the stream starts raises :class:`KubeError`."""
        q = {**query, "watch": "true", "allowWatchBookmarks": "true",
             "timeoutSeconds": str(self.watch_timeout_s)}
        what = f"watch {path}"
        try:
            resp = await self._send(
                "GET", path, q, aiohttp.ClientTimeout(total=None, sock_read=WATCH_INACTIVITY_S))
        except CONNECTION_ERRORS as e:
            raise KubeError(0, "Unreachable", str(e) or type(e).__name__, what) from e
        async with resp:
            if resp.status >= 300:
                raise await error_from(resp, what)
            async for event in watch_events(resp, what, CONNECTION_ERRORS):
                yield event
