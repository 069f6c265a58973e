"""OpenID Connect (Keycloak, Dex, Okta style) through authlib: issuer discovery
(``<issuer>/.well-known/openid-configuration``), the authorization code flow with PKCE (S256),
state and nonce, the device flow for the CLI (RFC 8628, where the issuer offers it), and ID
token validation (signature against the issuer's JWKS, ``iss``, ``aud``, ``exp``, ``nonce``)
with authlib's claims classes over joserfc. The user is ``oidc_user://<sub>``, their groups
``oidc_group://<name>`` from the configured claim. Every call (discovery, JWKS, token) verifies
the issuer's certificate against the configured ``certificate`` (an issuer with a private CA),
or the system's trust store without one. Synchronous (requests under authlib): the service runs
it in a thread."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.oidc.core import CodeIDToken, IDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from rancher_server.auth.providers.constants import OIDC
from rancher_server.auth.providers.oauthcommon import (
    OAUTH_HTTP_TIMEOUT_S,
    CredentialRefused,
    Identity,
    OAuthError,
    ProviderUnreachable,
    TokenInvalid,
    capped_groups,
    device_answer,
    poll_device_token,
    session,
    tls_verify,
    unreachable,
)
from rancher_server.auth.providers.oauthconfig import OAuthConfig
from rancher_server.auth.providers.principals import group_principal, user_principal

DISCOVERY_PATH = "/.well-known/openid-configuration"
METADATA_TTL_S = 300.0  # discovery document and JWKS are re-read after this
ID_TOKEN_LEEWAY_S = 30  # clock skew allowed on exp / iat
PKCE_METHOD = "S256"
INVALID_GRANT = "invalid_grant"
INVALID_CLIENT = "invalid_client"
PROBE_CODE = "rancher-py-connection-test"
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
DEVICE_ENDPOINT = "device_authorization_endpoint"  # RFC 8628 4: the issuer's device login


@dataclass
class Metadata:
    """The issuer's discovery document and keys, cached for METADATA_TTL_S."""

    issuer: str
    doc: dict[str, Any] = field(default_factory=dict)
    jwks: dict[str, Any] = field(default_factory=dict)
    fetched_at: float = 0.0

    @property
    def fresh(self) -> bool:
        return bool(self.doc) and time.monotonic() - self.fetched_at < METADATA_TTL_S


def _get_json(url: str, stage: str, certificate: str) -> dict[str, Any]:
    try:
        resp = requests.get(url, timeout=OAUTH_HTTP_TIMEOUT_S,
                            headers={"Accept": "application/json"},
                            verify=tls_verify(certificate))
    except requests.RequestException as e:
        raise unreachable(stage, e, url, certificate) from e
    if resp.status_code != requests.codes.ok:
        raise ProviderUnreachable(stage, f"{url}: HTTP {resp.status_code}")
    try:
        doc = resp.json()
    except ValueError as e:
        raise OAuthError(stage, f"{url}: not JSON") from e
    if not isinstance(doc, dict):
        raise OAuthError(stage, f"{url}: not a JSON object")
    return doc


def discover(cfg: OAuthConfig) -> Metadata:
    """Read the discovery document (its ``issuer`` must be the configured one, as OpenID
    Connect Discovery requires) and the JWKS it names."""
    issuer = cfg.issuer.rstrip("/")
    doc = _get_json(issuer + DISCOVERY_PATH, "discovery", cfg.certificate)
    missing = [k for k in REQUIRED_METADATA if not isinstance(doc.get(k), str)]
    if missing:
        raise OAuthError("discovery", f"the discovery document lacks {', '.join(missing)}")
    if doc["issuer"].rstrip("/") != issuer:
        raise OAuthError("discovery", f"the discovery document's issuer {doc['issuer']!r} is "
                                      f"not the configured {cfg.issuer!r}")
    jwks = _get_json(doc["jwks_uri"], "jwks", cfg.certificate)
    try:
        if not KeySet.import_key_set(jwks).keys:  # type: ignore[arg-type]
            raise OAuthError("jwks", "the issuer's JWKS has no keys")
    except (JoseError, ValueError, TypeError, KeyError) as e:
        raise OAuthError("jwks", f"the issuer's JWKS is unreadable: {type(e).__name__}") from e
    return Metadata(issuer=doc["issuer"], doc=doc, jwks=jwks, fetched_at=time.monotonic())


def authorize_url(cfg: OAuthConfig, meta: Metadata, redirect_uri: str, state: str, nonce: str,
                  code_verifier: str) -> str:
    client = session(cfg.client_id, cfg.client_secret, scope=cfg.scopes,
                     redirect_uri=redirect_uri, code_challenge_method=PKCE_METHOD)
    url, _ = client.create_authorization_url(meta.doc["authorization_endpoint"], state=state,
                                             nonce=nonce, code_verifier=code_verifier)
    return str(url)


def _token_call(cfg: OAuthConfig, meta: Metadata, **kw: Any) -> dict[str, Any]:
    client = session(cfg.client_id, cfg.client_secret, redirect_uri=kw.pop("redirect_uri", None))
    url, verify = meta.doc["token_endpoint"], tls_verify(cfg.certificate)
    try:
        if "refresh_token" in kw:
            token = client.refresh_token(url, refresh_token=kw["refresh_token"],
                                         timeout=OAUTH_HTTP_TIMEOUT_S, verify=verify)
        else:
            token = client.fetch_token(url, timeout=OAUTH_HTTP_TIMEOUT_S, verify=verify, **kw)
    except requests.RequestException as e:
        raise unreachable("token", e, url, cfg.certificate) from e
    except AuthlibBaseError as e:
        if e.error == INVALID_GRANT and "refresh_token" in kw:
            raise CredentialRefused("token", "the issuer refused the refresh token") from e
        raise OAuthError("token", f"the issuer refused: {e.error}") from e
    except ValueError as e:
        raise OAuthError("token", "the token answer is not JSON") from e
    return dict(token)


