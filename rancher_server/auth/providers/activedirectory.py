"""Active Directory: log in as ``user@domain`` (``userPrincipalName``), ``DOMAIN\\user`` or
``user`` (``sAMAccountName``, or the configured ``userLoginAttribute``); accounts with
``userAccountControl``'s ACCOUNTDISABLE bit are refused and, at the next refresh, lose access;
groups from ``memberOf`` and ``member`` with nesting, or, with ``tokenGroupsEnabled``, the
transitive list AD computes (``tokenGroups``, SIDs resolved through ``objectSid``)."""

from __future__ import annotations

from rancher_server.auth.providers.config import LdapConfig
from rancher_server.auth.providers.constants import (
    ACTIVE_DIRECTORY,
    AD_ACCOUNT_DISABLED_BIT,
    LDAP_FILTER_CHUNK,
)
from rancher_server.auth.providers.ldap import (
    STAGE_GROUPS,
    Entry,
    Flavour,
    group_base,
    search,
)
from rancher_server.auth.providers.ldap3lib import (
    BASE,
    Connection,
    LDAPInvalidDnError,
    escape_filter_chars,
    parse_dn,
)

USER_ACCOUNT_CONTROL = "userAccountControl"
USER_PRINCIPAL_NAME = "userPrincipalName"
SAM_ACCOUNT_NAME = "sAMAccountName"
TOKEN_GROUPS = "tokenGroups"
OBJECT_SID = "objectSid"


def dns_domain(dn: str) -> str:
    """The DNS name of the domain a DN is in: its DC= parts (``DC=corp,DC=example``:
    ``corp.example``), lower-cased; "" without any."""
    try:
        rdns = parse_dn(dn, escape=False, strip=True)
    except LDAPInvalidDnError:
        return ""
    return ".".join(value for attr, value, _ in rdns if attr.lower() == "dc").lower()


def escape_binary(raw: bytes) -> str:
    """An octet string as an LDAP filter assertion value (RFC 4515: every byte as \\xx)."""
    return "".join(f"\\{b:02x}" for b in raw)


class ActiveDirectory(Flavour):
    name = ACTIVE_DIRECTORY

    def login_filter(self, cfg: LdapConfig, login_name: str) -> str:
        if "@" in login_name:
            upn = f"({USER_PRINCIPAL_NAME}={escape_filter_chars(login_name)})"
            local, _, domain = login_name.rpartition("@")
            if local and domain.lower() == dns_domain(cfg.user_search_base):
                # AD also takes the implicit UPN, sAMAccountName@<the domain's DNS name>, for
                # every account (the built-in Administrator and accounts created without a
                # userPrincipalName have no other).
                return f"(|{upn}({SAM_ACCOUNT_NAME}={escape_filter_chars(local)}))"
            return upn
        if "\\" in login_name:  # DOMAIN\user: the domain is the one we are bound to
            login_name = login_name.split("\\", 1)[1]
            return f"({SAM_ACCOUNT_NAME}={escape_filter_chars(login_name)})"
        return f"({cfg.user_login_attribute}={escape_filter_chars(login_name)})"

    def user_attributes(self, cfg: LdapConfig) -> tuple[str, ...]:
        return (USER_ACCOUNT_CONTROL,)

    def enabled(self, entry: Entry) -> bool:
        raw = entry.first(USER_ACCOUNT_CONTROL)
        try:
            return not int(raw) & AD_ACCOUNT_DISABLED_BIT if raw else True
        except ValueError:
            return False  # a value we cannot read: refuse rather than guess

    def transitive_groups(self, conn: Connection, cfg: LdapConfig, entry: Entry) -> (
            list[Entry] | None):
        if not cfg.token_groups_enabled:
            return None
        # tokenGroups is computed by AD and only returned by a base-scope search.
        found = search(conn, entry.dn, "(objectClass=*)", [TOKEN_GROUPS], scope=BASE,
                       stage=STAGE_GROUPS)
        sids = found[0].raw.get(TOKEN_GROUPS.lower(), []) if found else []
        groups: list[Entry] = []
        for i in range(0, len(sids), LDAP_FILTER_CHUNK):
            chunk = sids[i:i + LDAP_FILTER_CHUNK]
            alts = "".join(f"({OBJECT_SID}={escape_binary(s)})" for s in chunk)
            filt = (f"(&(objectClass={escape_filter_chars(cfg.group_object_class)})"
                    f"(|{alts}))")
            groups += search(conn, group_base(cfg), filt, [], stage=STAGE_GROUPS)
        return groups


FLAVOUR = ActiveDirectory()
