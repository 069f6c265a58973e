"""The authorized cluster endpoint, server side: for every cluster with the endpoint enabled, keep
in the downstream cluster what kube-api-auth needs to authenticate our users without us.

In namespace ``cattle-system`` of the cluster, for each API token (kubeconfig tokens included) of
each enabled user who may use the cluster:
- a Secret named like the token holding the token's salted SHA3-512 hash (``$3:1:<salt>:<hash>``,
  the very hash the server stores: the plain secret never leaves the server),
- a ClusterAuthToken named like the token (user, enabled, expiry, cluster, secret reference),
and for each such user a ClusterUserAttribute (groups, enabled) plus the ClusterRoleBinding that
gives the user their role's downstream rights. Objects no longer wanted are deleted: the Secret is
written before its ClusterAuthToken and deleted after it. A revoked or expired token, a disabled
user or a group change reaches the cluster within ``SYNC_INTERVAL_S`` plus one watch event.

The per-cluster setting lives in the store's settings as ``ace:<cluster id>`` (JSON)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from kube_api_auth.crds import manifests as crd_manifests
from rancher_server.access.endpoint_config import get_config
from rancher_server.access.roles import CLUSTER_OWNER, strongest
from rancher_server.clusters.downstream import (
    DownstreamError,
    apply_object,
    delete_object,
    list_objects,
)
from rancher_server.policy import DOWNSTREAM_CLUSTER_ROLE
from rancher_server.state import ServerState
from rancher_server.store import ApiToken, Store, User
from rancher_server.tunnel.registry import ClusterUnavailable
from rancher_tunnel.errors import DialRefused, SessionClosed
from rancher_tunnel.logs import get_logger

if TYPE_CHECKING:  # the proxy package imports this module
    from rancher_server.proxy.upstream import UpstreamPool


NAMESPACE = "cattle-system"
MANAGED_LABEL = "cattle.io/creator"
MANAGED_VALUE = "rancher-py-ace"
SELECTOR = f"{MANAGED_LABEL}={MANAGED_VALUE}"
SYNC_INTERVAL_S = 1.0  # how often desired state is recomputed (cheap: a few indexed reads)
FULL_RESYNC_S = 60.0  # re-list the cluster even when nothing changed here (repairs drift)
HASH_PREFIX = "$3:"
CRD_GROUP = "cluster.cattle.io/v3"
SECRETS = f"/api/v1/namespaces/{NAMESPACE}/secrets"
TOKENS = f"/apis/{CRD_GROUP}/namespaces/{NAMESPACE}/clusterauthtokens"
ATTRIBUTES = f"/apis/{CRD_GROUP}/namespaces/{NAMESPACE}/clusteruserattributes"
BINDINGS = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
NAMESPACES = "/api/v1/namespaces"

log = get_logger(component="ace")


def _rfc3339(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(name: str, namespaced: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {MANAGED_LABEL: MANAGED_VALUE}}
    if namespaced:
        meta["namespace"] = NAMESPACE
    return meta


def user_roles(store: Store, cluster_id: str) -> dict[str, tuple[User, str]]:
    """Enabled users who may use the cluster, with their strongest role (as the proxy decides)."""
    out: dict[str, tuple[User, str]] = {}
    for user in store.list_users():
        if not user.enabled:
            continue
        role = (
            CLUSTER_OWNER
            if user.is_admin
            else strongest([b.role for b in store.bindings_for(user.id, user.groups, cluster_id)])
        )
        if role is not None:
            out[user.id] = (user, role)
    return out


def desired_objects(
    store: Store, cluster_id: str, now: float
) -> dict[tuple[str, str], dict[str, Any]]:
    """(collection, name) -> object, for everything this cluster should hold."""
    members = user_roles(store, cluster_id)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for user, role in members.values():
        out[(ATTRIBUTES, user.id)] = {
            "apiVersion": CRD_GROUP,
            "kind": "ClusterUserAttribute",
            "metadata": _meta(user.id),
            "groups": list(user.groups),
            "enabled": user.enabled,
        }
        out[(BINDINGS, f"cattle-crb-{user.id}")] = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(f"cattle-crb-{user.id}", namespaced=False),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": DOWNSTREAM_CLUSTER_ROLE[role],
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user.id}
            ],
        }
    for tok in store.list_tokens():
        if not _syncable(tok, members, now):
            continue
        out[(SECRETS, tok.id)] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(tok.id),
            "type": "Opaque",
            "data": {"hash": base64.b64encode(tok.secret_hash.encode()).decode()},
        }
        out[(TOKENS, tok.id)] = {
            "apiVersion": CRD_GROUP,
            "kind": "ClusterAuthToken",
            "metadata": _meta(tok.id),
            "userName": tok.user_id,
            "enabled": tok.enabled,
            "expiresAt": _rfc3339(tok.expires_at),
            "clusterName": cluster_id,
            "secretRef": {"name": tok.id, "key": "hash"},
        }
    return out


def _syncable(tok: ApiToken, members: dict[str, tuple[User, str]], now: float) -> bool:
    return (
        tok.kind == "api"
        and tok.enabled
        and tok.user_id in members
        and (tok.expires_at is None or tok.expires_at > now)
        and tok.secret_hash.startswith(HASH_PREFIX)
    )


def fingerprint(objs: dict[tuple[str, str], dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(sorted(objs.items()), sort_keys=True).encode()).hexdigest()


# Creation order: what is referenced first. Deletion runs in reverse.
ORDER = (ATTRIBUTES, BINDINGS, SECRETS, TOKENS)


class AceSyncer:
    def __init__(self, state: ServerState, pool: UpstreamPool) -> None:
        self._state = state
        self._pool = pool
        self._synced: dict[str, tuple[str, tuple[str, str], float]] = {}
        self._crds_ready: set[tuple[str, tuple[str, str]]] = set()
        self.passes = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sync_once()
            except Exception:  # a bug here must not stop the sync for good
                log.exception("authorized endpoint sync pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SYNC_INTERVAL_S)

    async def sync_once(self) -> None:
        store = self._state.store
        now = time.time()
        for cluster in store.list_clusters():
            if not get_config(store, cluster.id).enabled:
                continue
            if not self._state.sessions.is_connected(cluster.id):
                continue
            try:
                await self._sync_cluster(cluster.id, now)
            except (
                DownstreamError,
                ClusterUnavailable,
                aiohttp.ClientError,
                DialRefused,
                SessionClosed,
                TimeoutError,
            ) as e:
                log.warning("authorized endpoint sync failed", cluster=cluster.id, error=str(e))
                self._synced.pop(cluster.id, None)
        self.passes += 1

    async def _sync_cluster(self, cluster_id: str, now: float) -> None:
        up = self._pool.get(cluster_id)
        desired = desired_objects(self._state.store, cluster_id, now)
        fp = fingerprint(desired)
        last = self._synced.get(cluster_id)
        if (
            last is not None
            and last[0] == fp
            and last[1] == up.key
            and now - last[2] < FULL_RESYNC_S
        ):
            return
        if (cluster_id, up.key) not in self._crds_ready:
            await apply_object(
                up,
                NAMESPACES,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE, False)},
            )
            for crd in crd_manifests():
                await apply_object(up, CRDS, crd)
            self._crds_ready.add((cluster_id, up.key))
        current = {
            coll: {
                i.get("metadata", {}).get("name", ""): i
                for i in await list_objects(up, coll, SELECTOR)
            }
            for coll in ORDER
        }
        for collection in ORDER:
            for (coll, name), obj in desired.items():
                if coll == collection:
                    await apply_object(up, collection, obj, current[collection].get(name))
        for collection in reversed(ORDER):
            for name in current[collection]:
                if (collection, name) not in desired:
                    await delete_object(up, collection, name)
        self._synced[cluster_id] = (fp, up.key, now)
        log.info("authorized endpoint synced", cluster=cluster_id, objects=len(desired))
