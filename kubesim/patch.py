"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch."""

from __future__ import annotations

import copy
import json
from typing import Any

from . import errors
from .resources import ResourceType

# List merge keys of the core kinds (path suffix -> key), as in the Go struct tags.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "tolerations": "key",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "readinessGates": "conditionType",
    "addresses": "type",
    "taints": "key",
    "secrets": "name",
}
SERVICE_PORT_KEY = "port"
_PRIMITIVE_MERGE_LISTS = frozenset({"finalizers"})


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise errors.StatusError(422, "Invalid", f"invalid JSON pointer: {path}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise errors.bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    doc = copy.deepcopy(doc)
    for op in ops:
        try:
            doc = _apply_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise errors.StatusError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
            ) from exc
    return doc


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    parts = _pointer(op.get("path", ""))
    if kind == "test":
        if _walk(doc, parts) != op.get("value"):
            raise errors.StatusError(422, "Invalid", "testing value failed")
        return doc
    if kind in ("move", "copy"):
        src = _pointer(op.get("from", ""))
        value = copy.deepcopy(_walk(doc, src))
        if kind == "move":
            doc = _remove(doc, src)
        return _add(doc, parts, value)
    if kind == "remove":
        return _remove(doc, parts)
    if kind == "add":
        return _add(doc, parts, copy.deepcopy(op.get("value")))
    if kind == "replace":
        _walk(doc, parts)  # must exist
        doc = _remove(doc, parts)
        return _add(doc, parts, copy.deepcopy(op.get("value")))
    raise ValueError(f"Unexpected kind: {kind}")


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        idx = len(parent) if last == "-" else int(last)
        if idx > len(parent) or idx < 0:
            raise IndexError("index out of range")
        parent.insert(idx, value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return doc


def _merge_key(field: str, path: tuple[str, ...]) -> str | None:
    if (
        field == "ports"
        and "spec" in path
        and "containers" not in path
        and "initContainers" not in path
    ):
        return SERVICE_PORT_KEY
    return MERGE_KEYS.get(field)


def strategic_merge(original: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    if not isinstance(patch, dict) or not isinstance(original, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(original)
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            result[field] = [x for x in result.get(field) or [] if x not in (v or [])]
            continue
        if v is None:
            result.pop(k, None)
            continue
        cur = result.get(k)
        key = _merge_key(k, path)
        if isinstance(v, list) and isinstance(cur, list) and key:
            result[k] = _merge_list(cur, v, key, (*path, k))
        elif isinstance(v, list) and isinstance(cur, list) and k in _PRIMITIVE_MERGE_LISTS:
            result[k] = cur + [x for x in v if x not in cur]
        elif isinstance(v, dict):
            merged = strategic_merge(cur if isinstance(cur, dict) else {}, v, (*path, k))
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        else:
            result[k] = copy.deepcopy(v)
    for k, order in patch.items():
        if k.startswith("$setElementOrder/") and isinstance(order, list):
            field = k.split("/", 1)[1]
            merged = result.get(field)
            if isinstance(merged, list):
                server = original.get(field)
                result[field] = _normalize_order(
                    merged,
                    order,
                    server if isinstance(server, list) else [],
                    _merge_key(field, path),
                )
    return result


def _ident(item: Any, key: str | None) -> Any:
    if key and isinstance(item, dict):
        return item.get(key)
    return json.dumps(item, sort_keys=True)


def _sorted_by(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """``items`` in the order of ``order`` (stable; items it does not name keep their place
    after those it names), as apimachinery's ``normalizeSliceOrder``."""
    rank = {_ident(o, key): i for i, o in enumerate(order)}
    return sorted(items, key=lambda x: rank.get(_ident(x, key), len(rank)))


def _merge_sorted(
    server_only: list[Any], patched: list[Any], server_order: list[Any], key: str | None
) -> list[Any]:
    """apimachinery's ``mergeSortedSlice``: insert the server-only items into the patch's items,
    before the first patch item that comes after them on the server; both keep their order."""
    rank = {_ident(o, key): i for i, o in enumerate(server_order)}
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patched):
        if j >= len(patched):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(patched[j])
            j += 1
        else:
            li = rank.get(_ident(server_only[i], key))
            ri = rank.get(_ident(patched[j], key))
            if li is not None and ri is not None and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patched[j])
                j += 1
    return out


def _normalize_order(
    merged: list[Any], order: list[Any], server: list[Any], key: str | None
) -> list[Any]:
    """The items ``order`` names, in its order, with the other (server-only) items merged in by
    their order on the server (apimachinery's ``normalizeElementOrder``)."""
    named = {_ident(o, key) for o in order}
    listed = [x for x in merged if _ident(x, key) in named]
    others = [x for x in merged if _ident(x, key) not in named]
    return _merge_sorted(
        _sorted_by(others, server, key), _sorted_by(listed, order, key), server, key
    )


def _merge_list(cur: list[Any], patch: list[Any], key: str, path: tuple[str, ...]) -> list[Any]:
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    out = [copy.deepcopy(x) for x in cur]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            out.append(copy.deepcopy(item))
            continue
        idx = next(
            (i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append({k: v for k, v in copy.deepcopy(item).items() if not k.startswith("$")})
        else:
            out[idx] = strategic_merge(out[idx], item, path)
    # the patch's items first (in its order), then the items only the server had
    order = [x for x in patch if not (isinstance(x, dict) and x.get("$patch") == "delete")]
    return _normalize_order(out, order, cur, key)


def apply_patch(
    ctype: str, base: dict[str, Any], body: bytes, rt: ResourceType | None
) -> dict[str, Any]:
    try:
        patch = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise errors.bad_request(f"error decoding patch: {exc}") from exc
    if ctype == "application/json-patch+json":
        result = json_patch(base, patch)
    elif ctype == "application/strategic-merge-patch+json":
        if rt is not None and rt.crd is not None:
            raise errors.StatusError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        if not isinstance(patch, dict):
            raise errors.bad_request("patch must be a JSON object")
        result = strategic_merge(base, patch)
    else:
        if not isinstance(patch, dict):
            raise errors.bad_request("patch must be a JSON object")
        result = merge_patch(base, patch)
    if not isinstance(result, dict):
        raise errors.bad_request("patch result is not an object")
    return result
