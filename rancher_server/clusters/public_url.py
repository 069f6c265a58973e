"""The server's public URL: what agents, kubeconfigs and import commands use. In order: the
``server-url`` setting (REST: ``PUT /v3/settings/server-url``), the ``--server-url`` flag or
``RANCHER_SERVER_URL``, else ``https://<first hostname>:<port>``."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from rancher_server.store import Store

SETTING = "server-url"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
MAX_URL_CHARS = 2048


class BadURL(ValueError):
    """Not a usable public URL; the message says why."""


def validate(url: str) -> str:
    """``url`` normalised (no trailing slash), or :class:`BadURL`."""
    url = url.strip().rstrip("/")
    if len(url) > MAX_URL_CHARS:
        raise BadURL(f"the URL is longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise BadURL("the server's URL must start with https:// (agents refuse plain HTTP)")
    if not parts.hostname:
        raise BadURL("the server's URL has no host name")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise BadURL("the server's URL is only https://HOST[:PORT], without path or query")
    try:
        _ = parts.port
    except ValueError as e:
        raise BadURL(f"the server's URL has a bad port: {e}") from e
    return url


def public_url(store: Store, configured: str) -> str:
    """The URL in force (``configured``: the flag's, or the default the server computed)."""
    return store.get_setting(SETTING) or configured


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_warning(url: str) -> str | None:
    if not is_loopback(url):
        return None
    return (f"the server's URL {url} is a loopback address: agents in other machines cannot "
            "reach it; set the address they reach with PUT /v3/settings/server-url "
            "(or rancher-server --server-url)")
