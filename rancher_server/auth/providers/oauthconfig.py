"""The configuration of the browser-redirect providers (GitHub, OpenID Connect): fields (Rancher's
names in the API), validation, and how it is kept in the store (one setting per provider, JSON, the
client secret encrypted with :mod:`.secretbox`, the setting's name as associated data)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rancher_server.auth.providers.config import ConfigError, setting_name
from rancher_server.auth.providers.constants import (
    DEFAULT_REFRESH_INTERVAL_S,
    GITHUB,
    MAX_ALLOWED_PRINCIPALS,
    MAX_CERTIFICATE_CHARS,
    MAX_FIELD_CHARS,
    MAX_REFRESH_INTERVAL_S,
    MIN_REFRESH_INTERVAL_S,
    OIDC,
)
from rancher_server.auth.providers.oauthcommon import check_ca
from rancher_server.auth.providers.principals import parse_principal
from rancher_server.auth.providers.secretbox import SecretBox

SECRET_FIELD = "clientSecret"
ENCRYPTED_FIELD = "clientSecretEncrypted"
GITHUB_COM = "github.com"
GITHUB_COM_API = "https://api.github.com"
GITHUB_ENTERPRISE_API_PATH = "/api/v3"
DEFAULT_OIDC_SCOPES = "openid profile email"
DEFAULT_GROUPS_CLAIM = "groups"
DEFAULT_NAME_CLAIM = "preferred_username"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})  # where an http:// issuer may be


@dataclass(frozen=True)
class OAuthConfig:
    provider: str
    enabled: bool = False
    client_id: str = ""
    client_secret: str = ""
    allowed_principal_ids: tuple[str, ...] = ()  # empty: every user of the provider may log in
    refresh_interval_s: int = DEFAULT_REFRESH_INTERVAL_S
    # The CA (PEM) that signed the provider's HTTPS certificates; empty: the system's trust store.
    certificate: str = ""
    # GitHub: github.com, or a GitHub Enterprise host (its API under api_path).
    hostname: str = GITHUB_COM
    tls: bool = True
    api_path: str = GITHUB_ENTERPRISE_API_PATH
    # OpenID Connect.
    issuer: str = ""
    scopes: str = DEFAULT_OIDC_SCOPES
    groups_claim: str = DEFAULT_GROUPS_CLAIM
    name_claim: str = DEFAULT_NAME_CLAIM

    @property
    def web_url(self) -> str:
        """GitHub's web root (authorize and access_token live there)."""
        return f"{'https' if self.tls else 'http'}://{self.hostname}"

    @property
    def api_url(self) -> str:
        """GitHub's REST API root: api.github.com, or ``<host><apiPath>`` for Enterprise."""
        if self.hostname == GITHUB_COM and self.tls:
            return GITHUB_COM_API
        return self.web_url + self.api_path.rstrip("/")


COMMON_FIELDS: dict[str, str] = {
    "enabled": "enabled",
    "clientId": "client_id",
    SECRET_FIELD: "client_secret",
    "allowedPrincipalIds": "allowed_principal_ids",
    "refreshIntervalS": "refresh_interval_s",
    "certificate": "certificate",
}
API_FIELDS: dict[str, dict[str, str]] = {
    GITHUB: {**COMMON_FIELDS, "hostname": "hostname", "tlsEnabled": "tls", "apiPath": "api_path"},
    OIDC: {**COMMON_FIELDS, "issuer": "issuer", "scopes": "scopes",
           "groupsClaim": "groups_claim", "nameClaim": "name_claim"},
}
TUPLE_FIELDS = frozenset({"allowed_principal_ids"})
BOOL_FIELDS = frozenset({"enabled", "tls"})
INT_FIELDS = frozenset({"refresh_interval_s"})


