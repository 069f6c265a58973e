"""The UI's static files, read once from the package (``rancher_server/ui/static``), served with
an ETag and the UI's security headers: a strict Content-Security-Policy (scripts, styles and
connections from this origin only; no inline script or style), no framing, no sniffing, no
referrer."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from importlib import resources

from aiohttp import web

STATIC_PACKAGE = "rancher_server.ui"
STATIC_DIR = "static"
INDEX_FILE = "index.html"
UI_HOME = "/ui/"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
CACHE_CONTROL = "no-cache"  # revalidate with the ETag: a new server version shows at once
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
         ".svg": "image/svg+xml", ".json": "application/json"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@cache
def load_assets() -> dict[str, Asset]:
    """Every file under ``static/`` by its relative path (read once: a few tens of KiB)."""
    out: dict[str, Asset] = {}

    def walk(node: resources.abc.Traversable, prefix: str) -> None:
        for child in node.iterdir():
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
                continue
            body = child.read_bytes()
            suffix = "." + child.name.rsplit(".", 1)[-1]
            ctype = TYPES.get(suffix) or mimetypes.guess_type(child.name)[0] or "text/plain"
            out[rel] = Asset(body, ctype, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')

    walk(resources.files(STATIC_PACKAGE) / STATIC_DIR, "")
    return out


def secure_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**SECURITY_HEADERS, **(extra or {})}


def _serve(request: web.Request, rel: str) -> web.Response:
    found = load_assets().get(rel)
    if found is None:
        raise web.HTTPNotFound(text="no such file", headers=secure_headers())
    headers = secure_headers({"ETag": found.etag, "Cache-Control": CACHE_CONTROL})
    if request.headers.get("If-None-Match") == found.etag:
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if found.content_type.startswith("text/") else None
    return web.Response(body=found.body, content_type=found.content_type, charset=charset,
                        headers=headers)


async def index(request: web.Request) -> web.Response:
    return _serve(request, INDEX_FILE)


async def asset(request: web.Request) -> web.Response:
    rel = request.match_info["path"]
    if ".." in rel.split("/"):
        raise web.HTTPNotFound(text="no such file", headers=secure_headers())
    return _serve(request, rel)


async def root_redirect(_: web.Request) -> web.Response:
    raise web.HTTPFound(UI_HOME, headers=secure_headers())
