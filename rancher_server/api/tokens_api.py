"""Login (``/v3-public``), logout and API tokens (``/v3/tokens``)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from rancher_server.api import schemas
from rancher_server.api.resources import NO_STORE, collection, token_resource
from rancher_server.api.spec import AUTH_PUBLIC, Ctx, endpoint
from rancher_server.auth.audit import audit_now
from rancher_server.auth.constants import (
    API_TOKEN_DEFAULT_TTL_S,
    API_TOKEN_MAX_TTL_S,
    LOGIN_TOKEN_TTL_S,
)
from rancher_server.auth.http import ApiError
from rancher_server.auth.login import (
    RESULT_OK,
    RESULT_THROTTLED,
    check_credentials,
    loggable_username,
)
from rancher_server.auth.tokens import issue_token
from rancher_server.store import NotFound
from rancher_tunnel.logs import get_logger

log = get_logger(component="login")
LOGIN_FAILED_MESSAGE = "authentication failed: wrong username or password"
MS_PER_S = 1000


def ttl_seconds(ttl_ms: int | None, default_s: float, max_s: float) -> float:
    """A requested TTL in milliseconds (0/absent: the default), capped at the maximum."""
    if not ttl_ms or ttl_ms < 0:
        return default_s
    if ttl_ms >= max_s * MS_PER_S:  # compared as integers: a huge TTL never becomes a float
        return max_s
    return ttl_ms / MS_PER_S


@endpoint("POST", "/v3-public/localProviders/local", "Log in with a local username and password",
          returns="Token",
          auth=AUTH_PUBLIC, action="login", body=schemas.LOGIN,
          response="a login token; 'token' (token-xxxxx:secret) is shown only here", status=201,
          errors={401: "wrong username or password (one message for both)",
                  429: "too many failed logins: wait Retry-After seconds"})
async def login(ctx: Ctx) -> web.Response:
    username = ctx.body["username"]
    outcome = await check_credentials(ctx.state, username, ctx.body["password"], ctx.remote)
    user_id = outcome.user.id if outcome.user else ""
    # A throttled attempt was not looked up: the name is logged hashed, like an unknown one.
    shown = loggable_username(username, outcome.user)
    target = f"user:{shown}"
    log.info("login", username=shown, user_id=user_id, result=outcome.result,
             remote=ctx.remote)
    if outcome.result != RESULT_OK or outcome.user is None:
        # Durable before the answer too; a flood of bad logins is group-committed (one fsync
        # per batch), and throttled sources are refused before any hashing.
        await audit_now(ctx.state, None, "login", target, outcome.result, ctx.remote, user_id)
        if outcome.result == RESULT_THROTTLED:
            raise ApiError(429, "too many failed logins; try again later",
                           headers={"Retry-After": str(outcome.retry_after_s)})
        raise ApiError(401, LOGIN_FAILED_MESSAGE)
    ttl_s = ttl_seconds(ctx.body.get("ttl"), LOGIN_TOKEN_TTL_S, LOGIN_TOKEN_TTL_S)
    issued = await asyncio.to_thread(
        issue_token, ctx.state.store, outcome.user, kind="login",
        description=ctx.body.get("description") or "login", ttl_s=ttl_s,
    )
    await audit_now(ctx.state, None, "login", target, f"{RESULT_OK} {issued.token.id}",
                    ctx.remote, user_id)
    return web.json_response(
        token_resource(issued.token, time.time(), bearer=issued.bearer), status=201,
        headers=NO_STORE,
    )


@endpoint("POST", "/v3/tokens", "Log out: revoke the calling token", action="logout",
          returns="Empty",
          body=schemas.EMPTY, response="empty object")
async def logout(ctx: Ctx) -> web.Response:
    await asyncio.to_thread(ctx.state.store.delete_token, ctx.user.token_id)
    await audit_now(ctx.state, ctx.user, "logout", f"token:{ctx.user.token_id}", "success",
                    ctx.remote)
    return web.json_response({})


@endpoint("POST", "/v3/tokens", "Create an API token for the caller", body=schemas.TOKEN_CREATE,
          returns="Token",
          response="the token; 'token' (token-xxxxx:secret) is shown only here", status=201)
async def create_token(ctx: Ctx) -> web.Response:
    user = await asyncio.to_thread(ctx.state.store.get_user, ctx.user.user_id)
    ttl_s = ttl_seconds(ctx.body.get("ttl"), API_TOKEN_DEFAULT_TTL_S, API_TOKEN_MAX_TTL_S)
    issued = await asyncio.to_thread(
        issue_token, ctx.state.store, user, kind="api",
        description=ctx.body.get("description", ""), ttl_s=ttl_s,
    )
    await audit_now(ctx.state, ctx.user, "token.create", f"token:{issued.token.id}", "success",
                    ctx.remote)
    return web.json_response(
        token_resource(issued.token, time.time(), ctx.user.token_id, issued.bearer), status=201,
        headers=NO_STORE,
    )


@endpoint("GET", "/v3/tokens", "List the caller's tokens (admins: ?all=true for everyone's)",
          returns="collection:Token",
          query={"all": "admins: 'true' lists every user's tokens"},
          response="collection of tokens (never their secrets)")
async def list_tokens(ctx: Ctx) -> web.Response:
    everyone = ctx.user.is_admin and ctx.request.query.get("all") == "true"
    tokens = ctx.state.store.list_tokens(None if everyone else ctx.user.user_id)
    now = time.time()
    return collection("token", (token_resource(t, now, ctx.user.token_id) for t in tokens))


def _own_token(ctx: Ctx, token_id: str) -> None:
    tok = ctx.state.store.get_token(token_id)
    if tok.user_id != ctx.user.user_id and not ctx.user.is_admin:
        raise NotFound(f"token {token_id!r} not found")


@endpoint("GET", "/v3/tokens/{id}", "Get one of the caller's tokens", returns="Token")
async def get_token(ctx: Ctx) -> web.Response:
    token_id = ctx.request.match_info["id"]
    _own_token(ctx, token_id)
    tok = ctx.state.store.get_token(token_id)
    return web.json_response(token_resource(tok, time.time(), ctx.user.token_id))


@endpoint("DELETE", "/v3/tokens/{id}", "Revoke a token (own, or any for admins)", returns="Token",
          response="the revoked token")
async def delete_token(ctx: Ctx) -> web.Response:
    token_id = ctx.request.match_info["id"]
    _own_token(ctx, token_id)
    tok = ctx.state.store.get_token(token_id)
    await asyncio.to_thread(ctx.state.store.delete_token, token_id)
    await audit_now(ctx.state, ctx.user, "token.revoke", f"token:{token_id}", "success",
                    ctx.remote)
    return web.json_response(token_resource(tok, time.time(), ctx.user.token_id))