def _check(cfg: OAuthConfig) -> OAuthConfig:
    fields = API_FIELDS[cfg.provider]
    for api_name, attr in fields.items():
        value = getattr(cfg, attr)
        if attr in BOOL_FIELDS:
            if not isinstance(value, bool):
                raise ConfigError(f"field {api_name!r} must be true or false")
        elif attr in INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"field {api_name!r} must be an integer")
        elif attr in TUPLE_FIELDS:
            if not all(isinstance(v, str) for v in value):
                raise ConfigError(f"field {api_name!r} must be an array of strings")
        else:
            limit = MAX_CERTIFICATE_CHARS if attr == "certificate" else MAX_FIELD_CHARS
            if not isinstance(value, str) or len(value) > limit:
                raise ConfigError(f"field {api_name!r} must be a string of at most {limit} "
                                  f"chars")
    if not MIN_REFRESH_INTERVAL_S <= cfg.refresh_interval_s <= MAX_REFRESH_INTERVAL_S:
        raise ConfigError(f"field 'refreshIntervalS' must be {MIN_REFRESH_INTERVAL_S}.."
                          f"{MAX_REFRESH_INTERVAL_S}")
    if len(cfg.allowed_principal_ids) > MAX_ALLOWED_PRINCIPALS:
        raise ConfigError(f"field 'allowedPrincipalIds': at most {MAX_ALLOWED_PRINCIPALS}")
    for p in cfg.allowed_principal_ids:
        parsed = parse_principal(p)
        if parsed is None or parsed[0] != cfg.provider:
            raise ConfigError(f"field 'allowedPrincipalIds': {p!r} is not a {cfg.provider} "
                              f"principal id")
    if cfg.certificate:
        why = check_ca(cfg.certificate)
        if why is not None:
            raise ConfigError(f"field 'certificate' (the provider's CA) {why}")
    if cfg.provider == GITHUB:
        if not cfg.hostname or any(c.isspace() or c in "/@?#" for c in cfg.hostname):
            raise ConfigError("field 'hostname' must be a host name (and optional :port), "
                              "e.g. github.com or github.corp.example")
        if cfg.api_path and not cfg.api_path.startswith("/"):
            raise ConfigError("field 'apiPath' must start with / (GitHub Enterprise: /api/v3)")
    if cfg.provider == OIDC and cfg.issuer:
        parts = urlsplit(cfg.issuer)
        plain_ok = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        if (parts.scheme != "https" and not plain_ok) or not parts.netloc or parts.query:
            raise ConfigError("field 'issuer' must be an https:// URL without a query "
                              "(http:// only on loopback)")
    if cfg.enabled:
        needed = ["clientId", SECRET_FIELD] + (["issuer"] if cfg.provider == OIDC else [])
        missing = [n for n in needed if not getattr(cfg, fields[n])]
        if missing:
            raise ConfigError(f"an enabled provider needs {', '.join(missing)}")
    return cfg


def merge(cfg: OAuthConfig, body: dict[str, Any]) -> OAuthConfig:
    """``cfg`` with the API fields of ``body`` applied (an empty or absent secret keeps the
    stored one)."""
    changes: dict[str, Any] = {}
    for api_name, attr in API_FIELDS[cfg.provider].items():
        if api_name not in body or body[api_name] is None:
            continue
        value = body[api_name]
        if attr == "client_secret" and value == "":
            continue
        if attr in TUPLE_FIELDS:
            if not isinstance(value, list):
                raise ConfigError(f"field {api_name!r} must be an array of strings")
            value = tuple(value)
        changes[attr] = value
    return _check(dataclasses.replace(cfg, **changes))


def to_api(cfg: OAuthConfig) -> dict[str, Any]:
    """The resource the API shows: never the client secret, only whether one is set."""
    out: dict[str, Any] = {"type": f"{cfg.provider}Config", "id": cfg.provider}
    for api_name, attr in API_FIELDS[cfg.provider].items():
        value = getattr(cfg, attr)
        out[api_name] = list(value) if attr in TUPLE_FIELDS else value
    out[SECRET_FIELD] = ""
    out["secretSet"] = bool(cfg.client_secret)
    if cfg.provider == GITHUB:
        out["apiUrl"] = cfg.api_url
    return out


def dump(cfg: OAuthConfig, box: SecretBox) -> str:
    doc = {attr: (list(v) if attr in TUPLE_FIELDS else v)
           for attr, v in dataclasses.asdict(cfg).items() if attr != "client_secret"}
    if cfg.client_secret:
        doc[ENCRYPTED_FIELD] = box.encrypt(cfg.client_secret, setting_name(cfg.provider))
    return json.dumps(doc, sort_keys=True)


def load(provider: str, raw: str | None, box: SecretBox) -> OAuthConfig:
    """The stored configuration (defaults when none). Raises SecretError when the client secret
    does not decrypt (a lost or rotated-away key)."""
    base = OAuthConfig(provider=provider)
    if not raw:
        return base
    doc = json.loads(raw)
    known = {f.name for f in dataclasses.fields(OAuthConfig)} - {"provider", "client_secret"}
    values: dict[str, Any] = {
        k: (tuple(v) if k in TUPLE_FIELDS else v) for k, v in doc.items() if k in known}
    encrypted = doc.get(ENCRYPTED_FIELD)
    if encrypted:
        values["client_secret"] = box.decrypt(encrypted, setting_name(provider))
    return dataclasses.replace(base, **values)


def encrypted_secret(raw: str | None) -> str:
    """The stored ciphertext of a setting ('' when none), for key rotation."""
    if not raw:
        return ""
    return str(json.loads(raw).get(ENCRYPTED_FIELD, ""))


def to_log(cfg: OAuthConfig) -> dict[str, Any]:
    """What a log line may say about a configuration (never the secret)."""
    where = cfg.api_url if cfg.provider == GITHUB else cfg.issuer
    return {"provider": cfg.provider, "enabled": cfg.enabled, "endpoint": where,
            "client_id": cfg.client_id, "ca": "configured" if cfg.certificate else "system"}
