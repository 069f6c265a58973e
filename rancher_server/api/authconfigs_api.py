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
from rancher_server.auth.providers.constants import (
    ACTIVE_DIRECTORY,
    MAX_ALLOWED_PRINCIPALS,
    MAX_CERTIFICATE_CHARS,
    MAX_FIELD_CHARS,
    MAX_LOGIN_NAME_CHARS,
    MAX_PASSWORD_CHARS,
    MAX_REFRESH_INTERVAL_S,
    MAX_SERVERS,
    MIN_REFRESH_INTERVAL_S,
    OPENLDAP,
    PROVIDERS,
)
from rancher_server.auth.providers.ldap import DirectoryError, DirectoryUnavailable, LoginRefused
from rancher_server.auth.providers.secretbox import SecretError
from rancher_server.auth.providers.service import (
    NotAllowed,
    ProviderDisabled,
    StoreDisabled,
    directory,
)
from rancher_server.auth.tokens import issue_token
from rancher_server.store import NotFound
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
    if provider not in PROVIDERS:
        raise NotFound(f"auth provider {provider!r} not found (providers: "
                       f"{', '.join(PROVIDERS)})")
    return provider


def _stored(ctx: Ctx, provider: str) -> cfgmod.LdapConfig:
    try:
        return directory(ctx.state).config(provider)
    except SecretError as e:
        raise ApiError(503, f"the stored bind password does not decrypt: {e}") from e


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
    return web.json_response({"type": "collection", "resourceType": "authProvider",
                              "data": data})


@endpoint("GET", "/v3/authconfigs/{provider}", "A directory provider's configuration (the bind "
          "password is never shown: passwordSet says whether one is stored)", auth=AUTH_ADMIN)
async def get_authconfig(ctx: Ctx) -> web.Response:
    provider = _provider(ctx)
    out = cfgmod.to_api(_stored(ctx, provider))
    report = directory(ctx.state).reports.get(provider)
    out["lastRefresh"] = report.as_dict() if report else None
    return web.json_response(out)


@endpoint("PUT", "/v3/authconfigs/{provider}", "Configure, enable or disable a directory "
          "provider", auth=AUTH_ADMIN, body=AUTHCONFIG,
          errors={422: "an invalid or incomplete configuration"})
async def put_authconfig(ctx: Ctx) -> web.Response:
    provider = _provider(ctx)
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
        user = await directory(ctx.state).refresh_user(user_id)
    except DirectoryError as e:
        raise ApiError(503, f"directory unreachable ({e.stage}): {e.message}") from e
    await audit_now(ctx.state, ctx.user, "user.refreshgroups", f"user:{user_id}", "success",
                    ctx.remote)
    return web.json_response(user_resource(user))


async def _directory_login(ctx: Ctx, provider: str) -> web.Response:
    login_name, password = ctx.body["username"], ctx.body["password"]
    state, remote = ctx.state, ctx.remote
    key = f"{provider}:{login_name}"  # throttled apart from a local user of the same name
    wait = login_retry_after(state, key, remote)
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
        delay = record_login_failure(state, key, remote)
        log.info("login", provider=provider, username=shown, result=RESULT_FAILED,
                 reason=e.reason, remote=remote)
        await audit_now(state, None, "login", f"user:{shown}", RESULT_FAILED, remote)
        if delay > 0:
            await asyncio.sleep(delay)
        raise ApiError(401, LOGIN_FAILED_MESSAGE) from e
    except NotAllowed as e:
        await audit_now(state, None, "login", f"user:{e}", "not allowed", remote)
        raise ApiError(403, "this user may not log in: the provider allows only certain users "
                            "and groups") from e
    except StoreDisabled as e:
        await audit_now(state, None, "login", f"user:{e}", RESULT_DISABLED, remote, str(e))
        raise ApiError(401, LOGIN_FAILED_MESSAGE) from e
    record_login_success(state, key, remote)
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
