"""A small JSON-schema subset checker for request bodies (object, string, integer, boolean,
array of strings), giving messages a client can act on."""

from __future__ import annotations

import re
from typing import Any

from rancher_server.api.spec import Schema


class InvalidBody(ValueError):
    """The body does not match its schema; the message names the field."""


def _check(value: Any, schema: Schema, where: str) -> None:
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise InvalidBody(f"{where or 'body'} must be a JSON object")
        for name in schema.get("required", []):
            if value.get(name) is None:
                raise InvalidBody(f"field {name!r} is required")
        for name, sub in schema.get("properties", {}).items():
            if value.get(name) is not None:
                _check(value[name], sub, name)
    elif kind == "string":
        if not isinstance(value, str):
            raise InvalidBody(f"field {where!r} must be a string")
        if len(value) < schema.get("minLength", 0):
            raise InvalidBody(f"field {where!r} must have at least {schema['minLength']} chars")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise InvalidBody(f"field {where!r} must have at most {schema['maxLength']} chars")
        if "enum" in schema and value not in schema["enum"]:
            raise InvalidBody(f"field {where!r} must be one of {', '.join(schema['enum'])}")
        if "pattern" in schema and not re.fullmatch(schema["pattern"], value):
            raise InvalidBody(f"field {where!r} must match {schema['pattern']}")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidBody(f"field {where!r} must be an integer")
        if "minimum" in schema and value < schema["minimum"]:
            raise InvalidBody(f"field {where!r} must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise InvalidBody(f"field {where!r} must be <= {schema['maximum']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidBody(f"field {where!r} must be true or false")
    elif kind == "array":
        if not isinstance(value, list):
            raise InvalidBody(f"field {where!r} must be an array")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise InvalidBody(f"field {where!r} must have at most {schema['maxItems']} items")
        for item in value:
            _check(item, schema.get("items", {}), where)


def validate(value: Any, schema: Schema) -> dict[str, Any]:
    _check(value, schema, "")
    assert isinstance(value, dict)
    return value
