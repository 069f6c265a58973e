"""Directory auth providers (OpenLDAP / generic LDAP, Active Directory): configuration
(``/v3/authconfigs/<provider>``, administrators only, every change audited), the connection test,
group refreshes, and login (``/v3-public/openLdapProviders/openldap?action=login``,
``/v3-public/activeDirectoryProviders/activedirectory?action=login``)."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from rancher_server.api.resources import NO_STORE, token_resource, user_resource
from rancher_server.api.spec import AUTH_ADMIN, AUTH_PUBLIC, Ctx, Schema, endpoint
from rancher_server.auth.audit import audit_now
from rancher_server.auth.constants import LOGIN_TOKEN_TTL_S
from rancher_server.auth.http import ApiError
from rancher_server.auth.login import (
    RESULT_DISABLED,
    RESULT_FAILED,
    RESULT_OK,
    RESULT_THROTTLED,
    loggable_username,
    login_retry_after,
    record_login_failure,
    record_login_success,
)
from rancher_server.auth.providers import config as cfgmod
from rancher_server.auth.providers import oauthconfig as ocfg
from rancher_server.auth.providers.constants import (
    ACTIVE_DIRECTORY,
    GITHUB,
    MAX_ALLOWED_PRINCIPALS,
    MAX_CERTIFICATE_CHARS,
    MAX_FIELD_CHARS,
    MAX_LOGIN_NAME_CHARS,
    MAX_PASSWORD_CHARS,
    MAX_REFRESH_INTERVAL_S,
    MAX_SERVERS,
    MIN_REFRESH_INTERVAL_S,
    OAUTH_PROVIDERS,
    OIDC,
    OPENLDAP,
    PROVIDERS,
)
from rancher_server.auth.providers.ldap import DirectoryError, DirectoryUnavailable, LoginRefused
from rancher_server.auth.providers.oauthcommon import OAuthError, ProviderUnreachable
from rancher_server.auth.providers.oauthservice import (
    DevicePending,
    StateMismatch,
    oauth,
    oauth_provider_of,
)
from rancher_server.auth.providers.secretbox import SecretError
from rancher_server.auth.providers.service import (
    NotAllowed,
    ProviderDisabled,
    StoreDisabled,
    directory,
)
from rancher_server.auth.session_cookie import SESSION_COOKIE
from rancher_server.auth.tokens import IssuedToken, issue_token
from rancher_server.state import ServerState
from rancher_server.store import NotFound, User
from rancher_tunnel.logs import get_logger

log = get_logger(component="login")
LOGIN_FAILED_MESSAGE = "authentication failed: wrong username or password"
MS_PER_S = 1000
LOGIN_PATHS = {
    OPENLDAP: "/v3-public/openLdapProviders/openldap",
    ACTIVE_DIRECTORY: "/v3-public/activeDirectoryProviders/activedirectory",
}

_str: Schema = {"type": "string", "maxLength": MAX_FIELD_CHARS}
AUTHCONFIG: Schema = {"type": "object", "properties": {
    "enabled": {"type": "boolean"},
    "servers": {"type": "array", "maxItems": MAX_SERVERS, "items": _str},
    "port": {"type": "integer", "minimum": 0, "maximum": 65535,
             "description": "0: 636 for ldaps, 389 otherwise"},
    "tls": {"type": "string", "enum": list(cfgmod.TLS_MODES)},
    "certificate": {"type": "string", "maxLength": MAX_CERTIFICATE_CHARS,
                    "description": "the CA (PEM) that signed the servers' certificates"},
    "serviceAccountDistinguishedName": _str,
    "serviceAccountPassword": {"type": "string", "maxLength": MAX_PASSWORD_CHARS,
                               "description": "write-only; empty keeps the stored one"},
    "userSearchBase": _str, "userSearchFilter": _str, "userLoginAttribute": _str,
    "userNameAttribute": _str, "userObjectClass": _str, "userMemberAttribute": _str,
    "groupSearchBase": _str, "groupSearchFilter": _str, "groupObjectClass": _str,
    "groupNameAttribute": _str, "groupMemberMappingAttribute": _str,
    "groupMemberUserAttribute": _str,
    "nestedGroupMembershipEnabled": {"type": "boolean"},
    "tokenGroupsEnabled": {"type": "boolean"},
    "allowedPrincipalIds": {"type": "array", "maxItems": MAX_ALLOWED_PRINCIPALS, "items": _str},
    "refreshIntervalS": {"type": "integer", "minimum": MIN_REFRESH_INTERVAL_S,
                         "maximum": MAX_REFRESH_INTERVAL_S},
}}
TEST_CONNECTION: Schema = {"type": "object", "properties": {
    **AUTHCONFIG["properties"],
    "username": {"type": "string", "maxLength": MAX_LOGIN_NAME_CHARS,
                 "description": "also log in as this user"},
    "password": {"type": "string", "maxLength": MAX_PASSWORD_CHARS},
}}
DIRECTORY_LOGIN: Schema = {
    "type": "object", "required": ["username", "password"],
    "properties": {"username": {"type": "string", "minLength": 1,
                                "maxLength": MAX_LOGIN_NAME_CHARS},
                   "password": {"type": "string", "minLength": 1,
                                "maxLength": MAX_PASSWORD_CHARS},
                   "ttl": {"type": "integer", "minimum": 0}, "description": _str,
                   "responseType": {"type": "string", "maxLength": 16}},
}


def _provider(ctx: Ctx) -> str:
    provider = ctx.request.match_info["provider"]
    if provider not in PROVIDERS + OAUTH_PROVIDERS:
        raise NotFound(f"auth provider {provider!r} not found (providers: "
                       f"{', '.join(PROVIDERS + OAUTH_PROVIDERS)})")
    return provider


def _stored(ctx: Ctx, provider: str) -> cfgmod.LdapConfig:
    try:
        return directory(ctx.state).config(provider)
    except SecretError as e:
        raise ApiError(503, f"the stored bind password does not decrypt: {e}") from e



async def _refused(state: ServerState, e: NotAllowed | StoreDisabled, remote: str) -> ApiError:
    """A directory user the provider's allow-list or an administrator keeps out: audited, and
    the same answer whichever provider they came through."""
    if isinstance(e, NotAllowed):
        await audit_now(state, None, "login", f"user:{e}", "not allowed", remote)
        return ApiError(403, "this user may not log in: the provider allows only certain users "
                             "and groups")
    await audit_now(state, None, "login", f"user:{e}", RESULT_DISABLED, remote, str(e))
    return ApiError(401, LOGIN_FAILED_MESSAGE)

@endpoint("GET", "/v3-public/authProviders", "The enabled login providers (for a login page)",
          auth=AUTH_PUBLIC, response="collection of providers")
async def list_auth_providers(ctx: Ctx) -> web.Response:
    data = [{"type": "localProvider", "id": "local",
             "loginUrl": "/v3-public/localProviders/local?action=login"}]
    for provider in PROVIDERS:
        raw = ctx.state.store.get_setting(cfgmod.setting_name(provider))
        if raw and json.loads(raw).get("enabled") is True:
            data.append({"type": f"{provider}Provider", "id": provider,
                         "loginUrl": f"{LOGIN_PATHS[provider]}?action=login"})
    for provider in OAUTH_PROVIDERS:
        raw = ctx.state.store.get_setting(cfgmod.setting_name(provider))
        if raw and json.loads(raw).get("enabled") is True:
            data.append({"type": f"{provider}Provider", "id": provider,
                         "redirectUrl": f"{OAUTH_PATHS[provider]}/authorize"})
    return web.json_response({"type": "collection", "resourceType": "authProvider",
                              "data": data})


@endpoint("GET", "/v3/authconfigs/{provider}", "A directory provider's configuration (the bind "
          "password is never shown: passwordSet says whether one is stored)", auth=AUTH_ADMIN)
async def get_authconfig(ctx: Ctx) -> web.Response:
    provider = _provider(ctx)
    if provider in OAUTH_PROVIDERS:
        return await _oauth_get(ctx, provider)
    out = cfgmod.to_api(_stored(ctx, provider))
    report = directory(ctx.state).reports.get(provider)
    out["lastRefresh"] = report.as_dict() if report else None
    return web.json_response(out)


@endpoint("PUT", "/v3/authconfigs/{provider}", "Configure, enable or disable a directory "
          "provider", auth=AUTH_ADMIN, body=AUTHCONFIG,
          errors={422: "an invalid or incomplete configuration"})
async def put_authconfig(ctx: Ctx) -> web.Response:
    provider = _provider(ctx)
    if provider in OAUTH_PROVIDERS:
        return await _oauth_put(ctx, provider)
    try:
        cfg = cfgmod.merge(_stored(ctx, provider), ctx.body)
    except cfgmod.ConfigError as e:
        raise ApiError(422, str(e)) from e
    await directory(ctx.state).save(cfg)
    changed = ",".join(sorted(k for k in ctx.body if k in cfgmod.API_FIELDS))
    await audit_now(ctx.state, ctx.user, "authconfig.update", f"authconfig:{provider}",
                    f"success {changed}", ctx.remote)
    log.info("auth provider configured", changed=changed, **cfgmod.to_log(cfg))
    return web.json_response(cfgmod.to_api(cfg))


@endpoint("POST", "/v3/authconfigs/{provider}", "Test a configuration (the stored one with the "
          "body's fields over it; nothing is saved): each step with what failed (dns, connect, "
          "tls, bind, search, group lookup, login)", auth=AUTH_ADMIN, action="testConnection",
          body=TEST_CONNECTION)
async def test_authconfig(ctx: Ctx) -> web.Response:
    provider = _provider(ctx)
    if provider in OAUTH_PROVIDERS:
        return await _oauth_test(ctx, provider)
    body = {k: v for k, v in ctx.body.items() if k not in ("username", "password")}
    try:
        cfg = cfgmod.merge(_stored(ctx, provider), body)
    except cfgmod.ConfigError as e:
        raise ApiError(422, str(e)) from e
    steps = await directory(ctx.state).test(cfg, ctx.body.get("username") or "",
                                            ctx.body.get("password") or "")
    failed = next((s for s in steps if not s.ok), None)
    await audit_now(ctx.state, ctx.user, "authconfig.test", f"authconfig:{provider}",
                    "success" if failed is None else f"failure {failed.stage}", ctx.remote)
    return web.json_response({
        "ok": failed is None, "stage": failed.stage if failed else "",
        "message": failed.message if failed else "every step succeeded",
        "steps": [s.as_dict() for s in steps]})


@endpoint("POST", "/v3/authconfigs/{provider}", "Refresh every user of the provider from the "
          "directory now", auth=AUTH_ADMIN, action="refreshGroups")
async def refresh_provider_groups(ctx: Ctx) -> web.Response:
    provider = _provider(ctx)
    if provider in OAUTH_PROVIDERS:
        report = await oauth(ctx.state).refresh_provider(provider)
    else:
        report = await directory(ctx.state).refresh_provider(provider)
    await audit_now(ctx.state, ctx.user, "authconfig.refresh", f"authconfig:{provider}",
                    "failure" if report.error else "success", ctx.remote)
    if report.error:
        raise ApiError(503, f"directory refresh failed at {report.stage}: {report.error}")
    return web.json_response(report.as_dict())


@endpoint("POST", "/v3/users/{id}", "Refresh a directory user's groups and state now",
          needs=("users", "update"), action="refreshGroups", returns="User")
async def refresh_user_groups(ctx: Ctx) -> web.Response:
    user_id = ctx.request.match_info["id"]
    try:
        user = ctx.state.store.get_user(user_id)
        if oauth_provider_of(user) is not None:
            user = await oauth(ctx.state).refresh_user(user)
        else:
            user = await directory(ctx.state).refresh_user(user_id)
    except OAuthError as e:
        raise ApiError(503, f"provider unreachable ({e.stage}): {e.message}") from e
    except DirectoryError as e:
        raise ApiError(503, f"directory unreachable ({e.stage}): {e.message}") from e
    await audit_now(ctx.state, ctx.user, "user.refreshgroups", f"user:{user_id}", "success",
                    ctx.remote)
    return web.json_response(user_resource(user))


async def _directory_login(ctx: Ctx, provider: str) -> web.Response:
    login_name, password = ctx.body["username"], ctx.body["password"]
    state, remote = ctx.state, ctx.remote
    key = f"{provider}:{login_name}"  # throttled apart from a local user of the same name
    wait = await login_retry_after(state, key, remote)
    shown = f"{provider}:{loggable_username(login_name, None)}"
    if wait > 0:
        await audit_now(state, None, "login", f"user:{shown}", RESULT_THROTTLED, remote)
        raise ApiError(429, "too many failed logins; try again later",
                       headers={"Retry-After": str(max(1, round(wait)))})
    try:
        user = await directory(state).login(provider, login_name, password)
    except ProviderDisabled as e:
        raise ApiError(404, f"auth provider {provider!r} is not enabled") from e
    except DirectoryUnavailable as e:
        log.warning("directory login: directory unreachable", provider=provider, stage=e.stage,
                    error=e.message)
        await audit_now(state, None, "login", f"user:{shown}", f"error {e.stage}", remote)
        raise ApiError(503, f"directory unreachable ({e.stage}); local users can still log "
                            f"in") from e
    except DirectoryError as e:
        log.warning("directory login failed", provider=provider, stage=e.stage, error=e.message)
        await audit_now(state, None, "login", f"user:{shown}", f"error {e.stage}", remote)
        raise ApiError(503, f"directory error ({e.stage}); ask an administrator to run "
                            f"testConnection") from e
    except SecretError as e:
        raise ApiError(503, "the provider's bind password does not decrypt "
                            "(RANCHER_SECRETS_KEY changed?)") from e
    except LoginRefused as e:
        delay = await record_login_failure(state, key, remote)
        log.info("login", provider=provider, username=shown, result=RESULT_FAILED,
                 reason=e.reason, remote=remote)
        await audit_now(state, None, "login", f"user:{shown}", RESULT_FAILED, remote)
        if delay > 0:
            await asyncio.sleep(delay)
        raise ApiError(401, LOGIN_FAILED_MESSAGE) from e
    except (NotAllowed, StoreDisabled) as e:
        raise await _refused(state, e, remote) from e
    await record_login_success(state, key, remote)
    ttl = ctx.body.get("ttl") or 0
    ttl_s = min(LOGIN_TOKEN_TTL_S, ttl / MS_PER_S) if ttl > 0 else LOGIN_TOKEN_TTL_S
    issued = await asyncio.to_thread(
        issue_token, state.store, user, kind="login",
        description=ctx.body.get("description") or f"{provider} login", ttl_s=ttl_s)
    log.info("login", provider=provider, user_id=user.id, result=RESULT_OK, remote=remote,
             groups=len(user.groups))
    await audit_now(state, None, "login", f"user:{user.username}",
                    f"{RESULT_OK} {issued.token.id}", remote, user.id)
    return web.json_response(token_resource(issued.token, time.time(), bearer=issued.bearer),
                             status=201, headers=NO_STORE)


@endpoint("POST", LOGIN_PATHS[OPENLDAP], "Log in with an OpenLDAP / LDAP username and password",
          auth=AUTH_PUBLIC, action="login", body=DIRECTORY_LOGIN, status=201, returns="Token",
          response="a login token; 'token' (token-xxxxx:secret) is shown only here",
          errors={401: "wrong username or password", 403: "not an allowed principal",
                  404: "provider not enabled", 429: "too many failed logins",
                  503: "directory unreachable"})
async def openldap_login(ctx: Ctx) -> web.Response:
    return await _directory_login(ctx, OPENLDAP)


@endpoint("POST", LOGIN_PATHS[ACTIVE_DIRECTORY], "Log in with an Active Directory account "
          "(user@domain, DOMAIN\\user or user)", auth=AUTH_PUBLIC, action="login",
          body=DIRECTORY_LOGIN, status=201, returns="Token",
          response="a login token; 'token' (token-xxxxx:secret) is shown only here",
          errors={401: "wrong username or password", 403: "not an allowed principal",
                  404: "provider not enabled", 429: "too many failed logins",
                  503: "directory unreachable"})
async def activedirectory_login(ctx: Ctx) -> web.Response:
    return await _directory_login(ctx, ACTIVE_DIRECTORY)


# --------------------------------------------------------------------------- GitHub and OIDC

OAUTH_PATHS = {
    GITHUB: "/v3-public/githubProviders/github",
    OIDC: "/v3-public/oidcProviders/oidc",
}
STATE_COOKIE = "R_OAUTH_STATE"  # binds a login's state to the browser that started it
RESPONSE_COOKIE = "cookie"  # a browser: redirect to the UI with the session cookie
RESPONSE_JSON = "json"  # an API client: the token in a JSON answer
UI_HOME = "/ui/"
MAX_PROVIDER_ERROR_CHARS = 64


async def _oauth_get(ctx: Ctx, provider: str) -> web.Response:
    try:
        out = ocfg.to_api(oauth(ctx.state).config(provider))
    except SecretError as e:
        raise ApiError(503, f"the stored client secret does not decrypt: {e}") from e
    report = oauth(ctx.state).reports.get(provider)
    out["lastRefresh"] = report.as_dict() if report else None
    out["redirectUrl"] = f"{OAUTH_PATHS[provider]}/authorize"
    out["callbackPath"] = f"{OAUTH_PATHS[provider]}/callback"
    return web.json_response(out)


def _oauth_merged(ctx: Ctx, provider: str, body: dict[str, object]) -> ocfg.OAuthConfig:
    try:
        return ocfg.merge(oauth(ctx.state).config(provider), dict(body))
    except SecretError as e:
        raise ApiError(503, f"the stored client secret does not decrypt: {e}") from e
    except cfgmod.ConfigError as e:
        raise ApiError(422, str(e)) from e


async def _oauth_put(ctx: Ctx, provider: str) -> web.Response:
    cfg = _oauth_merged(ctx, provider, ctx.body)
    await oauth(ctx.state).save(cfg)
    changed = ",".join(sorted(k for k in ctx.body if k in ocfg.API_FIELDS[provider]))
    await audit_now(ctx.state, ctx.user, "authconfig.update", f"authconfig:{provider}",
                    f"success {changed}", ctx.remote)
    log.info("auth provider configured", changed=changed, **ocfg.to_log(cfg))
    return web.json_response(ocfg.to_api(cfg))


async def _oauth_test(ctx: Ctx, provider: str) -> web.Response:
    cfg = _oauth_merged(ctx, provider, ctx.body)
    steps = await oauth(ctx.state).test(cfg)
    failed = next((s for s in steps if not s[1]), None)
    await audit_now(ctx.state, ctx.user, "authconfig.test", f"authconfig:{provider}",
                    "success" if failed is None else f"failure {failed[0]}", ctx.remote)
    return web.json_response({
        "ok": failed is None, "stage": failed[0] if failed else "",
        "message": failed[2] if failed else "every step succeeded",
        "steps": [{"stage": st, "ok": ok, "message": m} for st, ok, m in steps]})


async def _oauth_authorize(ctx: Ctx, provider: str) -> web.Response:
    response = ctx.request.query.get("responseType", RESPONSE_COOKIE)
    if response not in (RESPONSE_COOKIE, RESPONSE_JSON):
        raise ApiError(422, f"responseType must be {RESPONSE_COOKIE} or {RESPONSE_JSON}")
    base = ctx.state.config.server_url.rstrip("/") or (
        f"{ctx.request.scheme}://{ctx.request.host}")
    try:
        url, state = await oauth(ctx.state).begin(
            provider, f"{base}{OAUTH_PATHS[provider]}/callback", response)
    except ProviderDisabled as e:
        raise ApiError(404, f"auth provider {provider!r} is not enabled") from e
    except SecretError as e:
        raise ApiError(503, "the provider's client secret does not decrypt "
                            "(RANCHER_SECRETS_KEY changed?)") from e
    except OAuthError as e:
        log.warning("oauth login: provider unreachable", provider=provider, stage=e.stage,
                    error=e.message)
        raise ApiError(503, f"the provider is unreachable ({e.stage}); local users can still "
                            f"log in") from e
    resp = web.Response(status=302, headers={"Location": url, **NO_STORE})
    resp.set_cookie(STATE_COOKIE, state, path=OAUTH_PATHS[provider], secure=True,
                    httponly=True, samesite="Lax")
    return resp


async def _issue_login(ctx: Ctx, provider: str, user: User) -> IssuedToken:
    issued = await asyncio.to_thread(issue_token, ctx.state.store, user, kind="login",
                                     description=f"{provider} login", ttl_s=LOGIN_TOKEN_TTL_S)
    log.info("login", provider=provider, user_id=user.id, result=RESULT_OK, remote=ctx.remote,
             groups=len(user.groups))
    await audit_now(ctx.state, None, "login", f"user:{user.username}",
                    f"{RESULT_OK} {issued.token.id}", ctx.remote, user.id)
    return issued


async def _oauth_callback(ctx: Ctx, provider: str) -> web.Response:
    q, state, remote = ctx.request.query, ctx.state, ctx.remote
    svc = oauth(state)
    if "error" in q:
        await audit_now(state, None, "login", f"user:{provider}:?", RESULT_FAILED, remote)
        raise ApiError(401, f"the provider refused the login: "
                            f"{q['error'][:MAX_PROVIDER_ERROR_CHARS]}")
    try:
        pending = await svc.take(provider, q.get("state", ""), ctx.request.cookies.get(
            STATE_COOKIE, ""))
    except StateMismatch as e:
        await audit_now(state, None, "login", f"user:{provider}:?", "failure state", remote)
        raise ApiError(400, f"login refused: {e}") from e
    try:
        user = await svc.complete(provider, pending, q.get("code", ""))
    except ProviderDisabled as e:
        raise ApiError(404, f"auth provider {provider!r} is not enabled") from e
    except ProviderUnreachable as e:
        await audit_now(state, None, "login", f"user:{provider}:?", f"error {e.stage}", remote)
        raise ApiError(503, f"the provider is unreachable ({e.stage}); local users can still "
                            f"log in") from e
    except OAuthError as e:
        log.info("login", provider=provider, result=RESULT_FAILED, stage=e.stage,
                 reason=e.message, remote=remote)
        await audit_now(state, None, "login", f"user:{provider}:?", f"failure {e.stage}",
                        remote)
        raise ApiError(401, f"login refused ({e.stage}): {e.message}") from e
    except (NotAllowed, StoreDisabled) as e:
        raise await _refused(state, e, remote) from e
    issued = await _issue_login(ctx, provider, user)
    if pending.response == RESPONSE_JSON:
        resp = web.json_response(token_resource(issued.token, time.time(),
                                                bearer=issued.bearer),
                                 status=201, headers=NO_STORE)
    else:
        resp = web.Response(status=302, headers={"Location": UI_HOME, **NO_STORE})
        resp.set_cookie(SESSION_COOKIE, issued.bearer, path="/", secure=True, httponly=True,
                        samesite="Strict")
    resp.del_cookie(STATE_COOKIE, path=OAUTH_PATHS[provider], secure=True, httponly=True,
                    samesite="Lax")
    return resp


_REDIRECT_ERRORS = {404: "provider not enabled", 503: "provider unreachable"}
_CALLBACK_ERRORS = {400: "state unknown, used, expired or not this browser's",
                    401: "the provider refused, or the ID token failed validation",
                    403: "not an allowed principal", 404: "provider not enabled",
                    503: "provider unreachable"}
_RESPONSE_QUERY = {"responseType": "cookie (default: a redirect to the UI with the session "
                                   "cookie) or json (the callback answers with the token)"}


@endpoint("GET", OAUTH_PATHS[GITHUB] + "/authorize", "Start a GitHub login: a redirect to "
          "GitHub's authorize page (state bound to this browser)", auth=AUTH_PUBLIC,
          status=302, query=_RESPONSE_QUERY, response="a redirect", errors=_REDIRECT_ERRORS)
async def github_authorize(ctx: Ctx) -> web.Response:
    return await _oauth_authorize(ctx, GITHUB)


@endpoint("GET", OAUTH_PATHS[GITHUB] + "/callback", "GitHub's redirect back: exchange the code, "
          "read the user, organisations and teams, log in", auth=AUTH_PUBLIC, status=302,
          query={"code": "from GitHub", "state": "from GitHub"}, errors=_CALLBACK_ERRORS,
          response="a redirect to the UI with the session cookie, or the token (JSON)")
async def github_callback(ctx: Ctx) -> web.Response:
    return await _oauth_callback(ctx, GITHUB)


@endpoint("GET", OAUTH_PATHS[OIDC] + "/authorize", "Start an OpenID Connect login: a redirect "
          "to the issuer (PKCE, state, nonce)", auth=AUTH_PUBLIC, status=302,
          query=_RESPONSE_QUERY, response="a redirect", errors=_REDIRECT_ERRORS)
async def oidc_authorize(ctx: Ctx) -> web.Response:
    return await _oauth_authorize(ctx, OIDC)


@endpoint("GET", OAUTH_PATHS[OIDC] + "/callback", "The issuer's redirect back: exchange the "
          "code, validate the ID token, log in", auth=AUTH_PUBLIC, status=302,
          query={"code": "from the issuer", "state": "from the issuer"},
          errors=_CALLBACK_ERRORS,
          response="a redirect to the UI with the session cookie, or the token (JSON)")
async def oidc_callback(ctx: Ctx) -> web.Response:
    return await _oauth_callback(ctx, OIDC)


DEVICE_LOGIN: Schema = {"type": "object", "required": ["deviceHandle"], "properties": {
    "deviceHandle": {"type": "string", "minLength": 1, "maxLength": MAX_FIELD_CHARS}}}


DEVICE_WHERE = {GITHUB: "GitHub", OIDC: "the OpenID Connect issuer"}
_DEVICE_LOGIN_ERRORS: dict[int, str] = {
    202: "pending: poll again after 'interval' seconds", 400: "unknown or expired device login",
    **_CALLBACK_ERRORS}


async def _device_code(ctx: Ctx, provider: str) -> web.Response:
    try:
        out = await oauth(ctx.state).device_begin(provider)
    except ProviderDisabled as e:
        raise ApiError(404, f"auth provider {provider!r} is not enabled") from e
    except OAuthError as e:
        raise ApiError(503, f"{DEVICE_WHERE[provider]} device login unavailable ({e.stage}): "
                            f"{e.message}") from e
    return web.json_response(out, headers=NO_STORE)


async def _device_login(ctx: Ctx, provider: str) -> web.Response:
    state, remote = ctx.state, ctx.remote
    try:
        user = await oauth(state).device_poll(provider, ctx.body["deviceHandle"])
    except DevicePending as e:
        return web.json_response({"pending": True, "interval": e.interval_s}, status=202,
                                 headers=NO_STORE)
    except StateMismatch as e:
        raise ApiError(400, f"login refused: {e}") from e
    except ProviderDisabled as e:
        raise ApiError(404, f"auth provider {provider!r} is not enabled") from e
    except ProviderUnreachable as e:
        raise ApiError(503, f"the provider is unreachable ({e.stage}); local users can still "
                            f"log in") from e
    except OAuthError as e:
        await audit_now(state, None, "login", f"user:{provider}:?", f"failure {e.stage}", remote)
        raise ApiError(401, f"login refused ({e.stage}): {e.message}") from e
    except (NotAllowed, StoreDisabled) as e:
        raise await _refused(state, e, remote) from e
    issued = await _issue_login(ctx, provider, user)
    return web.json_response(token_resource(issued.token, time.time(), bearer=issued.bearer),
                             status=201, headers=NO_STORE)


@endpoint("POST", OAUTH_PATHS[GITHUB], "Start a GitHub device login (for a CLI): the code the "
          "user enters at GitHub, and the handle to poll deviceLogin with", auth=AUTH_PUBLIC,
          action="deviceCode", errors=_REDIRECT_ERRORS)
async def github_device_code(ctx: Ctx) -> web.Response:
    return await _device_code(ctx, GITHUB)


@endpoint("POST", OAUTH_PATHS[GITHUB], "Poll a GitHub device login: 202 while the user has not "
          "entered the code, then the token", auth=AUTH_PUBLIC, action="deviceLogin",
          body=DEVICE_LOGIN, status=201, returns="Token", errors=_DEVICE_LOGIN_ERRORS)
async def github_device_login(ctx: Ctx) -> web.Response:
    return await _device_login(ctx, GITHUB)


@endpoint("POST", OAUTH_PATHS[OIDC], "Start an OpenID Connect device login (for a CLI; RFC 8628, "
          "where the issuer offers it): the code the user enters at the issuer, and the handle "
          "to poll deviceLogin with", auth=AUTH_PUBLIC, action="deviceCode",
          errors=_REDIRECT_ERRORS)
async def oidc_device_code(ctx: Ctx) -> web.Response:
    return await _device_code(ctx, OIDC)


@endpoint("POST", OAUTH_PATHS[OIDC], "Poll an OpenID Connect device login: 202 while the user "
          "has not entered the code, then the token", auth=AUTH_PUBLIC, action="deviceLogin",
          body=DEVICE_LOGIN, status=201, returns="Token", errors=_DEVICE_LOGIN_ERRORS)
async def oidc_device_login(ctx: Ctx) -> web.Response:
    return await _device_login(ctx, OIDC)
