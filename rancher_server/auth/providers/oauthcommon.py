"""What the GitHub and OpenID Connect providers share: the identity a login or a refresh yields,
the errors (with the stage that failed), the HTTP session authlib drives (requests, run in a
thread by :mod:`.oauthservice`; every call has a deadline), and the TLS trust of every call: the
provider's configured CA (``certificate``, PEM) when there is one, else the system's trust store.

requests takes a CA only as a file (``verify=<path>``), and only per request: a session's
``verify`` loses to ``REQUESTS_CA_BUNDLE`` when the environment sets it. So the configured PEM is
written once into a private directory (mode 0700, removed at exit) under its SHA-256, and every
call passes ``verify=`` itself."""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from rancher_server.auth.providers.constants import MAX_DIRECTORY_GROUPS_PER_USER

OAUTH_HTTP_TIMEOUT_S = 10.0
MAX_ERROR_BODY_CHARS = 200
STAGE_TLS = "tls"
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_VERIFY_FAILED = re.compile(r"certificate verify failed: ([^(]+)")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628
DEVICE_PENDING = "authorization_pending"
DEVICE_SLOW_DOWN = "slow_down"  # RFC 8628 3.5: still pending, and poll 5 s less often from now
DEVICE_NEEDED = ("device_code", "user_code", "verification_uri")


@dataclass(frozen=True)
class Identity:
    principal_id: str
    display_name: str
    login_name: str
    groups: tuple[str, ...]  # group principal ids, sorted


class OAuthError(Exception):
    """A step of a login, refresh or test failed; ``stage`` names it, ``message`` says why (never
    a secret)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


class ProviderUnreachable(OAuthError):
    """The provider did not answer (DNS, connect, TLS, timeout): users keep what they had."""


class CredentialRefused(OAuthError):
    """The provider refused the user's stored credential (revoked, expired, user disabled)."""


class TokenInvalid(OAuthError):
    """An ID token failed validation (signature, issuer, audience, expiry, nonce)."""


def session(client_id: str, client_secret: str, **kw: Any) -> OAuth2Session:
    """authlib's client; its calls must pass ``verify=tls_verify(...)`` (see the module doc)."""
    return OAuth2Session(client_id, client_secret, **kw)


def check_ca(pem: str) -> str | None:
    """Why ``pem`` cannot be a provider's CA, or None when it loads as one or more certificates
    (no private key: the setting is stored unencrypted and shown by the API)."""
    if PEM_CERTIFICATE not in pem:
        return f"must be PEM ({PEM_CERTIFICATE})"
    if "PRIVATE KEY" in pem:
        return "must hold only the CA's certificate(s), not a private key"
    try:
        ctx = ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as e:
        return f"does not load as a certificate ({e.args[-1] if e.args else type(e).__name__})"
    if not ctx.cert_store_stats().get("x509"):
        return "holds no certificate"
    return None


class _CaFiles:
    """The configured CAs as files (requests wants a path), one per PEM, in a private directory
    made at first use and removed at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._paths: dict[str, str] = {}

    def path(self, pem: str) -> str:
        digest = hashlib.sha256(pem.encode()).hexdigest()
        with self._lock:
            path = self._paths.get(digest)
            if path is not None and os.path.exists(path):
                return path
            if self._dir is None or not self._dir.is_dir():
                self._dir = Path(tempfile.mkdtemp(prefix="rancher-oauth-ca-"))  # mode 0700
                atexit.register(shutil.rmtree, self._dir, ignore_errors=True)
            target = self._dir / f"{digest}.pem"
            tmp = target.with_suffix(".tmp")
            tmp.write_text(pem)
            tmp.replace(target)
            self._paths[digest] = str(target)
            return str(target)


_CA_FILES = _CaFiles()


def tls_verify(certificate: str) -> str | bool:
    """requests' ``verify`` for a provider: True (the system's trust store) without a configured
    CA, else the path of a file holding only that CA."""
    return _CA_FILES.path(certificate) if certificate else True


def unreachable(stage: str, e: requests.RequestException, url: str,
                certificate: str) -> ProviderUnreachable:
    """The error for a call that got no answer: stage ``tls`` with the reason when TLS failed
    (the certificate not trusted: with or without a configured CA), else ``stage``."""
    if not isinstance(e, requests.exceptions.SSLError):
        return ProviderUnreachable(stage, f"{type(e).__name__} reaching {url}")
    found = _VERIFY_FAILED.search(str(e))
    if found is None:
        return ProviderUnreachable(STAGE_TLS, f"TLS handshake with {url} failed: "
                                              f"{short(str(e))}")
    why = found.group(1).strip()
    text = f"TLS: the server certificate of {url} is not trusted ({why})"
    if "issuer" in why or "self-signed" in why or "self signed" in why:  # an unknown signer
        text += ("; it was not signed by the configured certificate (CA)" if certificate else
                 "; no certificate (CA) is configured and the system's trust store does not "
                 "know its issuer: set 'certificate' to the CA (PEM) that signed it")
    return ProviderUnreachable(STAGE_TLS, text)


def capped_groups(groups: set[str]) -> tuple[str, ...]:
    return tuple(sorted(groups)[:MAX_DIRECTORY_GROUPS_PER_USER])


def short(text: str) -> str:
    return text[:MAX_ERROR_BODY_CHARS]


class DeviceSlowDown(Exception):
    """The provider said slow_down: the login is pending and the polling interval grows by 5 s."""


def device_answer(doc: object, who: str) -> dict[str, Any]:
    """A device authorization answer (RFC 8628 3.2) with what the CLI needs, or OAuthError."""
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in DEVICE_NEEDED):
        error = doc.get("error") if isinstance(doc, dict) else None
        raise OAuthError("device", f"{who} refused the device login: {error or 'no code'}")
    return doc


def poll_device_token(client: OAuth2Session, url: str, device_code: str, certificate: str,
                      who: str) -> dict[str, Any] | None:
    """One poll of a device login at the token endpoint (RFC 8628 3.4): the token once the user
    entered the code; None while pending; DeviceSlowDown when asked to poll less often."""
    try:
        token = client.fetch_token(url, grant_type=DEVICE_GRANT, device_code=device_code,
                                   timeout=OAUTH_HTTP_TIMEOUT_S, verify=tls_verify(certificate))
    except requests.RequestException as e:
        raise unreachable("token", e, url, certificate) from e
    except AuthlibBaseError as e:
        if e.error == DEVICE_SLOW_DOWN:
            raise DeviceSlowDown() from e
        if e.error == DEVICE_PENDING:
            return None
        raise OAuthError("token", f"{who} refused the device login: {e.error}") from e
    except ValueError as e:
        raise OAuthError("token", f"{who}'s token answer is not JSON") from e
    return dict(token)
