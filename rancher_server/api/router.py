"""Builds aiohttp routes from the endpoint table: one route per (method, path) that dispatches on
``?action=``, authenticates the caller, reads and validates the JSON body (bounded), and turns
store errors into JSON error answers."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from aiohttp import web

from rancher_server.api.authz import require_global
from rancher_server.api.spec import AUTH_ADMIN, AUTH_PUBLIC, Ctx, Endpoint
from rancher_server.api.validate import InvalidBody, validate
from rancher_server.auth.http import ApiError, request_principal, unauthorized
from rancher_server.state import STATE
from rancher_server.store import Conflict, NotFound, StorageUnavailable, StoreError
from rancher_tunnel.logs import get_logger

log = get_logger(component="api")
API_MAX_BODY_BYTES = 64 * 1024  # every API body is small; the proxy has its own limits


async def read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > API_MAX_BODY_BYTES:
        raise ApiError(413, f"request body larger than {API_MAX_BODY_BYTES} bytes")
    buf = bytearray()
    while chunk := await request.content.read(API_MAX_BODY_BYTES + 1 - len(buf)):
        buf += chunk
        if len(buf) > API_MAX_BODY_BYTES:  # a chunked body without a Content-Length
            raise ApiError(413, f"request body larger than {API_MAX_BODY_BYTES} bytes")
    raw = bytes(buf)
    if not raw.strip():
        return {}
    ctype = request.content_type
    if ctype not in ("application/json", "application/octet-stream", ""):
        raise ApiError(415, "request body must be JSON (Content-Type: application/json)")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except RecursionError as e:
        raise ApiError(400, "request body is nested too deeply") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"request body is not valid JSON: {e}") from e


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def _run(ep: Endpoint, request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    principal = None
    if ep.auth != AUTH_PUBLIC:
        principal = await request_principal(request)
        if principal is None:
            return unauthorized()
        if ep.auth == AUTH_ADMIN and not principal.is_admin:
            raise ApiError(403, "only administrators may do this")
        if ep.needs is not None:
            require_global(state, principal, *ep.needs)
    body: dict[str, Any] = {}
    if ep.body is not None:
        try:
            body = validate(await read_json(request), ep.body)
        except InvalidBody as e:
            raise ApiError(422, str(e)) from e
    try:
        return await ep.handler(Ctx(request, state, principal, body))
    except NotFound as e:
        raise ApiError(404, str(e)) from e
    except Conflict as e:
        raise ApiError(409, str(e)) from e
    except StorageUnavailable:
        raise  # 503, logged once (rancher_server.api.errors)
    except StoreError as e:
        raise ApiError(422, str(e)) from e


def _dispatcher(eps: list[Endpoint]) -> Any:
    by_action = {ep.action: ep for ep in eps}

    async def dispatch(request: web.Request) -> web.StreamResponse:
        action = request.query.get("action")
        ep = by_action.get(action)
        if ep is None:
            known = ", ".join(sorted(a for a in by_action if a)) or "none"
            raise ApiError(400, f"unknown action {action!r} (actions here: {known})",
                           code="InvalidAction")
        return await _run(ep, request)

    dispatch.__name__ = eps[0].operation_id
    return dispatch


def build_routes(endpoints: list[Endpoint]) -> list[web.RouteDef]:
    grouped: dict[tuple[str, str], list[Endpoint]] = defaultdict(list)
    for ep in endpoints:
        grouped[(ep.method, ep.path)].append(ep)
    return [web.route(method, path, _dispatcher(eps)) for (method, path), eps in grouped.items()]