def exchange(cfg: OAuthConfig, meta: Metadata, redirect_uri: str, code: str,
             code_verifier: str) -> dict[str, Any]:
    """The tokens for the callback's code (the PKCE verifier goes with it)."""
    return _token_call(cfg, meta, redirect_uri=redirect_uri, code=code,
                       code_verifier=code_verifier, grant_type="authorization_code")


def refresh(cfg: OAuthConfig, meta: Metadata, refresh_token: str) -> dict[str, Any]:
    return _token_call(cfg, meta, refresh_token=refresh_token)


def device_code(cfg: OAuthConfig, meta: Metadata) -> dict[str, Any]:
    """Start a device login (RFC 8628) at the issuer's device authorization endpoint, as the
    configured client (HTTP Basic, as at the token endpoint): device_code, user_code,
    verification_uri (and maybe verification_uri_complete), interval, expires_in."""
    url = meta.doc.get(DEVICE_ENDPOINT)
    if not isinstance(url, str) or not url:
        raise OAuthError("device", "the issuer offers no device login (its discovery document "
                                   f"has no {DEVICE_ENDPOINT}); log in with the browser")
    try:
        resp = requests.post(url, timeout=OAUTH_HTTP_TIMEOUT_S,
                             data={"client_id": cfg.client_id, "scope": cfg.scopes},
                             auth=(cfg.client_id, cfg.client_secret),
                             headers={"Accept": "application/json"},
                             verify=tls_verify(cfg.certificate))
        doc = resp.json()
    except requests.RequestException as e:
        raise unreachable("device", e, url, cfg.certificate) from e
    except ValueError as e:
        raise OAuthError("device", f"{url}: not JSON") from e
    return device_answer(doc, "the issuer")


def poll_device(cfg: OAuthConfig, meta: Metadata, code: str) -> dict[str, Any] | None:
    """The tokens (an ID token among them) once the user entered the code at the issuer; None
    while pending (DeviceSlowDown when asked to poll less often)."""
    client = session(cfg.client_id, cfg.client_secret)
    return poll_device_token(client, meta.doc["token_endpoint"], code, cfg.certificate,
                             "the issuer")


def validate_id_token(cfg: OAuthConfig, meta: Metadata, token: dict[str, Any],
                      nonce: str | None) -> dict[str, Any]:
    """The ID token's claims once its signature (JWKS), issuer, audience, expiry and nonce (at
    login) hold; TokenInvalid otherwise."""
    raw = token.get("id_token")
    if not isinstance(raw, str):
        raise TokenInvalid("id_token", "the token answer has no ID token")
    algs = meta.doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    try:
        decoded = jwt.decode(raw, KeySet.import_key_set(meta.jwks),  # type: ignore[arg-type]
                             registry=JWSRegistry(algorithms=algs, strict_check_header=False))
    except (JoseError, ValueError, TypeError) as e:
        raise TokenInvalid("id_token", f"the ID token's signature does not verify with the "
                                       f"issuer's keys ({type(e).__name__})") from e
    options = {"iss": {"essential": True, "value": meta.issuer},
               "aud": {"essential": True, "value": cfg.client_id}}
    params: dict[str, Any] = {"client_id": cfg.client_id, "nonce": nonce}
    cls: Any = IDToken
    if nonce is not None and isinstance(token.get("access_token"), str):
        cls, params["access_token"] = CodeIDToken, token["access_token"]
    claims = cls(decoded.claims, decoded.header, options, params)
    try:
        claims.validate(leeway=ID_TOKEN_LEEWAY_S)
    except (JoseError, AuthlibBaseError, ValueError) as e:
        raise TokenInvalid("id_token", f"the ID token was refused: {e}") from e
    return dict(claims)


def identity(cfg: OAuthConfig, claims: dict[str, Any]) -> Identity:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenInvalid("id_token", "the ID token has no subject")
    raw = claims.get(cfg.groups_claim, [])
    names = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    groups = {group_principal(OIDC, g) for g in names if isinstance(g, str) and g}
    login = str(claims.get(cfg.name_claim) or claims.get("email") or sub)
    return Identity(principal_id=user_principal(OIDC, sub),
                    display_name=str(claims.get("name") or login), login_name=login,
                    groups=capped_groups(groups))


def test_steps(cfg: OAuthConfig) -> list[tuple[str, bool, str]]:
    """(stage, ok, message) per step: discovery reachable and right, JWKS readable, the token
    endpoint knows the client (a made-up code refused as a bad grant, not a bad client)."""
    try:
        meta = discover(cfg)
    except OAuthError as e:
        steps = [("discovery", e.stage != "discovery", "reachable")] if e.stage == "jwks" else []
        return [*steps, (e.stage, False, e.message)]
    steps = [("discovery", True, f"issuer {meta.issuer}"),
             ("jwks", True, f"{len(meta.jwks.get('keys', []))} key(s)")]
    try:
        exchange(cfg, meta, "", PROBE_CODE, "x" * 43)
        steps.append(("client", False, "the token endpoint accepted a made-up code"))
    except OAuthError as e:
        ok = INVALID_CLIENT not in e.message and not isinstance(e, ProviderUnreachable)
        steps.append(("client", ok, "client id and secret accepted" if ok else e.message))
    return steps
