"""A directory provider's configuration: its fields (Rancher's names in the API), defaults per
provider, validation, and how it is kept in the store (one setting per provider, JSON, the bind
password encrypted with :mod:`.secretbox`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from rancher_server.auth.providers.constants import (
    ACTIVE_DIRECTORY,
    DEFAULT_REFRESH_INTERVAL_S,
    LDAP_DEFAULT_PORT,
    LDAPS_DEFAULT_PORT,
    MAX_ALLOWED_PRINCIPALS,
    MAX_CERTIFICATE_CHARS,
    MAX_FIELD_CHARS,
    MAX_REFRESH_INTERVAL_S,
    MAX_SERVERS,
    MIN_REFRESH_INTERVAL_S,
    OPENLDAP,
    SETTING_PREFIX,
)
from rancher_server.auth.providers.principals import parse_principal
from rancher_server.auth.providers.secretbox import SecretBox

TLS_LDAPS = "ldaps"
TLS_STARTTLS = "starttls"
TLS_NONE = "none"
TLS_MODES = (TLS_LDAPS, TLS_STARTTLS, TLS_NONE)
PASSWORD_FIELD = "serviceAccountPassword"
ENCRYPTED_FIELD = "serviceAccountPasswordEncrypted"
DN_ATTRIBUTE_NAMES = frozenset({"dn", "entrydn", "distinguishedname"})


class ConfigError(ValueError):
    """An invalid configuration (the API answers 422 with this message)."""


@dataclass(frozen=True)
class LdapConfig:
    provider: str
    enabled: bool = False
    servers: tuple[str, ...] = ()
    port: int = 0  # 0: 636 for ldaps, else 389
    tls: str = TLS_LDAPS
    certificate: str = ""  # CA PEM; empty: the system's trust store
    service_account_dn: str = ""
    service_account_password: str = ""
    user_search_base: str = ""
    user_search_filter: str = ""  # ANDed with the object class and login filter
    user_login_attribute: str = "uid"
    user_name_attribute: str = "cn"
    user_object_class: str = "inetOrgPerson"
    user_member_attribute: str = "memberOf"  # read from the user's entry when present
    group_search_base: str = ""
    group_search_filter: str = ""
    group_object_class: str = "groupOfNames"
    group_name_attribute: str = "cn"
    group_member_mapping_attribute: str = "member"  # member | uniqueMember | memberUid
    group_member_user_attribute: str = "entryDN"  # the user's value in it: its DN, or uid
    nested_group_membership_enabled: bool = False
    token_groups_enabled: bool = False  # Active Directory: transitive groups from tokenGroups
    allowed_principal_ids: tuple[str, ...] = ()  # empty: every directory user may log in
    refresh_interval_s: int = DEFAULT_REFRESH_INTERVAL_S

    @property
    def effective_port(self) -> int:
        if self.port:
            return self.port
        return LDAPS_DEFAULT_PORT if self.tls == TLS_LDAPS else LDAP_DEFAULT_PORT

    @property
    def member_value_is_dn(self) -> bool:
        return self.group_member_user_attribute.lower() in DN_ATTRIBUTE_NAMES

    def fingerprint(self) -> str:
        """Changes whenever anything that a connection depends on changes."""
        raw = json.dumps(dataclasses.asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(raw.encode()).hexdigest()


def defaults(provider: str) -> LdapConfig:
    if provider == ACTIVE_DIRECTORY:
        return LdapConfig(
            provider=provider, user_login_attribute="sAMAccountName",
            user_name_attribute="name", user_object_class="person",
            group_object_class="group", group_name_attribute="name",
            nested_group_membership_enabled=True,
        )
    if provider == OPENLDAP:
        return LdapConfig(provider=provider)
    raise ConfigError(f"unknown provider {provider!r}")


# API field name -> dataclass attribute (the API speaks Rancher's camelCase).
API_FIELDS: dict[str, str] = {
    "enabled": "enabled",
    "servers": "servers",
    "port": "port",
    "tls": "tls",
    "certificate": "certificate",
    "serviceAccountDistinguishedName": "service_account_dn",
    PASSWORD_FIELD: "service_account_password",
    "userSearchBase": "user_search_base",
    "userSearchFilter": "user_search_filter",
    "userLoginAttribute": "user_login_attribute",
    "userNameAttribute": "user_name_attribute",
    "userObjectClass": "user_object_class",
    "userMemberAttribute": "user_member_attribute",
    "groupSearchBase": "group_search_base",
    "groupSearchFilter": "group_search_filter",
    "groupObjectClass": "group_object_class",
    "groupNameAttribute": "group_name_attribute",
    "groupMemberMappingAttribute": "group_member_mapping_attribute",
    "groupMemberUserAttribute": "group_member_user_attribute",
    "nestedGroupMembershipEnabled": "nested_group_membership_enabled",
    "tokenGroupsEnabled": "token_groups_enabled",
    "allowedPrincipalIds": "allowed_principal_ids",
    "refreshIntervalS": "refresh_interval_s",
}
TUPLE_FIELDS = frozenset({"servers", "allowed_principal_ids"})


def _check(cfg: LdapConfig) -> LdapConfig:
    if cfg.tls not in TLS_MODES:
        raise ConfigError(f"field 'tls' must be one of {', '.join(TLS_MODES)}")
    if len(cfg.servers) > MAX_SERVERS:
        raise ConfigError(f"field 'servers': at most {MAX_SERVERS}")
    for s in cfg.servers:
        if not s or len(s) > MAX_FIELD_CHARS or any(c.isspace() or c in "/@" for c in s):
            raise ConfigError(f"field 'servers': {s!r} is not a host name or address")
    if not 0 <= cfg.port <= 65535:
        raise ConfigError("field 'port' must be 0..65535 (0: the TLS mode's default)")
    if len(cfg.certificate) > MAX_CERTIFICATE_CHARS:
        raise ConfigError("field 'certificate' is too large")
    if cfg.certificate and "-----BEGIN CERTIFICATE-----" not in cfg.certificate:
        raise ConfigError("field 'certificate' must be PEM (-----BEGIN CERTIFICATE-----)")
    if not MIN_REFRESH_INTERVAL_S <= cfg.refresh_interval_s <= MAX_REFRESH_INTERVAL_S:
        raise ConfigError(f"field 'refreshIntervalS' must be {MIN_REFRESH_INTERVAL_S}.."
                          f"{MAX_REFRESH_INTERVAL_S}")
    if len(cfg.allowed_principal_ids) > MAX_ALLOWED_PRINCIPALS:
        raise ConfigError(f"field 'allowedPrincipalIds': at most {MAX_ALLOWED_PRINCIPALS}")
    for p in cfg.allowed_principal_ids:
        parsed = parse_principal(p)
        if parsed is None or parsed[0] != cfg.provider:
            raise ConfigError(f"field 'allowedPrincipalIds': {p!r} is not a "
                              f"{cfg.provider}_user:// or {cfg.provider}_group:// principal id")
    for api_name, attr in API_FIELDS.items():
        value = getattr(cfg, attr)
        if isinstance(value, str) and len(value) > max(MAX_FIELD_CHARS, MAX_CERTIFICATE_CHARS
                                                       if attr == "certificate" else 0):
            raise ConfigError(f"field {api_name!r} is too long")
    if cfg.enabled:
        missing = [n for n, a in API_FIELDS.items() if a in (
            "servers", "user_search_base", "user_login_attribute", "user_object_class")
            and not getattr(cfg, a)]
        if missing:
            raise ConfigError(f"an enabled provider needs {', '.join(missing)}")
    return cfg


def merge(cfg: LdapConfig, body: dict[str, Any]) -> LdapConfig:
    """``cfg`` with the API fields of ``body`` applied (an empty or absent password keeps the
    stored one, as Rancher does). The body was validated against the schema already."""
    changes: dict[str, Any] = {}
    for api_name, attr in API_FIELDS.items():
        if api_name not in body or body[api_name] is None:
            continue
        value = body[api_name]
        if attr == "service_account_password" and value == "":
            continue
        changes[attr] = tuple(value) if attr in TUPLE_FIELDS else value
    return _check(dataclasses.replace(cfg, **changes))


def to_api(cfg: LdapConfig) -> dict[str, Any]:
    """The resource the API shows: never the password, only whether one is set."""
    out: dict[str, Any] = {"type": f"{cfg.provider}Config", "id": cfg.provider}
    for api_name, attr in API_FIELDS.items():
        value = getattr(cfg, attr)
        out[api_name] = list(value) if attr in TUPLE_FIELDS else value
    out[PASSWORD_FIELD] = ""
    out["passwordSet"] = bool(cfg.service_account_password)
    out["effectivePort"] = cfg.effective_port
    return out


def setting_name(provider: str) -> str:
    return SETTING_PREFIX + provider


def dump(cfg: LdapConfig, box: SecretBox) -> str:
    doc = {attr: (list(v) if attr in TUPLE_FIELDS else v)
           for attr, v in dataclasses.asdict(cfg).items() if attr != "service_account_password"}
    if cfg.service_account_password:
        doc[ENCRYPTED_FIELD] = box.encrypt(cfg.service_account_password,
                                           setting_name(cfg.provider))
    return json.dumps(doc, sort_keys=True)


def load(provider: str, raw: str | None, box: SecretBox) -> LdapConfig:
    """The stored configuration (defaults when none). Raises SecretError when the password does
    not decrypt (a lost or rotated-away key)."""
    base = defaults(provider)
    if not raw:
        return base
    doc = json.loads(raw)
    known = {f.name for f in dataclasses.fields(LdapConfig)}
    values: dict[str, Any] = {
        k: (tuple(v) if k in TUPLE_FIELDS else v) for k, v in doc.items() if k in known}
    values["provider"] = provider
    encrypted = doc.get(ENCRYPTED_FIELD)
    if encrypted:
        values["service_account_password"] = box.decrypt(encrypted, setting_name(provider))
    return dataclasses.replace(base, **values)


def encrypted_password(raw: str | None) -> str:
    """The stored ciphertext of a setting ('' when none), for key rotation."""
    if not raw:
        return ""
    return str(json.loads(raw).get(ENCRYPTED_FIELD, ""))


def to_log(cfg: LdapConfig) -> dict[str, Any]:
    """What a log line may say about a configuration (never the password)."""
    return {"provider": cfg.provider, "servers": list(cfg.servers), "port": cfg.effective_port,
            "tls": cfg.tls, "enabled": cfg.enabled}
