"""The UI's cookie session (``/ui/session``): log in with the local provider's login action (the
same throttling and audit as ``POST /v3-public/localProviders/local?action=login``) and keep the
login token in an ``HttpOnly; Secure; SameSite=Strict`` cookie instead of handing it to the page;
tell the page who is logged in and its CSRF token; log out by revoking the token."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rancher_server.api import authconfigs_api, schemas, tokens_api
from rancher_server.api.router import read_json
from rancher_server.api.spec import Ctx
from rancher_server.api.validate import InvalidBody, validate
from rancher_server.auth.http import ApiError, request_principal, require_principal
from rancher_server.auth.principal import Principal
from rancher_server.auth.providers.constants import ACTIVE_DIRECTORY, OPENLDAP
from rancher_server.auth.session_cookie import SESSION_COOKIE, csrf_token_for, session_bearer
from rancher_server.auth.tokens import authenticate_bearer
from rancher_server.state import STATE
from rancher_server.ui.assets import secure_headers

LOGIN_DESCRIPTION = "ui session"
LOCAL_PROVIDER = "local"
# The providers that log in with a username and password, by the id the login page sends (the
# ids of GET /v3-public/authProviders).
PROVIDER_LOGINS: dict[str, Callable[[Ctx], Awaitable[web.StreamResponse]]] = {
    LOCAL_PROVIDER: tokens_api.login,
    OPENLDAP: authconfigs_api.openldap_login,
    ACTIVE_DIRECTORY: authconfigs_api.activedirectory_login,
}
JSON_TYPE = "application/json"
NO_STORE = {"Cache-Control": "no-store"}


def _session_json(principal: Principal, bearer: str) -> dict[str, Any]:
    return {"type": "uiSession", "userId": principal.user_id, "username": principal.username,
            "displayName": principal.display_name, "isAdmin": principal.is_admin,
            "globalRoles": list(principal.global_roles), "tokenId": principal.token_id,
            "csrfToken": csrf_token_for(bearer), "loggedIn": True}


def _answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers=secure_headers(NO_STORE))


def _same_origin(request: web.Request) -> None:
    """Login has no session yet, so no CSRF token: it must be JSON (a cross-site form cannot
    send that without a preflight this server never answers) and, where the browser says where
    it comes from, from this origin."""
    if request.content_type != JSON_TYPE:
        raise ApiError(415, "log in with a JSON body (Content-Type: application/json)")
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise ApiError(403, "login from another origin refused", code="CSRFRefused")


async def whoami(request: web.Request) -> web.Response:
    """Who the session cookie belongs to, and its CSRF token; ``loggedIn: false`` without a
    valid session (an answer, not a 401: the page asks this before anyone has logged in)."""
    if "Authorization" in request.headers:  # a bearer-token client has no cookie session
        raise ApiError(400, "no UI session: this request carries a bearer token")
    bearer = session_bearer(request)
    principal = None if bearer is None else await request_principal(request)
    if principal is None or bearer is None:
        return _answer({"type": "uiSession", "loggedIn": False})
    return _answer(_session_json(principal, bearer))


async def login(request: web.Request) -> web.Response:
    _same_origin(request)
    raw = await read_json(request)
    provider = raw.pop("provider", LOCAL_PROVIDER) if isinstance(raw, dict) else LOCAL_PROVIDER
    if provider not in PROVIDER_LOGINS:
        raise ApiError(422, f"provider: one of {', '.join(PROVIDER_LOGINS)}")
    try:
        body = validate(raw, schemas.LOGIN)
    except InvalidBody as e:
        raise ApiError(422, str(e)) from e
    body = {"username": body["username"], "password": body["password"],
            "description": LOGIN_DESCRIPTION}
    state = request.app[STATE]
    # The provider's own login action (throttling, audit, its checks); 401/403/429 raise.
    answer = await PROVIDER_LOGINS[provider](Ctx(request, state, None, body))
    assert isinstance(answer, web.Response) and answer.text is not None
    bearer = str(json.loads(answer.text)["token"])
    principal = await require_principal_for(request, bearer)
    resp = _answer(_session_json(principal, bearer), status=201)
    resp.set_cookie(SESSION_COOKIE, bearer, path="/", secure=True, httponly=True,
                    samesite="Strict")
    return resp


async def require_principal_for(request: web.Request, bearer: str) -> Principal:
    principal = await authenticate_bearer(request.app[STATE], f"Bearer {bearer}")
    if principal is None:  # revoked between issue and here: as a failed login
        raise ApiError(401, tokens_api.LOGIN_FAILED_MESSAGE)
    return principal


async def logout(request: web.Request) -> web.Response:
    """Revoke the session's token (with the CSRF token, as every change) and clear the cookie."""
    principal = await require_principal(request)
    if session_bearer(request) is None:
        raise ApiError(400, "no UI session: log out an API token with POST /v3/tokens"
                            "?action=logout")
    await tokens_api.logout(Ctx(request, request.app[STATE], principal, {}))
    resp = _answer({"type": "uiSession", "loggedOut": True})
    resp.del_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return resp
