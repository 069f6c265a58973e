"""Request and response header rewriting for the authentication proxy (pure functions).

Towards the downstream API server we drop every hop-by-hop header, the client's ``Authorization``
and every ``Impersonate-*`` header the client sent (a client must never choose who it is), then
set the impersonation headers for the authenticated principal and our own credential."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from multidict import CIMultiDict, CIMultiDictProxy

from rancher_server.auth import Principal
from rancher_server.auth.impersonation import (
    impersonation_groups,
    principal_extras,
)
from rancher_server.auth.session_cookie import CSRF_HEADER, without_session_cookie

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Connection",
        "Host",
        "Content-Length",
    )
)


def _connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    tokens: set[str] = set()
    for value in headers.getall("Connection", []):
        tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def downstream_request_headers(
    incoming: CIMultiDictProxy[str] | CIMultiDict[str],
    principal: Principal,
    bearer_token: str,
    *,
    upgrade: bool = False,
) -> CIMultiDict[str]:
    """Headers to send downstream for a request ``principal`` made with ``incoming`` headers."""
    drop = HOP_BY_HOP | _connection_tokens(incoming)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lname = name.lower()
        if lname in drop or lname == "authorization" or lname.startswith("impersonate-"):
            continue
        if lname in _UI_SESSION_HEADERS:
            kept = _ui_session_free(lname, value)
            if kept:
                out.add(name, kept)
            continue
        out.add(name, value)
    if upgrade:
        out["Connection"] = "Upgrade"
        out["Upgrade"] = incoming.get("Upgrade", "")
    out["Authorization"] = f"Bearer {bearer_token}"
    out["Impersonate-User"] = principal.user_id
    for group in impersonation_groups(principal):
        out.add("Impersonate-Group", group)
    for key, value in principal_extras(principal).items():
        out[f"Impersonate-Extra-{quote(key, safe='')}"] = value
    return out


def upstream_response_headers(
    headers: Iterable[tuple[str, str]], *, keep_upgrade: bool = False
) -> CIMultiDict[str]:
    """Response headers to pass back to the client (hop-by-hop ones removed)."""
    src: CIMultiDict[str] = CIMultiDict(headers)
    drop = HOP_BY_HOP | _connection_tokens(src)
    if keep_upgrade:
        drop = drop - {"connection", "upgrade"}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in src.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out


# ------------------------------------------------------------------ the lean forwarder's variants
# The same rules as above, on raw header bytes, producing the request head in one piece.

_DROP_REQUEST = frozenset(h.encode() for h in HOP_BY_HOP) | {b"authorization"}
_IDENTITY_CACHE_MAX = 1024
_identity_cache: dict[tuple[str, Principal], bytes] = {}


# The web UI's session never goes downstream: its cookie is taken out of ``Cookie`` (other
# cookies stay, for services behind the API server's service proxy) and its CSRF header dropped.
_UI_SESSION_HEADERS = frozenset({"cookie", CSRF_HEADER.lower()})
_UI_SESSION_HEADERS_RAW = frozenset(h.encode() for h in _UI_SESSION_HEADERS)


def _ui_session_free(lname: str, value: str) -> str:
    return without_session_cookie(value) if lname == "cookie" else ""


class HeaderValueError(ValueError):
    """A value that cannot go into an HTTP header (a line break would split it)."""


def _checked(value: str) -> str:
    if "\r" in value or "\n" in value or "\0" in value:
        raise HeaderValueError("header value with a line break")
    return value


def identity_lines(principal: Principal, bearer_token: str) -> bytes:
    """``Authorization`` and ``Impersonate-*`` header lines for ``principal`` (cached: the same
    for every request a user makes with one downstream token)."""
    key = (bearer_token, principal)
    block = _identity_cache.get(key)
    if block is not None:
        return block
    lines = [
        f"Authorization: Bearer {_checked(bearer_token)}",
        f"Impersonate-User: {_checked(principal.user_id)}",
    ]
    lines += [f"Impersonate-Group: {_checked(g)}" for g in impersonation_groups(principal)]
    lines += [
        f"Impersonate-Extra-{quote(k, safe='')}: {_checked(v)}"
        for k, v in principal_extras(principal).items()
    ]
    block = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    if len(_identity_cache) >= _IDENTITY_CACHE_MAX:
        _identity_cache.clear()
    _identity_cache[key] = block
    return block


def request_head(
    method: str,
    path_qs: str,
    host_header: str,
    raw_headers: Iterable[tuple[bytes, bytes]],
    identity: bytes,
    framing: bytes = b"",
) -> bytes:
    """The whole request head to send downstream: the client's end-to-end headers less
    ``Authorization`` and ``Impersonate-*``, then ``identity`` and ``framing`` (body length)
    lines."""
    parts = [f"{method} {path_qs} HTTP/1.1\r\nHost: {host_header}\r\n".encode()]
    drop = _DROP_REQUEST
    conn_tokens: set[bytes] | None = None
    for name, value in raw_headers:
        lname = name.lower()
        if lname in drop or lname.startswith(b"impersonate-"):
            if lname == b"connection":
                conn_tokens = conn_tokens or set()
                conn_tokens.update(t.strip() for t in value.lower().split(b",") if t.strip())
            continue
        if lname in _UI_SESSION_HEADERS_RAW:
            kept = _ui_session_free(lname.decode(), value.decode("latin-1")).encode("latin-1")
            if kept:
                parts.append(name + b": " + kept + b"\r\n")
            continue
        parts.append(name + b": " + value + b"\r\n")
    if conn_tokens:
        parts = [parts[0]] + [
            p for p in parts[1:] if p.split(b":", 1)[0].lower() not in conn_tokens
        ]
    parts.append(identity)
    parts.append(framing)
    parts.append(b"\r\n")
    return b"".join(parts)
