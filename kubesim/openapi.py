"""OpenAPI v2/v3 documents (the published Kubernetes schemas, vendored) plus CRD schemas,
and fieldValidation=Strict checking against them."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from importlib import resources as pkg_resources
from typing import Any

from aiohttp import web

from . import codec, errors
from .resources import Registry, ResourceType

ONE_YEAR_S = 365 * 24 * 3600
_V3_FILES = {
    "api/v1": "v3__api__v1.json.gz",
    "apis/apps/v1": "v3__apis__apps__v1.json.gz",
    "apis/rbac.authorization.k8s.io/v1": "v3__apis__rbac.authorization.k8s.io__v1.json.gz",
    "apis/apiextensions.k8s.io/v1": "v3__apis__apiextensions.k8s.io__v1.json.gz",
    "apis/authentication.k8s.io/v1": "v3__apis__authentication.k8s.io__v1.json.gz",
    "apis/authorization.k8s.io/v1": "v3__apis__authorization.k8s.io__v1.json.gz",
    "apis/coordination.k8s.io/v1": "v3__apis__coordination.k8s.io__v1.json.gz",
    "apis/events.k8s.io/v1": "v3__apis__events.k8s.io__v1.json.gz",
}
V2_PROTOBUF_MIME = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _pb_string(field: int, value: str) -> bytes:
    data = value.encode()
    return bytes([field << 3 | 2, len(data)]) + data


# A gnostic openapi_v2.Document with only swagger and info: client-go insists on protobuf for
# /openapi/v2, and kubectl only uses it for client-side validation (of "kind: List" files),
# which skips kinds the document does not define; the server then validates each object.
_V2_INFO = _pb_string(1, "Kubernetes") + _pb_string(2, "v1.32.0")
V2_PROTOBUF_STUB = _pb_string(1, "2.0") + bytes([2 << 3 | 2, len(_V2_INFO)]) + _V2_INFO
META_SCHEMA = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


@functools.cache
def _load(name: str) -> dict[str, Any]:
    raw = pkg_resources.files("kubesim").joinpath(f"data/openapi/{name}").read_bytes()
    doc: dict[str, Any] = json.loads(gzip.decompress(raw))
    return doc


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _hash(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()


def _gv_of_key(key: str) -> tuple[str, str]:
    parts = key.split("/")
    return ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])


def _crd_doc(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    rts = [rt for rt in registry.in_group_version(group, version) if rt.crd is not None]
    if not rts:
        return None
    meta_schemas = _load(_V3_FILES["api/v1"])["components"]["schemas"]
    schemas: dict[str, Any] = {}
    _copy_refs(meta_schemas, META_SCHEMA, schemas)
    paths: dict[str, Any] = {}
    rev = ".".join(reversed(group.split(".")))
    for rt in rts:
        crd_schema = ((rt.crd or {}).get("schema") or {}).get("openAPIV3Schema") or {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
        schema = json.loads(json.dumps(crd_schema))
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"type": "string"}
        props["kind"] = {"type": "string"}
        props["metadata"] = {"allOf": [{"$ref": f"#/components/schemas/{META_SCHEMA}"}]}
        schema["x-kubernetes-group-version-kind"] = [
            {"group": group, "kind": rt.kind, "version": version}
        ]
        name = f"{rev}.{version}.{rt.kind}"
        schemas[name] = schema
        base = f"/apis/{group}/{version}/"
        base += f"namespaces/{{namespace}}/{rt.resource}" if rt.namespaced else rt.resource
        ref = {"$ref": f"#/components/schemas/{name}"}
        params = [
            {"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for p in ("dryRun", "fieldManager", "fieldValidation")
        ]
        op = {
            "parameters": params,
            "responses": {"200": {"content": {"application/json": {"schema": ref}}}},
            "x-kubernetes-group-version-kind": {
                "group": group,
                "version": version,
                "kind": rt.kind,
            },
        }
        paths[base] = {"post": op}
        paths[base + "/{name}"] = {"get": op, "put": op, "patch": op}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _copy_refs(src: dict[str, Any], name: str, dst: dict[str, Any]) -> None:
    if name in dst or name not in src:
        return
    dst[name] = src[name]
    for ref in _refs(src[name]):
        _copy_refs(src, ref, dst)


def _refs(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.append(v.rsplit("/", 1)[-1])
            else:
                out.extend(_refs(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_refs(v))
    return out


class _Docs:
    """Caches encoded v3 documents keyed by registry generation."""

    def __init__(self) -> None:
        self.generation = -1
        self.docs: dict[str, bytes] = {}

    def refresh(self, registry: Registry) -> None:
        if self.generation == registry.generation:
            return
        docs: dict[str, bytes] = {}
        for key, fname in _V3_FILES.items():
            g, v = _gv_of_key(key)
            if registry.in_group_version(g, v):
                docs[key] = _encode(_load(fname))
        for g, versions in registry.groups():
            for v in versions:
                key = f"apis/{g}/{v}"
                if key in docs:
                    continue
                doc = _crd_doc(registry, g, v)
                if doc is not None:
                    docs[key] = _encode(doc)
        self.docs = docs
        self.generation = registry.generation


_DOCS = _Docs()


def v3_document(registry: Registry, key: str) -> dict[str, Any] | None:
    if key in _V3_FILES:
        return _load(_V3_FILES[key])
    g, v = _gv_of_key(key)
    return _crd_doc(registry, g, v)


def serve(request: web.Request, registry: Registry) -> web.Response:
    path = request.path.rstrip("/")
    if path == "/openapi/v2":
        if "protobuf" in request.headers.get("Accept", ""):
            resp = web.Response(body=V2_PROTOBUF_STUB, headers={"Vary": "Accept"})
            resp.headers["Content-Type"] = V2_PROTOBUF_MIME
            return resp
        body = _encode(_load("v2.json.gz"))
        return web.Response(
            body=body,
            content_type="application/json",
            headers={"Etag": '"' + _hash(body)[:64] + '"', "Vary": "Accept"},
        )
    _DOCS.refresh(registry)
    if path == "/openapi/v3":
        index = {
            "paths": {
                k: {"serverRelativeURL": f"/openapi/v3/{k}?hash={_hash(b)}"}
                for k, b in sorted(_DOCS.docs.items())
            }
        }
        # kube-apiserver serves the index as text/plain (clients parse it as JSON anyway)
        return web.Response(
            body=_encode(index),
            headers={
                "Cache-Control": "no-cache, private",
                "Content-Type": "text/plain; charset=utf-8",
            },
        )
    if path.startswith("/openapi/v3/"):
        key = path[len("/openapi/v3/") :]
        doc_body = _DOCS.docs.get(key)
        if doc_body is None:
            return codec.text_response("404 page not found\n", 404)
        h = _hash(doc_body)
        want = request.query.get("hash")
        if want is not None and want != h:
            raise web.HTTPMovedPermanently(f"/openapi/v3/{key}?hash={h}")
        headers = {"Etag": f'"{h}"', "Vary": "Accept"}
        if want:
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = "Fri, 26 Nov 2027 00:00:00 GMT"
        else:
            headers["Cache-Control"] = "no-cache, private"
        resp = web.Response(body=doc_body, headers=headers)
        resp.headers["Content-Type"] = "application/json"
        return resp
    return codec.text_response("404 page not found\n", 404)


# ------------------------------------------------------------------ strict validation
def _schema_for(
    registry: Registry, rt: ResourceType
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    if rt.crd is not None:
        return _find_schema(registry, rt)
    key = (rt.group, rt.version, rt.kind)
    if key not in _SCHEMA_CACHE:
        _SCHEMA_CACHE[key] = _find_schema(registry, rt)
    return _SCHEMA_CACHE[key]


_SCHEMA_CACHE: dict[tuple[str, str, str], tuple[dict[str, Any], dict[str, Any]] | None] = {}


def _find_schema(
    registry: Registry, rt: ResourceType
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    key = f"api/{rt.version}" if not rt.group else f"apis/{rt.group}/{rt.version}"
    doc = v3_document(registry, key)
    if doc is None:
        return None
    schemas: dict[str, Any] = doc.get("components", {}).get("schemas", {})
    for s in schemas.values():
        for gvk in s.get("x-kubernetes-group-version-kind") or []:
            if (
                gvk.get("group") == rt.group
                and gvk.get("kind") == rt.kind
                and gvk.get("version") == rt.version
            ):
                return s, schemas
    return None


def _resolve(node: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    for _ in range(8):
        if "$ref" in node:
            node = schemas.get(node["$ref"].rsplit("/", 1)[-1], {})
        elif "allOf" in node and len(node["allOf"]) == 1 and not node.get("properties"):
            node = node["allOf"][0]
        else:
            break
    return node


def _unknown(
    value: Any,
    schema: dict[str, Any],
    schemas: dict[str, Any],
    path: str,
    out: list[str],
    prune: bool = False,
) -> None:
    schema = _resolve(schema, schemas)
    if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get(
        "x-kubernetes-int-or-string"
    ):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        if props is None and addl is None:
            return
        for k, v in list(value.items()):
            where = f"{path}.{k}" if path else k
            sub = (props or {}).get(k)
            if sub is not None:
                _unknown(v, sub, schemas, where, out, prune)
            elif isinstance(addl, dict):
                _unknown(v, addl, schemas, where, out, prune)
            elif addl is not True:
                out.append(where)
                if prune:
                    del value[k]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            _unknown(v, schema["items"], schemas, f"{path}[{i}]", out, prune)


def unknown_fields(
    registry: Registry, rt: ResourceType, obj: dict[str, Any], prune: bool = False
) -> list[str]:
    """Dotted paths of the fields of ``obj`` its schema does not declare (removed if
    ``prune``: decoding into kube-apiserver's types drops them too)."""
    found = _schema_for(registry, rt)
    if found is None:
        return []
    schema, schemas = found
    unknown: list[str] = []
    _unknown(obj, schema, schemas, "", unknown, prune)
    return unknown


def apply_validate(registry: Registry, rt: ResourceType, obj: dict[str, Any], ns: str) -> None:
    """Server-side apply rejects undeclared fields unless fieldValidation=Ignore."""
    unknown = unknown_fields(registry, rt, obj)
    if not unknown:
        return
    name = (obj.get("metadata") or {}).get("name", "")
    where = f"{ns}/{name}" if ns else name
    gvk = f"{rt.api_version}, Kind={rt.kind}"
    raise errors.bad_request(
        f"failed to create typed patch object ({where}; {gvk}): .{unknown[0]}: field not "
        "declared in schema"
    )


def strict_validate(registry: Registry, rt: ResourceType, obj: dict[str, Any]) -> None:
    unknown = unknown_fields(registry, rt, obj)
    if not unknown:
        return
    fields = ", ".join(f'unknown field "{u}"' for u in unknown)
    raise errors.bad_request(
        f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict decoding '
        f"error: {fields}"
    )
