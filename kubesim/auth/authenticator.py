"""Request authentication as kube-apiserver chains it: client certificate, then bearer token
(static token file, service-account JWT, token webhook); no credentials at all is anonymous.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import time
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubesim.authtypes import UserInfo
from kubesim.options import Options
from kubesim.store import Store
from rancher_tunnel.logs import get_logger

from . import jwt
from .serviceaccounts import ServiceAccountTokens, TokenError
from .tokencontroller import LegacyTokenController
from .tokenfile import load_token_file, lookup
from .webhook import WebhookAuthenticator, load_config

AUTHENTICATED_GROUP = "system:authenticated"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"
WEBSOCKET_TOKEN_PREFIX = "base64url.bearer.authorization.k8s.io."
TOKEN_SUCCESS_CACHE_TTL_S = 10.0  # kube-apiserver's default success TTL for token authentication
TOKEN_CACHE_MAX_ENTRIES = 4096

log = get_logger(component="kubesim.auth")


def anonymous_user() -> UserInfo:
    return UserInfo(name=ANONYMOUS_USER, groups=[UNAUTHENTICATED_GROUP])


def with_authenticated_group(user: UserInfo) -> UserInfo:
    """kube-apiserver's group adder: append system:authenticated unless present."""
    if AUTHENTICATED_GROUP in user.groups:
        return user
    return UserInfo(user.name, user.uid, [*user.groups, AUTHENTICATED_GROUP], dict(user.extra))


def user_from_certificate(der: bytes) -> UserInfo | None:
    """CN is the user, each O a group; extra credential-id ``X509SHA256=<hex>``."""
    cert = x509.load_der_x509_certificate(der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns:
        return None
    orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    digest = hashlib.sha256(der).hexdigest()
    return UserInfo(
        name=str(cns[0].value), groups=orgs, extra={CREDENTIAL_ID_KEY: [f"X509SHA256={digest}"]}
    )


def peer_certificate(request: web.Request) -> bytes | None:
    transport = request.transport
    if transport is None:
        return None
    ssl_object: Any = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return der or None


def bearer_token(request: web.Request) -> str | None:
    """The bearer token of the request (header, or websocket subprotocol), if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for proto in request.headers.getall("Sec-WebSocket-Protocol", []):
        for raw in proto.split(","):
            item = raw.strip()
            if item.startswith(WEBSOCKET_TOKEN_PREFIX):
                try:
                    return jwt.b64url_decode(item[len(WEBSOCKET_TOKEN_PREFIX) :]).decode()
                except (jwt.JWTError, UnicodeDecodeError):
                    return ""
    return None


class Authenticator:
    """Authenticates requests. ``authenticate`` returns None when credentials are invalid
    (answer 401) and the anonymous user when there are none (authorization decides)."""

    def __init__(
        self,
        options: Options,
        store: Store,
        sa_tokens: ServiceAccountTokens | None = None,
        anonymous: bool = True,
    ) -> None:
        self.store = store
        self.anonymous = anonymous
        self.static = load_token_file(options.token_auth_file) if options.token_auth_file else {}
        self.sa_tokens = sa_tokens or ServiceAccountTokens(store)
        self.token_controller = LegacyTokenController(store, self.sa_tokens)
        # kube-apiserver wraps its token authenticators in a cache of successful answers
        # (--authentication-token success TTL, 10 s by default); requests see the same here.
        # The TokenReview API below is answered uncached.
        self._success_cache: dict[bytes, tuple[UserInfo, float]] = {}
        self.webhook: WebhookAuthenticator | None = None
        if options.authentication_token_webhook_config_file:
            config = load_config(options.authentication_token_webhook_config_file)
            self.webhook = WebhookAuthenticator(config, self.sa_tokens.api_audiences)

    async def close(self) -> None:
        self.token_controller.close()
        if self.webhook is not None:
            await self.webhook.close()

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        der = peer_certificate(request)
        if der is not None:
            user = user_from_certificate(der)
            if user is not None:
                return with_authenticated_group(user)
        token = bearer_token(request)
        if token is None:
            return anonymous_user() if self.anonymous else None
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        hit = self._success_cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        user = await self.authenticate_token(token)
        if user is not None:
            if len(self._success_cache) >= TOKEN_CACHE_MAX_ENTRIES:
                self._success_cache.clear()
            self._success_cache[key] = (user, now + TOKEN_SUCCESS_CACHE_TTL_S)
        return user

    async def authenticate_token(
        self, token: str, audiences: list[str] | None = None
    ) -> UserInfo | None:
        """The user a bearer token stands for (with system:authenticated), or None."""
        user, _ = await self.review_token(token, audiences)
        return user

    async def review_token(
        self, token: str, audiences: list[str] | None = None
    ) -> tuple[UserInfo | None, str]:
        """(user or None, error text) for TokenReview."""
        if not token:
            return None, ""
        errors: list[str] = []
        static = lookup(self.static, token)
        if static is not None:
            return with_authenticated_group(static), ""
        if jwt.looks_like_jwt(token):
            try:
                return with_authenticated_group(self.sa_tokens.validate(token, audiences)), ""
            except TokenError as exc:
                errors.append(str(exc))
        if self.webhook is not None:
            user = await self.webhook.authenticate(token)
            if user is not None:
                return with_authenticated_group(user), ""
        if not errors:
            return None, ""
        return None, errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


def encode_websocket_token(token: str) -> str:
    """The subprotocol a websocket client uses to carry a bearer token."""
    return WEBSOCKET_TOKEN_PREFIX + base64.urlsafe_b64encode(token.encode()).rstrip(b"=").decode()
