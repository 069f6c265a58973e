"""Directory providers without a directory: principal ids, secrets at rest, configuration merge
and what the API shows, Active Directory's login filters and disabled bit."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from rancher_server.auth.impersonation import principal_extras
from rancher_server.auth.principal import Principal
from rancher_server.auth.providers import config as cfgmod
from rancher_server.auth.providers.activedirectory import FLAVOUR as AD
from rancher_server.auth.providers.ldap import Entry
from rancher_server.auth.providers.principals import (
    directory_user_provider,
    is_directory_group,
    parse_principal,
)
from rancher_server.auth.providers.secretbox import (
    SecretBox,
    SecretError,
    load_box,
    new_key_text,
    parse_key,
)

DN = "cn=ops\\2C night=shift,ou=groups,dc=example,dc=org"


def test_principal_ids_round_trip_and_never_look_local() -> None:
    assert parse_principal(f"openldap_group://{DN}") == ("openldap", "group", DN)
    assert parse_principal("activedirectory_user://cn=a,dc=b") == (
        "activedirectory", "user", "cn=a,dc=b")
    assert parse_principal("local://u-abc") is None
    assert parse_principal("openldap_group://") is None
    assert is_directory_group(f"openldap_group://{DN}")
    assert not is_directory_group("openldap_group://cn=x\r\nInjected: 1")
    assert directory_user_provider("openldap_user://uid=a,dc=x") == "openldap"
    assert directory_user_provider("admin") is None


def test_impersonation_extra_carries_the_directory_principal() -> None:
    p = Principal("u-1", "openldap_user://uid=alice,dc=x", "Alice", (), "token-1", False)
    assert principal_extras(p)["principalid"] == "openldap_user://uid=alice,dc=x"
    local = Principal("u-2", "bob", "Bob", (), "token-2", False)
    assert principal_extras(local)["principalid"] == "local://u-2"


def test_secret_box_round_trip_context_and_rotation(tmp_path: Path) -> None:
    old = SecretBox(parse_key(new_key_text()))
    ct = old.encrypt("bind-pw", "authconfig.openldap")
    assert "bind-pw" not in ct
    assert old.decrypt(ct, "authconfig.openldap") == "bind-pw"
    with pytest.raises(SecretError):
        old.decrypt(ct, "authconfig.activedirectory")  # moved to another field
    new_text = new_key_text()
    rotated = load_box(tmp_path, {"RANCHER_SECRETS_KEY": new_text})
    with pytest.raises(SecretError, match="unknown key"):
        rotated.decrypt(ct, "authconfig.openldap")
    unrelated = new_key_text()  # an old key that is not the one used does not help
    box2 = load_box(tmp_path, {"RANCHER_SECRETS_KEY": new_text,
                               "RANCHER_SECRETS_OLD_KEYS": unrelated})
    with pytest.raises(SecretError):
        box2.decrypt(ct, "authconfig.openldap")
    # The generated key file: created once, 0600, reused.
    box = load_box(tmp_path, {})
    key_file = tmp_path / "secrets.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert load_box(tmp_path, {}).decrypt(box.encrypt("x", "c"), "c") == "x"


class SharedStore:
    """The store's ``put_secret_if_absent`` as replicas on one etcd see it."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}

    def put_secret_if_absent(self, name: str, value: str) -> str:
        return self.secrets.setdefault(name, value)


