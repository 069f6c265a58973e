"""Service-account tokens: signed JWTs with kube-apiserver's claims, checked against the store.

``issue`` is what TokenRequest (``serviceaccounts/<name>/token``) returns; ``validate`` is
the service-account token authenticator (also behind TokenReview). A token stays valid only
while its ServiceAccount (and the Pod or Secret it is bound to, if any) exists with the
same uid.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from kubesim.authtypes import UserInfo
from kubesim.store import Store

from . import jwt
from .rules import sa_groups, sa_username, split_sa_username

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
LEGACY_PREFIX = "kubernetes.io/serviceaccount/"
RSA_KEY_BITS = 2048
DEFAULT_EXPIRATION_S = 3600
MIN_EXPIRATION_S = 600
MAX_EXPIRATION_S = 1 << 32
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"
BOUND_KINDS = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}
EXTRA_PREFIX = "authentication.kubernetes.io/"


class TokenError(ValueError):
    """The token is not a valid service-account token (message as kube-apiserver words it)."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: int  # unix seconds
    claims: dict[str, Any]


class ServiceAccountTokens:
    """Issues and validates RS256 service-account JWTs with one key made at start."""

    def __init__(
        self,
        store: Store,
        issuer: str = DEFAULT_ISSUER,
        api_audiences: list[str] | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.store = store
        self.issuer = issuer
        self.api_audiences = list(api_audiences or [issuer])
        self._key = key
        self._kid = ""

    @property
    def key(self) -> rsa.RSAPrivateKey:
        """The signing key, made on first use (RSA generation would slow the server's start)."""
        if self._key is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
        return self._key

    @property
    def kid(self) -> str:
        if not self._kid:
            self._kid = jwt.key_id(self.key.public_key())
        return self._kid

    def issue(
        self,
        namespace: str,
        service_account: dict[str, Any],
        *,
        audiences: list[str] | None = None,
        expiration_s: int = DEFAULT_EXPIRATION_S,
        bound: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> IssuedToken:
        """A token for ``service_account``; ``bound`` is the Pod/Secret/Node it is tied to."""
        issued_at = int(time.time() if now is None else now)
        expires_at = issued_at + expiration_s
        sa_md = service_account["metadata"]
        private: dict[str, Any] = {"namespace": namespace}
        if bound is not None:
            kind = str(bound.get("kind", ""))
            key = kind.lower()
            private[key] = {"name": bound["metadata"]["name"], "uid": bound["metadata"]["uid"]}
            node_name = (bound.get("spec") or {}).get("nodeName") if kind == "Pod" else None
            node = self.store.get_item("", "nodes", "", node_name) if node_name else None
            if node is not None:  # pod-bound tokens carry the pod's node (1.30+)
                private["node"] = {"name": node_name, "uid": node["metadata"]["uid"]}
        private["serviceaccount"] = {"name": sa_md["name"], "uid": sa_md["uid"]}
        claims: dict[str, Any] = {
            "aud": list(audiences or self.api_audiences),
            "exp": expires_at,
            "iat": issued_at,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": issued_at,
            "sub": sa_username(namespace, sa_md["name"]),
        }
        return IssuedToken(jwt.sign(claims, self.key, self.kid), expires_at, claims)

    def jwks(self) -> dict[str, Any]:
        """``/openid/v1/jwks``: the public signing key as a JWK set."""
        numbers = self.key.public_key().public_numbers()

        def b64_int(n: int) -> str:
            return jwt.b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        key = {
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": jwt.ALGORITHM,
            "n": b64_int(numbers.n),
            "e": b64_int(numbers.e),
        }
        return {"keys": [key]}

    def openid_configuration(self) -> dict[str, Any]:
        """``/.well-known/openid-configuration`` as kube-apiserver serves it."""
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [jwt.ALGORITHM],
        }

    def issue_legacy(self, namespace: str, service_account: dict[str, Any], secret: str) -> str:
        """A legacy (secret-based, non-expiring) token, as the token controller writes it."""
        sa_md = service_account["metadata"]
        claims = {
            "iss": LEGACY_ISSUER,
            f"{LEGACY_PREFIX}namespace": namespace,
            f"{LEGACY_PREFIX}secret.name": secret,
            f"{LEGACY_PREFIX}service-account.name": sa_md["name"],
            f"{LEGACY_PREFIX}service-account.uid": sa_md["uid"],
            "sub": sa_username(namespace, sa_md["name"]),
        }
        return jwt.sign(claims, self.key, self.kid)

    def validate(
        self, token: str, audiences: list[str] | None = None, now: float | None = None
    ) -> UserInfo:
        """The SA user behind ``token``, or TokenError."""
        try:
            claims = jwt.verify(token, self.key.public_key())
        except jwt.JWTError as exc:
            raise TokenError("invalid bearer token") from exc
        if claims.get("iss") == LEGACY_ISSUER:
            return self._legacy_user(token, claims)
        if claims.get("iss") != self.issuer:
            raise TokenError("invalid bearer token")
        wanted = list(audiences or self.api_audiences)
        aud = claims.get("aud")
        token_aud = [aud] if isinstance(aud, str) else [str(a) for a in aud or []]
        if not set(wanted) & set(token_aud):
            raise TokenError(
                "token audiences " + _go_list(token_aud) + " is invalid for the target "
                "audiences " + _go_list(wanted)
            )
        current = time.time() if now is None else now
        if int(claims.get("exp", 0)) < current:
            raise TokenError("service account token has expired")
        if int(claims.get("nbf", 0)) > current:
            raise TokenError("service account token is not valid yet")
        return self._user(claims)

    def _legacy_user(self, token: str, claims: dict[str, Any]) -> UserInfo:
        namespace = str(claims.get(f"{LEGACY_PREFIX}namespace", ""))
        name = str(claims.get(f"{LEGACY_PREFIX}service-account.name", ""))
        secret_name = str(claims.get(f"{LEGACY_PREFIX}secret.name", ""))
        if claims.get("sub") != sa_username(namespace, name):
            raise TokenError("invalid bearer token")
        secret = self.store.get_item("", "secrets", namespace, secret_name)
        if secret is None or secret["metadata"].get("deletionTimestamp"):
            raise TokenError(f'secrets "{secret_name}" not found')
        stored = str((secret.get("data") or {}).get("token", ""))
        try:
            matches = base64.b64decode(stored, validate=True) == token.encode()
        except binascii.Error:
            matches = False
        if not matches:
            raise TokenError("token does not match the token in the secret")
        sa = self.store.get_item("", "serviceaccounts", namespace, name)
        if sa is None or sa["metadata"].get("deletionTimestamp"):
            raise TokenError(f'serviceaccounts "{name}" not found')
        if sa["metadata"].get("uid") != claims.get(f"{LEGACY_PREFIX}service-account.uid"):
            raise TokenError(
                f"service account UID ({sa['metadata'].get('uid')}) does not match claim "
                f"({claims.get(f'{LEGACY_PREFIX}service-account.uid')})"
            )
        return UserInfo(
            name=sa_username(namespace, name),
            uid=str(sa["metadata"].get("uid", "")),
            groups=sa_groups(namespace),
        )

    def _user(self, claims: dict[str, Any]) -> UserInfo:
        private = claims.get("kubernetes.io")
        sub = str(claims.get("sub", ""))
        split = split_sa_username(sub)
        if not isinstance(private, dict) or split is None:
            raise TokenError("invalid bearer token")
        namespace, name = split
        sa_ref = private.get("serviceaccount") or {}
        sa = self.store.get_item("", "serviceaccounts", namespace, name)
        if sa is None or sa["metadata"].get("deletionTimestamp"):
            raise TokenError(f'serviceaccounts "{name}" not found')
        if sa["metadata"].get("uid") != sa_ref.get("uid"):
            raise TokenError(
                f"service account UID ({sa['metadata'].get('uid')}) does not match claim "
                f"({sa_ref.get('uid')})"
            )
        extra: dict[str, list[str]] = {}
        for kind, resource in BOUND_KINDS.items():
            ref = private.get(kind.lower())
            if not isinstance(ref, dict):
                continue
            if kind in ("Pod", "Node"):
                extra[f"{EXTRA_PREFIX}{kind.lower()}-name"] = [str(ref.get("name", ""))]
                extra[f"{EXTRA_PREFIX}{kind.lower()}-uid"] = [str(ref.get("uid", ""))]
            if kind == "Node" and "pod" in private:
                continue  # only the object a token is bound to is checked, not the pod's node
            scope = "" if kind == "Node" else namespace
            obj = self.store.get_item("", resource, scope, str(ref.get("name", "")))
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                raise TokenError(f'{resource} "{ref.get("name")}" not found')
            if obj["metadata"].get("uid") != ref.get("uid"):
                raise TokenError(
                    f"{kind.lower()} UID ({obj['metadata'].get('uid')}) does not match claim "
                    f"({ref.get('uid')})"
                )
        if claims.get("jti"):
            extra[CREDENTIAL_ID_KEY] = [f"JTI={claims['jti']}"]
        return UserInfo(
            name=sub,
            uid=str(sa["metadata"].get("uid", "")),
            groups=sa_groups(namespace),
            extra=extra,
        )


def _go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"
