"""Per-user impersonation service accounts in downstream clusters, created and kept current by the
server through the tunnel with the agent's credential.

For user ``u-abc`` the server keeps, in each cluster the user may use:
- ServiceAccount ``cattle-impersonation-system/cattle-impersonation-u-abc``;
- ClusterRole and ClusterRoleBinding ``cattle-impersonation-u-abc``: that account may impersonate
  only user ``u-abc``, the user's groups (plus ``system:authenticated``) and the three user extras
  the proxy sets;
- ClusterRoleBinding ``cattle-crb-u-abc``: what the user may do, from their role on the cluster
  (cluster-owner -> cluster-admin, cluster-member -> edit, read-only -> view).
The proxy authenticates downstream with a short-lived token of that account (TokenRequest), so a
leaked proxy credential can act as no one but that user."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from rancher_server.auth import Principal
from rancher_server.clusters.downstream import DownstreamError, apply_object, post_json
from rancher_server.policy import DOWNSTREAM_CLUSTER_ROLE
from rancher_server.proxy.headers import impersonation_groups, principal_extras
from rancher_server.proxy.upstream import Upstream
from rancher_tunnel.logs import get_logger

NAMESPACE = "cattle-impersonation-system"
MANAGED_BY_LABEL = "cattle.io/managed-by"
MANAGED_BY = "rancher-py"
TOKEN_EXPIRATION_S = 3600
TOKEN_REFRESH_FRACTION = 0.8  # renew a token when this much of its lifetime has passed

log = get_logger(component="impersonation")


@dataclass
class _Cached:
    fingerprint: tuple[Any, ...]
    token: str
    refresh_at: float


def account_name(user_id: str) -> str:
    return f"cattle-impersonation-{user_id}"


def desired_objects(principal: Principal, role: str) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) pairs to apply, in dependency order."""
    name = account_name(principal.user_id)
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    extras = sorted(principal_extras(principal))
    return [
        (
            "/api/v1/namespaces",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": NAMESPACE, "labels": labels},
            },
        ),
        (
            f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name, "labels": labels},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["users"],
                        "verbs": ["impersonate"],
                        "resourceNames": [principal.user_id],
                    },
                    {
                        "apiGroups": [""],
                        "resources": ["groups"],
                        "verbs": ["impersonate"],
                        "resourceNames": impersonation_groups(principal),
                    },
                    {
                        "apiGroups": ["authentication.k8s.io"],
                        "resources": [f"userextras/{k}" for k in extras],
                        "verbs": ["impersonate"],
                    },
                ],
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name, "labels": labels},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"cattle-crb-{principal.user_id}", "labels": labels},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": DOWNSTREAM_CLUSTER_ROLE[role],
                },
                "subjects": [
                    {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "User",
                        "name": principal.user_id,
                    }
                ],
            },
        ),
    ]


class Impersonator:
    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def invalidate(self, cluster_id: str, user_id: str) -> None:
        self._cache.pop((cluster_id, user_id), None)

    async def token_for(self, up: Upstream, principal: Principal, role: str) -> str:
        key = (up.cluster_id, principal.user_id)
        fingerprint = (principal.groups, role, up.key)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached.fingerprint == fingerprint and now < cached.refresh_at:
            return cached.token
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if (
                cached is not None
                and cached.fingerprint == fingerprint
                and (time.monotonic() < cached.refresh_at)
            ):
                return cached.token
            if cached is None or cached.fingerprint != fingerprint:
                await self._apply_all(up, principal, role)
            token, lifetime_s = await self._request_token(up, principal)
            self._cache[key] = _Cached(
                fingerprint, token, time.monotonic() + lifetime_s * TOKEN_REFRESH_FRACTION
            )
            log.info(
                "impersonation account ready",
                cluster=up.cluster_id,
                user=principal.user_id,
                role=role,
            )
            return token

    async def _apply_all(self, up: Upstream, principal: Principal, role: str) -> None:
        for collection, obj in desired_objects(principal, role):
            await apply_object(up, collection, obj)

    async def _request_token(self, up: Upstream, principal: Principal) -> tuple[str, float]:
        name = account_name(principal.user_id)
        path = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{name}/token"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_EXPIRATION_S},
        }
        doc = await post_json(up, path, body, "request a token")
        token = doc.get("status", {}).get("token")
        if not isinstance(token, str) or not token:
            raise DownstreamError("the TokenRequest answer carried no token")
        lifetime = float(doc.get("spec", {}).get("expirationSeconds") or TOKEN_EXPIRATION_S)
        return token, lifetime