def test_replicas_on_one_store_share_a_generated_key(tmp_path: Path) -> None:
    store = SharedStore()
    a = load_box(tmp_path / "r0", {}, shared=store)
    b = load_box(tmp_path / "r1", {}, shared=store)
    assert b.decrypt(a.encrypt("client-secret", "authconfig.github"), "authconfig.github") == (
        "client-secret")
    assert list(store.secrets) == ["secrets-key"]
    assert not (tmp_path / "r0" / "secrets.key").exists()  # nothing written to a replica's disk
    # A replica that has a key file from its single-replica life keeps it (what it encrypted
    # before still decrypts); RANCHER_SECRETS_KEY wins over both.
    (tmp_path / "old").mkdir()
    own = load_box(tmp_path / "old", {})
    again = load_box(tmp_path / "old", {}, shared=store)
    assert again.decrypt(own.encrypt("pw", "c"), "c") == "pw"
    env_text = new_key_text()
    env = load_box(tmp_path / "r0", {"RANCHER_SECRETS_KEY": env_text}, shared=store)
    assert SecretBox(parse_key(env_text)).decrypt(env.encrypt("pw", "c"), "c") == "pw"


def test_rotation_with_the_old_key_listed() -> None:
    old_text, new_text = new_key_text(), new_key_text()
    ct = SecretBox(parse_key(old_text)).encrypt("pw", "ctx")
    box = load_box(Path("/nonexistent"), {"RANCHER_SECRETS_KEY": new_text,
                                          "RANCHER_SECRETS_OLD_KEYS": old_text})
    assert box.decrypt(ct, "ctx") == "pw"
    assert box.needs_rewrap(ct)
    assert not box.needs_rewrap(box.encrypt("pw", "ctx"))


def test_config_never_shows_the_password_and_keeps_it_when_empty() -> None:
    box = SecretBox(parse_key(new_key_text()))
    cfg = cfgmod.merge(cfgmod.defaults("openldap"), {
        "servers": ["ldap.example.org"], "serviceAccountPassword": "s3cret",
        "userSearchBase": "ou=people,dc=x", "enabled": True})
    shown = cfgmod.to_api(cfg)
    assert shown["serviceAccountPassword"] == "" and shown["passwordSet"] is True
    raw = cfgmod.dump(cfg, box)
    assert "s3cret" not in raw
    again = cfgmod.merge(cfgmod.load("openldap", raw, box), {"serviceAccountPassword": ""})
    assert again.service_account_password == "s3cret"
    assert again.effective_port == 636
    assert dataclasses.replace(again, tls="starttls").effective_port == 389
    with pytest.raises(cfgmod.ConfigError, match="tls"):
        cfgmod.merge(cfg, {"tls": "ssl3"})
    with pytest.raises(cfgmod.ConfigError, match="allowedPrincipalIds"):
        cfgmod.merge(cfg, {"allowedPrincipalIds": ["activedirectory_group://cn=x"]})
    with pytest.raises(cfgmod.ConfigError, match="needs"):
        cfgmod.merge(cfgmod.defaults("openldap"), {"enabled": True})


def test_active_directory_login_names_and_disabled_bit() -> None:
    cfg = cfgmod.defaults("activedirectory")
    assert AD.login_filter(cfg, "ann@corp.example") == "(userPrincipalName=ann@corp.example)"
    assert AD.login_filter(cfg, "CORP\\ann") == "(sAMAccountName=ann)"
    assert AD.login_filter(cfg, "a*)(x=1") == "(sAMAccountName=a\\2a\\29\\28x=1)"
    # The implicit UPN, sAMAccountName@<the domain's DNS name>, for the domain searched only.
    ad = dataclasses.replace(cfg, user_search_base="OU=People,DC=Corp,DC=Example")
    assert AD.login_filter(ad, "ann@corp.EXAMPLE") == (
        "(|(userPrincipalName=ann@corp.EXAMPLE)(sAMAccountName=ann))")
    assert AD.login_filter(ad, "ann@other.example") == "(userPrincipalName=ann@other.example)"
    assert AD.login_filter(ad, "a*@corp.example") == (
        "(|(userPrincipalName=a\\2a@corp.example)(sAMAccountName=a\\2a))")
    assert AD.enabled(Entry("cn=a", {"useraccountcontrol": ["512"]}))
    assert not AD.enabled(Entry("cn=a", {"useraccountcontrol": ["514"]}))
    assert not AD.enabled(Entry("cn=a", {"useraccountcontrol": ["garbage"]}))
