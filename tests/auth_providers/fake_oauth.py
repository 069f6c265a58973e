"""A GitHub (Enterprise API shapes) and OpenID Connect authorization server for the tests, run as
a real process on loopback: ``python -m tests.auth_providers.fake_oauth`` prints its port.
Plain HTTP by default; with ``--tls-cert`` and ``--tls-key`` (PEM files) it serves HTTPS, and its
issuer and URLs are ``https://``.

GitHub: ``/login/oauth/authorize``, ``/login/oauth/access_token``, ``/api/v3/user``,
``/api/v3/user/orgs``, ``/api/v3/user/teams``. OIDC under ``/oidc``: discovery, JWKS,
authorize (PKCE S256 required), token (authorization_code with the verifier checked by authlib's
``create_s256_code_challenge``, refresh_token); ID tokens are RS256, signed with joserfc.

The authorize pages log in whoever ``POST /test/login_as`` named, at once (no login form).
``POST /test/user`` changes a user's organisations, teams and groups, ``POST /test/revoke`` ends
their tokens, ``POST /test/id_token_mode`` makes the next ID tokens wrong (``wrong_issuer``,
``bad_signature``, ``expired``, ``wrong_audience``, ``ok``)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "rancher-client"
CLIENT_SECRET = "rancher-client-secret-0123456789"
KID = "k1"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ID_TOKEN_TTL_S = 300


@dataclass
class FakeUser:
    login: str
    gh_id: int
    orgs: list[int]
    teams: list[int]
    groups: list[str]
    sub: str


@dataclass
class Grant:
    user: str
    redirect_uri: str
    nonce: str = ""
    challenge: str = ""


@dataclass
class World:
    port: int = 0
    scheme: str = "http"
    users: dict[str, FakeUser] = field(default_factory=dict)
    login_as: str = "alice"
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> user
    refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> user
    mode: str = "ok"
    devices: dict[str, str] = field(default_factory=dict)  # device code -> user code
    approved: dict[str, str] = field(default_factory=dict)  # user code -> user
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": KID}))
    other_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": KID}))

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base}/oidc"


WORLD = web.AppKey("world", World)


def client_ok(request: web.Request, form: Any) -> bool:
    cid, secret = form.get("client_id", ""), form.get("client_secret", "")
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Basic "):
        cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
    return bool(cid == CLIENT_ID and secret == CLIENT_SECRET)


def redirect(uri: str, **params: str) -> web.Response:
    return web.Response(status=302, headers={"Location": f"{uri}?{urlencode(params)}"})


# ---------------------------------------------------------------------------- GitHub

async def gh_authorize(request: web.Request) -> web.Response:
    w, q = request.app[WORLD], request.query
    if q.get("client_id") != CLIENT_ID:
        return web.Response(status=404, text="unknown client")
    code = secrets.token_urlsafe(16)
    w.codes[code] = Grant(w.login_as, q.get("redirect_uri", ""))
    return redirect(q["redirect_uri"], code=code, state=q.get("state", ""))


async def gh_access_token(request: web.Request) -> web.Response:
    w, form = request.app[WORLD], await request.post()
    if not client_ok(request, form):
        return web.json_response({"error": "incorrect_client_credentials"})
    if form.get("grant_type") == DEVICE_GRANT:
        user_code = w.devices.get(str(form.get("device_code", "")), "")
        user = w.approved.get(user_code)
        if user is None:
            return web.json_response({"error": "authorization_pending"})
        del w.devices[str(form["device_code"])]
        grant = Grant(user, "")
    else:
        found = w.codes.pop(str(form.get("code", "")), None)
        if found is None:
            return web.json_response({"error": "bad_verification_code"})
        grant = found
    token = "gho_" + secrets.token_urlsafe(16)
    w.tokens[token] = grant.user
    return web.json_response({"access_token": token, "token_type": "bearer",
                              "scope": "read:user,read:org"})


async def gh_device_code(request: web.Request) -> web.Response:
    w, form = request.app[WORLD], await request.post()
    if form.get("client_id") != CLIENT_ID:
        return web.json_response({"error": "unauthorized_client"})
    device, user_code = secrets.token_urlsafe(16), secrets.token_hex(4).upper()
    w.devices[device] = user_code
    return web.json_response({
        "device_code": device, "user_code": user_code, "expires_in": 900, "interval": 1,
        "verification_uri": f"{w.base}/login/device"})


async def gh_device_enter(request: web.Request) -> web.Response:
    """The user types the code at GitHub (as whoever login_as names)."""
    w = request.app[WORLD]
    w.approved[(await request.json())["user_code"]] = w.login_as
    return web.json_response({})


def gh_user_of(request: web.Request) -> FakeUser:
    w = request.app[WORLD]
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    name = w.tokens.get(token)
    if name is None:
        raise web.HTTPUnauthorized(text='{"message": "Bad credentials"}')
    return w.users[name]


async def gh_root(request: web.Request) -> web.Response:
    return web.json_response({"current_user_url": "/api/v3/user"})


async def gh_user(request: web.Request) -> web.Response:
    u = gh_user_of(request)
    return web.json_response({"id": u.gh_id, "login": u.login, "name": u.login.title()})


async def gh_orgs(request: web.Request) -> web.Response:
    u = gh_user_of(request)
    return web.json_response([{"id": o, "login": f"org{o}"} for o in u.orgs])


async def gh_teams(request: web.Request) -> web.Response:
    u = gh_user_of(request)
    return web.json_response([{"id": t, "slug": f"team{t}"} for t in u.teams])


# ---------------------------------------------------------------------------- OIDC

async def discovery(request: web.Request) -> web.Response:
    w = request.app[WORLD]
    return web.json_response({
        "issuer": w.issuer, "authorization_endpoint": w.issuer + "/authorize",
        "token_endpoint": w.issuer + "/token", "jwks_uri": w.issuer + "/jwks",
        "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        **({} if w.mode == "no_device" else
           {"device_authorization_endpoint": w.issuer + "/device/code"})})


async def jwks(request: web.Request) -> web.Response:
    return web.json_response({"keys": [request.app[WORLD].key.as_dict(private=False)]})


async def oidc_authorize(request: web.Request) -> web.Response:
    w, q = request.app[WORLD], request.query
    if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
        return web.Response(status=400, text="bad request")
    if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
        return redirect(q["redirect_uri"], error="invalid_request", state=q.get("state", ""))
    code = secrets.token_urlsafe(16)
    w.codes[code] = Grant(w.login_as, q["redirect_uri"], q.get("nonce", ""),
                          q["code_challenge"])
    return redirect(q["redirect_uri"], code=code, state=q.get("state", ""))


def id_token(w: World, user: FakeUser, nonce: str) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": w.issuer, "sub": user.sub, "aud": CLIENT_ID, "iat": now,
        "exp": now + ID_TOKEN_TTL_S, "preferred_username": user.login, "groups": user.groups}
    if nonce:
        claims["nonce"] = nonce
    key = w.key
    if w.mode == "wrong_issuer":
        claims["iss"] = "http://127.0.0.1:1/other"
    elif w.mode == "expired":
        claims["iat"], claims["exp"] = now - 2 * ID_TOKEN_TTL_S, now - ID_TOKEN_TTL_S
    elif w.mode == "wrong_audience":
        claims["aud"] = "another-client"
    elif w.mode == "bad_signature":
        key = w.other_key
    return jwt.encode({"alg": "RS256", "kid": KID}, claims, key)


def token_answer(w: World, user: str, nonce: str) -> web.Response:
    access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    w.tokens[access], w.refresh[refresh] = user, user
    return web.json_response({
        "access_token": access, "token_type": "Bearer", "expires_in": 300,
        "refresh_token": refresh, "id_token": id_token(w, w.users[user], nonce)})


async def oidc_device_code(request: web.Request) -> web.Response:
    """RFC 8628 3.1-3.2, as Keycloak answers (the client authenticates as at the token
    endpoint); the user enters the code at /login/device (:func:`gh_device_enter`)."""
    w, form = request.app[WORLD], await request.post()
    if not client_ok(request, form):
        return web.json_response({"error": "invalid_client"}, status=401)
    device, user_code = secrets.token_urlsafe(16), secrets.token_hex(4).upper()
    w.devices[device] = user_code
    return web.json_response({
        "device_code": device, "user_code": user_code, "expires_in": 600, "interval": 1,
        "verification_uri": f"{w.issuer}/device",
        "verification_uri_complete": f"{w.issuer}/device?user_code={user_code}"})


async def oidc_token(request: web.Request) -> web.Response:
    w, form = request.app[WORLD], await request.post()
    if not client_ok(request, form):
        return web.json_response({"error": "invalid_client"}, status=401)
    if form.get("grant_type") == DEVICE_GRANT:
        user_code = w.devices.get(str(form.get("device_code", "")), "")
        if not user_code:
            return web.json_response({"error": "expired_token"}, status=400)
        user = w.approved.get(user_code)
        if user is None:
            return web.json_response({"error": "authorization_pending"}, status=400)
        del w.devices[str(form["device_code"])]
        return token_answer(w, user, "")
    if form.get("grant_type") == "refresh_token":
        user = w.refresh.pop(str(form.get("refresh_token", "")), None)
        if user is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return token_answer(w, user, "")
    grant = w.codes.pop(str(form.get("code", "")), None)
    if grant is None or grant.redirect_uri != form.get("redirect_uri"):
        return web.json_response({"error": "invalid_grant"}, status=400)
    verifier = str(form.get("code_verifier", ""))
    if not verifier or create_s256_code_challenge(verifier) != grant.challenge:
        return web.json_response({"error": "invalid_grant",
                                  "error_description": "PKCE verifier mismatch"}, status=400)
    return token_answer(w, grant.user, grant.nonce)


# ---------------------------------------------------------------------------- control

async def set_login_as(request: web.Request) -> web.Response:
    request.app[WORLD].login_as = (await request.json())["user"]
    return web.json_response({})


async def set_user(request: web.Request) -> web.Response:
    body = await request.json()
    u = request.app[WORLD].users[body["user"]]
    for k in ("orgs", "teams", "groups"):
        if k in body:
            setattr(u, k, body[k])
    return web.json_response({})


async def revoke(request: web.Request) -> web.Response:
    w, name = request.app[WORLD], (await request.json())["user"]
    w.tokens = {t: u for t, u in w.tokens.items() if u != name}
    w.refresh = {t: u for t, u in w.refresh.items() if u != name}
    return web.json_response({})


async def set_mode(request: web.Request) -> web.Response:
    request.app[WORLD].mode = (await request.json())["mode"]
    return web.json_response({})


def make_app(world: World) -> web.Application:
    app = web.Application()
    app[WORLD] = world
    app.add_routes([
        web.get("/login/oauth/authorize", gh_authorize),
        web.post("/login/oauth/access_token", gh_access_token),
        web.post("/login/device/code", gh_device_code),
        web.post("/login/device", gh_device_enter),
        web.get("/api/v3/", gh_root),
        web.get("/api/v3/user", gh_user),
        web.get("/api/v3/user/orgs", gh_orgs),
        web.get("/api/v3/user/teams", gh_teams),
        web.get("/oidc/.well-known/openid-configuration", discovery),
        web.get("/oidc/jwks", jwks),
        web.get("/oidc/authorize", oidc_authorize),
        web.post("/oidc/token", oidc_token),
        web.post("/oidc/device/code", oidc_device_code),
        web.post("/test/login_as", set_login_as),
        web.post("/test/user", set_user),
        web.post("/test/revoke", revoke),
        web.post("/test/id_token_mode", set_mode),
    ])
    return app


def seeded() -> World:
    w = World()
    w.users = {
        "alice": FakeUser("alice", 1001, [501], [701], ["devs", "staff"], "sub-alice"),
        "bob": FakeUser("bob", 1002, [502], [702], ["ops"], "sub-bob"),
    }
    return w


def server_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main(port: int, tls: ssl.SSLContext | None = None) -> None:
    world = seeded()
    world.scheme = "https" if tls is not None else "http"
    runner = web.AppRunner(make_app(world))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    world.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    print(world.port, flush=True)
    await asyncio.Event().wait()


@contextlib.contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The fake as a child process (``args``: its command line): the process and its port."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.auth_providers.fake_oauth", *args],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        yield proc, int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="and this key (PEM)")
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    asyncio.run(main(args.port, server_context(args.tls_cert, args.tls_key)
                     if args.tls_cert else None))
