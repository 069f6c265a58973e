"""Tokens of the per-user impersonation service accounts the proxy authenticates with downstream.

The accounts themselves (ServiceAccount ``cattle-impersonation-system/cattle-impersonation-<user>``
and a ClusterRole and binding that let it impersonate only that user, those groups and the
proxy's extras) are the reconciler's (:mod:`rancher_server.access.desired`). The proxy asks here
for a token: when the user's access changed since the last one (or there is none), this waits
for a reconcile pass that started after the change, so the request runs downstream with exactly
the rights the store gives now; then a short-lived token is requested (TokenRequest)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from rancher_server.access.desired import IMPERSONATION_NAMESPACE, account_name
from rancher_server.access.manager import AccessManager
from rancher_server.auth.principal import Principal
from rancher_server.clusters.kube import KubeError
from rancher_tunnel.logs import get_logger

TOKEN_EXPIRATION_S = 3600
TOKEN_REFRESH_FRACTION = 0.8  # renew a token when this much of its lifetime has passed
SYNC_WAIT_S = 20.0  # how long a request waits for its cluster's access to be in place

log = get_logger(component="impersonation")


@dataclass
class _Cached:
    fingerprint: tuple[Any, ...]
    token: str
    refresh_at: float


class AccessNotReady(Exception):
    """The user's access could not be put in place downstream (the reason is in the message)."""


class Impersonator:
    def __init__(self, manager: AccessManager) -> None:
        self._manager = manager
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def invalidate(self, cluster_id: str, user_id: str) -> None:
        self._cache.pop((cluster_id, user_id), None)

    def _fresh(self, key: tuple[str, str], fingerprint: tuple[Any, ...]) -> str | None:
        cached = self._cache.get(key)
        if cached is not None and cached.fingerprint == fingerprint and (
            time.monotonic() < cached.refresh_at
        ):
            return cached.token
        return None

    async def token_for(
        self, cluster_id: str, upstream_key: tuple[str, str], principal: Principal,
        access: tuple[Any, ...],
    ) -> str:
        """A token of the user's impersonation account in the cluster. ``access`` is what the
        store grants the user there now: a change waits for the reconciler."""
        key = (cluster_id, principal.user_id)
        fingerprint = (principal.groups, access, upstream_key)
        token = self._fresh(key, fingerprint)
        if token is not None:
            return token
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            token = self._fresh(key, fingerprint)
            if token is not None:
                return token
            reconciler = await self._manager.owned_reconciler(cluster_id)
            cached = self._cache.get(key)
            if cached is None or cached.fingerprint != fingerprint:
                try:
                    await reconciler.sync(SYNC_WAIT_S)
                except TimeoutError as e:
                    raise AccessNotReady(
                        f"access of {principal.user_id} not in place after {SYNC_WAIT_S:.0f} s"
                    ) from e
                name = account_name(principal.user_id)
                failing = [
                    f"{k[0]} {k[2]}: {f.status} {f.reason}: {f.message}"
                    for k, f in reconciler.failures.items() if k[2] == name
                ]
                if failing:
                    raise AccessNotReady("; ".join(failing))
            path = (f"/api/v1/namespaces/{IMPERSONATION_NAMESPACE}/serviceaccounts/"
                    f"{account_name(principal.user_id)}/token")
            body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "spec": {"expirationSeconds": TOKEN_EXPIRATION_S}}
            try:
                doc = await reconciler.kube.call("POST", path, body=body)
            except KubeError as e:
                raise AccessNotReady(f"token request refused: {e}") from e
            token = (doc.get("status") or {}).get("token")
            if not isinstance(token, str) or not token:
                raise AccessNotReady("the TokenRequest answer carried no token")
            lifetime = float((doc.get("spec") or {}).get("expirationSeconds")
                             or TOKEN_EXPIRATION_S)
            self._cache[key] = _Cached(
                fingerprint, token, time.monotonic() + lifetime * TOKEN_REFRESH_FRACTION
            )
            log.info("impersonation token issued", cluster=cluster_id, user=principal.user_id)
            return token
