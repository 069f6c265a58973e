"""Kubernetes ``Status`` bodies for answers the proxy gives itself (kubectl parses them)."""

from __future__ import annotations

import json

from aiohttp import web

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    413: "RequestEntityTooLarge",
    429: "TooManyRequests",
    502: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_body(code: int, message: str, reason: str = "") -> dict[str, object]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "InternalError"),
        "code": code,
    }


def status_response(code: int, message: str, reason: str = "") -> web.Response:
    return web.Response(
        status=code,
        body=json.dumps(status_body(code, message, reason)).encode(),
        content_type="application/json",
    )
