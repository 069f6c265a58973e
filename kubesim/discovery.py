"""Discovery documents generated from the registry (legacy and aggregated v2/v2beta1)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kubesim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}
AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _flat_resources(rts: list[ResourceType]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rt in rts:
        e: dict[str, Any] = {
            "name": rt.resource,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": rt.verbs,
        }
        if rt.short_names:
            e["shortNames"] = rt.short_names
        if rt.categories:
            e["categories"] = rt.categories
        if rt.storage_version_hash:
            e["storageVersionHash"] = rt.storage_version_hash
        out.append(e)
        for sub in sorted(rt.subresources, key=lambda s: s.name):
            se: dict[str, Any] = {
                "name": f"{rt.resource}/{sub.name}",
                "singularName": "",
                "namespaced": rt.namespaced,
            }
            rk = sub.response_kind or {}
            if rk.get("group"):
                se["group"] = rk["group"]
            if rk.get("version"):
                se["version"] = rk["version"]
            se["kind"] = rk.get("kind") or rt.kind
            se["verbs"] = sub.verbs
            out.append(se)
    out.sort(key=lambda e: e["name"])
    return out


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    rts = registry.in_group_version(group, version)
    if not rts:
        return None
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": _flat_resources(rts),
    }


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": vs, "preferredVersion": vs[0]}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    for g, versions in registry.groups():
        if g == group and g:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(g, versions)}
    return None


def api_group_list(registry: Registry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, vs) for g, vs in registry.groups() if g],
    }


def _agg_resource(rt: ResourceType) -> dict[str, Any]:
    e: dict[str, Any] = {
        "resource": rt.resource,
        "responseKind": {"group": "", "version": "", "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": rt.verbs,
    }
    if rt.short_names:
        e["shortNames"] = rt.short_names
    if rt.categories:
        e["categories"] = rt.categories
    subs = []
    for sub in sorted(rt.subresources, key=lambda s: s.name):
        se: dict[str, Any] = {"subresource": sub.name}
        if sub.response_kind is not None:
            se["responseKind"] = sub.response_kind
        se["verbs"] = sub.verbs
        subs.append(se)
    if subs:
        e["subresources"] = subs
    return e


def aggregated(registry: Registry, legacy: bool, api_version: str) -> dict[str, Any]:
    """The APIGroupDiscoveryList for /api (legacy) or /apis."""
    items = []
    for g, versions in registry.groups():
        if (g == "") != legacy:
            continue
        items.append(
            {
                "metadata": {"name": g, "creationTimestamp": None}
                if g
                else {"creationTimestamp": None},
                "versions": [
                    {
                        "version": v,
                        "resources": [_agg_resource(rt) for rt in registry.in_group_version(g, v)],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    }


def etag(body: bytes) -> str:
    return '"' + hashlib.sha512(body).hexdigest().upper() + '"'


def encode(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()
