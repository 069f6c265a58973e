"""List pagination (limit/continue tokens) and list envelopes."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from . import errors


def encode_continue(rv: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        pad = "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(token + pad))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise errors.bad_request(
            "invalid continue token: continue key is not valid: invalid character looking for "
            "beginning of value"
        ) from exc


def item_key(obj: dict[str, Any]) -> tuple[str, str]:
    md = obj["metadata"]
    return (md.get("namespace") or "", md["name"])


def _start_key(start: str) -> tuple[str, str]:
    ns, _, name = start.lstrip("/").rstrip("\x00").rpartition("/")
    return (ns, name)


def paginate(
    items: list[dict[str, Any]], limit: int, cont: str, revision: int, compacted: int
) -> tuple[list[dict[str, Any]], str, int | None, int]:
    """Returns (page, continue token, remainingItemCount, list RV)."""
    list_rv = revision
    if cont:
        rv, start = decode_continue(cont)
        if rv < compacted:
            raise errors.StatusError(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter, or use the "
                "continue token in this response to retrieve the remainder of the results. "
                "Continuing with the provided token results in an inconsistent list - objects "
                "that were created, modified, or deleted between the time the first chunk was "
                "returned and now may show up in the list.",
                metadata={"continue": encode_continue(-1, start)},
            )
        list_rv = rv
        skey = _start_key(start)
        items = [i for i in items if item_key(i) > skey]
    if limit <= 0 or len(items) <= limit:
        return items, "", None, list_rv
    page = items[:limit]
    return (
        page,
        encode_continue(list_rv, "/".join(item_key(page[-1])) + "\x00"),
        len(items) - limit,
        list_rv,
    )
