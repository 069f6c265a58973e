"""Go's ``%#v`` rendering of the few values kube-apiserver puts in validation messages."""

from __future__ import annotations

import json
from typing import Any


def go_quote(value: Any) -> str:
    """A Go string literal (strconv.Quote, close enough for API field values)."""
    return json.dumps(str(value), ensure_ascii=False)


def go_string_slice(values: Any) -> str:
    """``[]string{"a", "b"}``, or ``[]string(nil)`` when unset."""
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def go_string_map(values: Any) -> str:
    """``map[string]string{"k":"v"}`` with sorted keys, or ``map[string]string(nil)``."""
    if values is None:
        return "map[string]string(nil)"
    return (
        "map[string]string{"
        + ", ".join(f"{go_quote(k)}:{go_quote(v)}" for k, v in sorted(values.items()))
        + "}"
    )
