"""The web UI's session cookie: the cookie holds a login token (``token-xxxxx:secret``) that the
page's script never sees (``HttpOnly``); a per-session CSRF token, derived from the token's
secret, must come back in a header on every change made with the cookie.

Only for the web UI's paths and the REST calls it makes (``/ui/``, ``/v3/``): the proxy, the
tunnel and ``/metrics`` take bearer tokens only. A request that carries an ``Authorization``
header is authenticated by it and never by the cookie, so API clients are not affected."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

SESSION_COOKIE = "R_SESS"  # Rancher's name for its UI session cookie
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH_PREFIXES = ("/ui/", "/v3/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_COOKIE_CHARS = 256
_CSRF_CONTEXT = b"rancher-py ui csrf v1"


class CsrfRefused(Exception):
    """A change made with the session cookie without the session's CSRF token."""


def csrf_token_for(bearer: str) -> str:
    """The session's CSRF token: an HMAC of a fixed context under the session's token, so the
    server needs no state for it and a page without the cookie's value cannot compute it."""
    return hmac.new(bearer.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def session_bearer(request: web.Request) -> str | None:
    """The session token of a cookie-authenticated request (None: no usable cookie here).

    Raises :class:`CsrfRefused` for a change (not GET/HEAD/OPTIONS) without the right
    ``X-CSRF-Token``."""
    if not request.path.startswith(COOKIE_PATH_PREFIXES):
        return None
    value = request.cookies.get(SESSION_COOKIE)
    if not value or len(value) > MAX_COOKIE_CHARS:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token_for(value).encode()):
            raise CsrfRefused(f"a change made with the session cookie needs the session's "
                              f"{CSRF_HEADER} header")
    return value


def cookie_authorization(request: web.Request) -> str | None:
    """An ``Authorization`` value from the session cookie, for :func:`authenticate_bearer`."""
    bearer = session_bearer(request)
    return None if bearer is None else f"Bearer {bearer}"


# -- the proxy, for the UI's reads ----------------------------------------------------------------
PROXY_PATH_PREFIX = "/k8s/clusters/"
PROXY_COOKIE_METHODS = frozenset({"GET", "HEAD"})


def proxy_cookie_authorization(request: web.Request) -> str | None:
    """An ``Authorization`` value from the session cookie for the UI's reads through the proxy
    (workloads, pods, a pod's log): GET and HEAD only, never an upgrade (exec, attach,
    port-forward), and only with the session's CSRF token in ``X-CSRF-Token``, which a page of
    another origin can neither compute nor send without a preflight. Nothing in a cluster is
    changed with the cookie; kubectl and other clients go on with bearer tokens."""
    if ("Authorization" in request.headers or request.method not in PROXY_COOKIE_METHODS
            or not request.path.startswith(PROXY_PATH_PREFIX) or "Upgrade" in request.headers):
        return None
    value = request.cookies.get(SESSION_COOKIE)
    if not value or len(value) > MAX_COOKIE_CHARS:
        return None
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_token_for(value).encode()):
        return None
    return f"Bearer {value}"


def without_session_cookie(cookie_header: str) -> str:
    """A ``Cookie`` header less the UI's session cookie (and nothing else), so the session's
    token never goes on to a downstream cluster with a proxied request."""
    kept = [part.strip() for part in cookie_header.split(";")
            if part.strip() and part.strip().split("=", 1)[0] != SESSION_COOKIE]
    return "; ".join(kept)
