"""Structural-schema validation of custom resources (types, required, enum), with
kube-apiserver's messages."""

from __future__ import annotations

import json
from typing import Any

from . import errors
from .resources import ResourceType

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def _check(value: Any, schema: dict[str, Any], path: str, causes: list[dict[str, str]]) -> None:
    if value is None:
        return  # nulls are dropped when the body is decoded
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            causes.append(_invalid(path, value, "must be of type integer or string"))
        return
    want = schema.get("type")
    if want in _TYPES:
        ok = isinstance(value, _TYPES[want]) and not (
            want in ("integer", "number") and isinstance(value, bool)
        )
        if not ok:
            got = _type_name(value)
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "message": f'Invalid value: "{got}": {path} in body must be of type '
                    f'{want}: "{got}"',
                    "field": path,
                }
            )
            return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(e) for e in schema["enum"])
        causes.append(
            {
                "reason": "FieldValueNotSupported",
                "message": f"Unsupported value: {json.dumps(value)}: supported values: {supported}",
                "field": path,
            }
        )
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for req in schema.get("required") or []:
            if req not in value:
                field = f"{path}.{req}" if path else req
                causes.append(
                    {"reason": "FieldValueRequired", "message": "Required value", "field": field}
                )
        addl = schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k) if k in props else (addl if isinstance(addl, dict) else None)
            if sub is not None:
                _check(v, sub, f"{path}.{k}" if path else k, causes)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            _check(v, schema["items"], f"{path}[{i}]", causes)


def _invalid(path: str, value: Any, what: str) -> dict[str, str]:
    got = _type_name(value)
    return {
        "reason": "FieldValueInvalid",
        "message": f'Invalid value: "{got}": {path} in body {what}',
        "field": path,
    }


def validate_custom_resource(rt: ResourceType, obj: dict[str, Any]) -> None:
    """422 Invalid when a custom resource does not match its version's openAPIV3Schema."""
    if rt.crd is None:
        return
    schema = ((rt.crd.get("schema") or {}).get("openAPIV3Schema")) or {}
    causes: list[dict[str, str]] = []
    top = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    props = schema.get("properties") or {}
    for req in schema.get("required") or []:
        if req not in top and req not in ("apiVersion", "kind", "metadata"):
            causes.append(
                {"reason": "FieldValueRequired", "message": "Required value", "field": req}
            )
    for k, v in top.items():
        if k in props:
            _check(v, props[k], k, causes)
    if causes:
        name = (obj.get("metadata") or {}).get("name", "")
        raise errors.invalid(rt.group, rt.kind, name, causes)
