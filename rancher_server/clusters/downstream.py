"""Small Kubernetes API client for what the server keeps in downstream clusters, over the
cluster's tunnel with the agent's credential: get, create-or-update, list and delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the proxy package imports this module
    from rancher_server.proxy.upstream import Upstream


import aiohttp

MAX_ERROR_BODY_CHARS = 300


class DownstreamError(Exception):
    """The downstream API server refused an operation."""


def _auth(up: Upstream) -> dict[str, str]:
    if not up.admin_token:
        raise DownstreamError(
            f"cluster {up.cluster_id}: the agent reported no credential to manage objects"
        )
    return {"Authorization": f"Bearer {up.admin_token}", "Accept": "application/json"}


async def _error(resp: aiohttp.ClientResponse, what: str) -> DownstreamError:
    text = (await resp.text())[:MAX_ERROR_BODY_CHARS]
    return DownstreamError(f"downstream refused to {what}: HTTP {resp.status}: {text}")


def _differs(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """True if a field we manage differs (metadata other than labels/annotations is ignored)."""
    for key, value in desired.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            cur_meta = current.get("metadata", {})
            for mk in ("labels", "annotations"):
                have = cur_meta.get(mk) or {}
                if any(have.get(k) != v for k, v in (value.get(mk) or {}).items()):
                    return True
            continue
        if current.get(key) != value:
            return True
    return False


_UNKNOWN: dict[str, Any] = {}


async def apply_object(
    up: Upstream, collection: str, obj: dict[str, Any], current: dict[str, Any] | None = _UNKNOWN
) -> None:
    """Create ``obj`` in ``collection`` (an API path), or update it if a managed field differs.
    ``current`` is the object as listed (None: absent); when not given it is fetched."""
    headers = _auth(up)
    url = f"{up.base_url}{collection}/{obj['metadata']['name']}"
    if current is _UNKNOWN:
        async with up.http.get(url, headers=headers) as resp:
            if resp.status == 404:
                current = None
            elif resp.status == 200:
                current = await resp.json()
            else:
                raise await _error(resp, f"get {url}")
    if current is None:
        async with up.http.post(up.base_url + collection, json=obj, headers=headers) as resp:
            if resp.status in (200, 201, 409):
                return
            raise await _error(resp, f"create {obj['kind']} {obj['metadata']['name']}")
    if not _differs(current, obj):
        return
    meta = {**current["metadata"], **obj["metadata"]}
    async with up.http.put(url, json={**obj, "metadata": meta}, headers=headers) as resp:
        if resp.status not in (200, 201):
            raise await _error(resp, f"update {obj['kind']} {obj['metadata']['name']}")


async def list_objects(up: Upstream, collection: str, label_selector: str) -> list[dict[str, Any]]:
    url = f"{up.base_url}{collection}"
    async with up.http.get(
        url, params={"labelSelector": label_selector}, headers=_auth(up)
    ) as resp:
        if resp.status == 404:
            return []
        if resp.status != 200:
            raise await _error(resp, f"list {collection}")
        doc = await resp.json()
    items = doc.get("items") or []
    return [i for i in items if isinstance(i, dict)]


async def delete_object(up: Upstream, collection: str, name: str) -> None:
    url = f"{up.base_url}{collection}/{name}"
    async with up.http.delete(url, headers=_auth(up)) as resp:
        if resp.status not in (200, 202, 404):
            raise await _error(resp, f"delete {url}")


async def post_json(up: Upstream, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
    async with up.http.post(up.base_url + path, json=body, headers=_auth(up)) as resp:
        if resp.status not in (200, 201):
            raise await _error(resp, what)
        doc: dict[str, Any] = await resp.json()
    return doc
