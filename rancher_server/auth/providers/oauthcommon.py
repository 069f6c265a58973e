"""What the GitHub and OpenID Connect providers share: the identity a login or a refresh yields,
the errors (with the stage that failed), and the HTTP session authlib drives (requests, run in a
thread by :mod:`.oauthservice`; every call has a deadline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.integrations.requests_client import OAuth2Session

from rancher_server.auth.providers.constants import MAX_DIRECTORY_GROUPS_PER_USER

OAUTH_HTTP_TIMEOUT_S = 10.0
MAX_ERROR_BODY_CHARS = 200


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
    return OAuth2Session(client_id, client_secret, **kw)


def capped_groups(groups: set[str]) -> tuple[str, ...]:
    return tuple(sorted(groups)[:MAX_DIRECTORY_GROUPS_PER_USER])


def short(text: str) -> str:
    return text[:MAX_ERROR_BODY_CHARS]
