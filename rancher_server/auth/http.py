"""HTTP helpers for handlers (no middleware): Rancher-shaped error bodies and the caller's
principal from its bearer token."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from rancher_server.auth.principal import Principal
from rancher_server.auth.session_cookie import CsrfRefused, cookie_authorization
from rancher_server.auth.tokens import authenticate_bearer
from rancher_server.state import STATE

UNAUTHORIZED_MESSAGE = "must authenticate: a valid bearer token is required"

_STATUS_CODES = {
    400: "InvalidBodyContent", 401: "Unauthorized", 403: "PermissionDenied", 404: "NotFound",
    405: "MethodNotAllowed", 409: "AlreadyExists", 413: "RequestEntityTooLarge",
    415: "InvalidFormat", 422: "InvalidFormat", 429: "TooManyRequests",
    500: "ServerError", 503: "ServiceUnavailable",
}


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    return {"type": "error", "status": status, "code": code or _STATUS_CODES.get(status, "Error"),
            "message": message}


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(error_body(status, message, code), status=status, headers=headers)


class ApiError(web.HTTPException):
    """Raise from a handler: answered with a JSON error body of the given status."""

    def __init__(
        self, status: int, message: str, code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps(error_body(status, message, code)), content_type="application/json",
            headers=headers,
        )


def unauthorized(message: str = UNAUTHORIZED_MESSAGE) -> web.Response:
    """The 401 answer for a missing or invalid token."""
    return error_response(401, message, headers={"WWW-Authenticate": 'Bearer realm="rancher"'})


async def request_principal(request: web.Request) -> Principal | None:
    """The caller of a REST call: its bearer token; without an ``Authorization`` header, the web
    UI's session cookie (with its CSRF token on changes; see :mod:`.session_cookie`)."""
    authorization = request.headers.get("Authorization")
    if authorization is None:
        try:
            authorization = cookie_authorization(request)
        except CsrfRefused as e:
            raise ApiError(403, str(e), code="CSRFRefused") from e
    return await authenticate_bearer(request.app[STATE], authorization)


async def require_principal(request: web.Request) -> Principal:
    """The caller's principal, or raise a 401 :class:`ApiError`."""
    principal = await request_principal(request)
    if principal is None:
        raise ApiError(401, UNAUTHORIZED_MESSAGE,
                       headers={"WWW-Authenticate": 'Bearer realm="rancher"'})
    return principal


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ApiError(403, "only administrators may do this")
