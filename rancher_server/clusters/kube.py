"""kubernetes_asyncio towards a downstream cluster's API server, through the cluster's tunnel, with
the agent's credential: generic JSON calls by path, one retry loop, typed errors and watches.

The ApiClient's own HTTP session is replaced by the cluster's tunnel session (TLS end to end,
verified against the CA the agent reported), so every call is a stream in the agent's tunnel.
Bodies stay plain JSON (no model classes): the reconciler keeps thousands of objects and only a few
fields of each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration

from rancher_tunnel.errors import DialRefused, SessionClosed
from rancher_tunnel.kubecalls import (
    MAX_ATTEMPTS,
    KubeError,
    error_from,
    retry_delay,
    watch_events,
)
from rancher_tunnel.logs import get_logger
from rancher_tunnel.version import version

if TYPE_CHECKING:  # the proxy package imports this package
    from rancher_server.proxy.upstream import Upstream

REQUEST_TIMEOUT_S = 30.0
WATCH_TIMEOUT_S = 300  # the server ends a watch after this (kube: --min-request-timeout 1800)
WATCH_INACTIVITY_S = 90.0  # no event and no bookmark for this long: the watch is dead
CONNECTION_ERRORS = (aiohttp.ClientError, DialRefused, SessionClosed, TimeoutError, OSError)

log = get_logger(component="kube")

__all__ = ["Kube", "KubeError"]


class Kube:
    """One cluster's API server, as the agent's service account."""

    def __init__(self, up: Upstream, replica: str = "") -> None:
        """``replica``: this server's replica name, in the User-Agent of every call (an audit of
        the downstream API server then says which replica wrote)."""
        self.cluster_id = up.cluster_id
        self.key = up.key
        cfg = Configuration(host=up.base_url)
        cfg.api_key = {"BearerToken": up.admin_token}
        cfg.api_key_prefix = {"BearerToken": "Bearer"}
        self._cfg = cfg
        self._api = ApiClient(cfg)
        self._api.user_agent = f"rancher-py-server/{version()}" + (
            f" (replica {replica})" if replica else "")
        self._own_http = self._api.rest_client.pool_manager
        self._api.rest_client.pool_manager = up.http  # every call through the tunnel
        # called before every write: raises when this replica may not write to the cluster now
        # (replicas on etcd: another replica owns it; rancher_server.ha.ownership)
        self.fence: Callable[[], None] | None = None

    def set_token(self, token: str) -> None:
        self._cfg.api_key = {"BearerToken": token}

    async def close(self) -> None:
        """Closes the client's unused own session (the tunnel's belongs to the upstream)."""
        await self._own_http.close()

    async def _send(
        self, method: str, path: str, query: dict[str, str] | None, body: Any,
        content_type: str, client_timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        resp: aiohttp.ClientResponse = await self._api.call_api(
            path, method,
            query_params=list((query or {}).items()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body, auth_settings=["BearerToken"], _preload_content=False,
            _return_http_data_only=True, _request_timeout=client_timeout,
        )
        return resp

    async def call_once(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        what = f"{method} {path}"
        if self.fence is not None and method not in ("GET", "HEAD"):
            self.fence()
        try:
            resp = await self._send(
                method, path, query, body, content_type,
                aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            )
        except CONNECTION_ERRORS as e:
            raise KubeError(0, "Unreachable", str(e) or type(e).__name__, what) from e
        async with resp:
            if resp.status >= 300:
                raise await error_from(resp, what)
            doc = await resp.json(content_type=None)
        return doc if isinstance(doc, dict) else {}

    async def call(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One API call; 429, 5xx and lost connections are retried (Retry-After honoured)."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await self.call_once(
                    method, path, query=query, body=body, content_type=content_type
                )
            except KubeError as e:
                delay = retry_delay(e, attempt)
                if delay is None:
                    raise
                log.info(
                    f"attempt {attempt}/{MAX_ATTEMPTS} failed; retrying in {delay:.1f} s",
                    cluster=self.cluster_id, call=f"{method} {path}", error=str(e),
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def watch(
        self, path: str, query: dict[str, str]
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch call (``query`` without ``watch``), until the server ends it.
        A call refused before the stream starts raises :class:`KubeError`."""
        q = {**query, "watch": "true", "allowWatchBookmarks": "true",
             "timeoutSeconds": str(WATCH_TIMEOUT_S)}
        what = f"watch {path}"
        try:
            resp = await self._send(
                "GET", path, q, None, "application/json",
                aiohttp.ClientTimeout(total=None, sock_read=WATCH_INACTIVITY_S),
            )
        except CONNECTION_ERRORS as e:
            raise KubeError(0, "Unreachable", str(e) or type(e).__name__, what) from e
        async with resp:
            if resp.status >= 300:
                raise await error_from(resp, what)
            async for event in watch_events(resp, what, CONNECTION_ERRORS):
                yield event
