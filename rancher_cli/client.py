"""HTTPS calls to the server's REST API, and the mapping of every failure to a CliError with its
exit code: unreachable (4), untrusted CA (5), credentials refused (3), any other answer (1)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from rancher_cli.constants import (
    CACERTS_PATH,
    EXIT_AUTH,
    EXIT_SERVER_ERROR,
    EXIT_UNREACHABLE,
    EXIT_UNTRUSTED,
    EXIT_USAGE,
    MAX_ERROR_MESSAGE_CHARS,
    REQUEST_TIMEOUT_S,
)
from rancher_cli.errors import CliError

HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404
HTTP_TOO_MANY = 429
RELOGIN = "run `rancher login {server}` again"


def normalize_server(url: str) -> str:
    """``host:port`` or ``https://host:port/`` -> ``https://host:port``; http:// is refused."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "https":
        raise CliError(
            f"{url}: the server speaks HTTPS only; use https://{parsed.netloc or parsed.path}",
            EXIT_USAGE,
        )
    if not parsed.hostname:
        raise CliError(f"{url}: not a server URL (expected https://host[:port])", EXIT_USAGE)
    return f"https://{parsed.netloc}"


def ssl_context(ca_pem: str = "", insecure: bool = False) -> ssl.SSLContext:
    if insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_pem:
        return ssl.create_default_context(cadata=ca_pem)
    return ssl.create_default_context()


def checksum(pem: str) -> str:
    """SHA-256 of the CA as the server publishes it (what agents' CATTLE_CA_CHECKSUM names)."""
    return hashlib.sha256(pem.encode()).hexdigest()


class Api:
    def __init__(self, server: str, token: str = "", ca_pem: str = "",
                 insecure: bool = False) -> None:
        self.server = server
        self.token = token
        self.ctx = ssl_context(ca_pem, insecure)

    def call(self, method: str, path: str, body: Any = None,
             query: dict[str, str] | None = None) -> Any:
        url = self.server + path
        if query:
            url += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        # the URL is https:// (normalize_server refuses any other scheme)
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(  # noqa: S310
                req, context=self.ctx, timeout=REQUEST_TIMEOUT_S
            ) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            retry_after = e.headers.get("Retry-After", "")
            e.close()
            raise self._http_error(e.code, raw, retry_after) from None
        except urllib.error.URLError as e:
            raise self._transport_error(e.reason) from e
        except (TimeoutError, ConnectionError, ssl.SSLError) as e:
            raise self._transport_error(e) from e
        return json.loads(raw) if raw else None

    def data(self, path: str, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The ``data`` of a collection."""
        out = self.call("GET", path, query=query)
        items = out.get("data", []) if isinstance(out, dict) else []
        return [i for i in items if isinstance(i, dict)]

    def _http_error(self, status: int, raw: bytes, retry_after: str) -> CliError:
        message = f"HTTP {status}"
        try:
            body = json.loads(raw)
            if isinstance(body, dict) and body.get("message"):
                message = str(body["message"])
        except ValueError:
            pass
        message = message[:MAX_ERROR_MESSAGE_CHARS]
        if status == HTTP_UNAUTHORIZED:
            return CliError(
                f"the server refused the saved credentials ({message}): the token expired or "
                f"was revoked; {RELOGIN.format(server=self.server)}",
                EXIT_AUTH, status, message,
            )
        if status == HTTP_FORBIDDEN:
            return CliError(f"permission denied: {message}", EXIT_SERVER_ERROR, status, message)
        if status == HTTP_TOO_MANY:
            wait = f" in {retry_after} s" if retry_after else " later"
            return CliError(f"{message}; try again{wait}", EXIT_SERVER_ERROR, status, message)
        return CliError(f"{message} (HTTP {status})", EXIT_SERVER_ERROR, status, message)

    def _transport_error(self, reason: object) -> CliError:
        if isinstance(reason, ssl.SSLCertVerificationError):
            return CliError(
                f"the server {self.server} is not the one you logged in to, or its CA changed: "
                f"its certificate does not verify ({reason.verify_message}); if its CA changed, "
                f"run `rancher login {self.server} --ca-checksum <its new checksum>`",
                EXIT_UNTRUSTED,
            )
        if isinstance(reason, socket.gaierror):
            why = "unknown host"
        elif isinstance(reason, ConnectionRefusedError):
            why = "connection refused"
        elif isinstance(reason, TimeoutError | socket.timeout):
            why = "timed out"
        else:
            why = str(reason) or type(reason).__name__
        return CliError(
            f"cannot reach the server at {self.server} ({why}): check that it is running and "
            "that the URL is right",
            EXIT_UNREACHABLE,
        )


def fetch_ca(server: str) -> str:
    """The CA the server publishes, fetched without verification (the checksum is the check)."""
    out = Api(server, insecure=True).call("GET", CACERTS_PATH)
    value = out.get("value") if isinstance(out, dict) else None
    if not isinstance(value, str) or "BEGIN CERTIFICATE" not in value:
        raise CliError(f"{server} did not publish a CA at {CACERTS_PATH}: is it a rancher-py "
                       "server?", EXIT_UNTRUSTED)
    return value


def pinned_ca(server: str, expected_checksum: str) -> str:
    pem = fetch_ca(server)
    got = checksum(pem)
    if not hmac.compare_digest(got, expected_checksum.strip().lower()):
        raise CliError(
            f"the server's CA checksum is {got}, not {expected_checksum}: refusing to trust it "
            "(check the checksum the server printed at start, `ca_checksum`)",
            EXIT_UNTRUSTED,
        )
    return pem
