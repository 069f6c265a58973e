"""Directory login's fast path against a real slapd (LDAPS, test CA): the user binds reuse pooled
connections without ever leaving one usable as the user, the nesting cache saves the nested
searches without ever answering for membership itself, and it expires and is bounded; a returning
user's DN hint folds the user and direct-group searches into one, and a stale, wrong or ambiguous
hint changes no answer."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from rancher_server.auth.providers.config import LdapConfig
from rancher_server.auth.providers.ldap import (
    ConnectionPool,
    LoginHints,
    LoginRefused,
    NestedGroupCache,
    authenticate,
    combined_lookup_possible,
    common_base,
)
from rancher_server.auth.providers.ldap3lib import Connection
from rancher_server.auth.providers.openldap import FLAVOUR
from tests.auth_providers.slapd import OL_BASE, OL_SVC, SVC_PW, USER_PW, Slapd

# ldap3 2.9 calls ssl.match_hostname (deprecated in Python 3.7) while wrapping the socket: its
# warning, not ours; the hostname is still checked (the server's certificate names 127.0.0.1).
pytestmark = pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")
ALICE = f"uid=alice,ou=people,{OL_BASE}"
BOB = f"uid=bob,ou=people,{OL_BASE}"
DEVS = f"openldap_group://cn=devs,ou=groups,{OL_BASE}"
ENG = f"openldap_group://cn=eng,ou=groups,{OL_BASE}"


@pytest.fixture
def pools(slapd: Slapd) -> Iterator[tuple[ConnectionPool, ConnectionPool]]:
    cfg = LdapConfig(provider="openldap", enabled=True, servers=("127.0.0.1",),
                     port=slapd.tls_port, tls="ldaps", certificate=slapd.ca_pem,
                     service_account_dn=OL_SVC, service_account_password=SVC_PW,
                     user_search_base=f"ou=people,{OL_BASE}",
                     group_search_base=f"ou=groups,{OL_BASE}",
                     nested_group_membership_enabled=True)
    service, auth = ConnectionPool(cfg, service=True), ConnectionPool(cfg, service=False)
    yield service, auth
    service.close()
    auth.close()


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    orig = Connection.search

    def counting(self: Connection, base: str, filt: str, *a: Any, **k: Any) -> Any:
        seen.append(filt)
        return orig(self, base, filt, *a, **k)

    monkeypatch.setattr(Connection, "search", counting)
    return seen


def test_pooled_user_bind_refuses_wrong_password_after_a_good_one(
        pools: tuple[ConnectionPool, ConnectionPool]) -> None:
    service, auth = pools
    assert authenticate(service, auth, FLAVOUR, "alice", USER_PW).dn == ALICE
    for _ in range(3):  # the same pooled connection, bound as alice a moment ago
        with pytest.raises(LoginRefused):
            authenticate(service, auth, FLAVOUR, "alice", "wrong-" + USER_PW)
        with pytest.raises(LoginRefused):
            authenticate(service, auth, FLAVOUR, "alice", "")
    assert len(authenticate(service, auth, FLAVOUR, "bob", USER_PW).groups) == 1


def test_idle_auth_connections_hold_no_password_and_no_user_binding(
        pools: tuple[ConnectionPool, ConnectionPool]) -> None:
    service, auth = pools
    authenticate(service, auth, FLAVOUR, "alice", USER_PW)
    with pytest.raises(LoginRefused):
        authenticate(service, auth, FLAVOUR, "bob", "wrong-" + USER_PW)

    def who(conn: Connection) -> str:
        assert conn.password is None  # the user's password is not kept in memory
        return str(conn.extend.standard.who_am_i() or "")

    # After a refused bind the connection is anonymous (RFC 4511 4.2.1): never bob, never alice.
    assert auth.run(who) == ""
    authenticate(service, auth, FLAVOUR, "alice", USER_PW)
    assert "alice" in auth.run(who)  # (the check can see a user binding)


def test_nesting_cache_saves_the_nested_searches_not_the_membership(
        pools: tuple[ConnectionPool, ConnectionPool], searches: list[str],
        slapd: Slapd) -> None:
    service, auth = pools
    cache = NestedGroupCache()
    assert authenticate(service, auth, FLAVOUR, "alice", USER_PW, cache).groups == (DEVS, ENG)
    cold = len(searches)
    searches.clear()
    assert authenticate(service, auth, FLAVOUR, "alice", USER_PW, cache).groups == (DEVS, ENG)
    assert len(searches) == 2 < cold  # the user search and the direct-group search only
    # Membership is read at every login: alice out of devs loses devs and, with it, eng.
    slapd.modify(f"dn: cn=devs,ou=groups,{OL_BASE}\nchangetype: modify\ndelete: member\n"
                 f"member: {ALICE}\n")
    try:
        assert authenticate(service, auth, FLAVOUR, "alice", USER_PW, cache).groups == ()
    finally:
        slapd.modify(f"dn: cn=devs,ou=groups,{OL_BASE}\nchangetype: modify\nadd: member\n"
                     f"member: {ALICE}\n")
    # A wrong password is refused before any group is looked up, cache or not.
    with pytest.raises(LoginRefused):
        authenticate(service, auth, FLAVOUR, "alice", "wrong-" + USER_PW, cache)


def test_nesting_cache_expires_is_bounded_and_clears() -> None:
    now = [100.0]
    cache = NestedGroupCache(ttl_s=30.0, max_entries=2, clock=lambda: now[0])
    cache.put(("cn=a",), ("cn=p",))
    assert cache.get(("cn=a",)) == ("cn=p",)
    now[0] += 30.0
    assert cache.get(("cn=a",)) is None
    for key in ("cn=a", "cn=b", "cn=c"):
        cache.put((key,), ())
    assert len(cache) <= 2
    cache.clear()
    assert len(cache) == 0 and cache.get(("cn=c",)) is None


def _without_alice_in_devs(slapd: Slapd, change: str) -> None:
    slapd.modify(f"dn: cn=devs,ou=groups,{OL_BASE}\nchangetype: modify\n{change}: member\n"
                 f"member: {ALICE}\n")


def test_login_hint_reads_user_and_groups_in_one_search_and_decides_nothing(
        pools: tuple[ConnectionPool, ConnectionPool], searches: list[str],
        slapd: Slapd) -> None:
    service, auth = pools
    cache, hints = NestedGroupCache(), LoginHints()
    assert authenticate(service, auth, FLAVOUR, "alice", USER_PW, cache, hints).groups == (
        DEVS, ENG)
    assert hints.get("alice") == ALICE  # learnt from a successful login
    searches.clear()
    assert authenticate(service, auth, FLAVOUR, "alice", USER_PW, cache, hints).groups == (
        DEVS, ENG)
    assert len(searches) == 1  # her entry and the groups naming her DN, together
    # Membership is still read at every login: out of devs, she loses devs and eng at once.
    _without_alice_in_devs(slapd, "delete")
    try:
        assert authenticate(service, auth, FLAVOUR, "alice", USER_PW, cache, hints).groups == ()
    finally:
        _without_alice_in_devs(slapd, "add")
    assert authenticate(service, auth, FLAVOUR, "alice", USER_PW, cache, hints).groups == (
        DEVS, ENG)
    with pytest.raises(LoginRefused):  # the password is checked as ever
        authenticate(service, auth, FLAVOUR, "alice", "wrong-" + USER_PW, cache, hints)


def test_a_stale_or_wrong_hint_changes_no_answer(
        pools: tuple[ConnectionPool, ConnectionPool]) -> None:
    service, auth = pools
    hints = LoginHints()
    hints.put("alice", BOB)  # as if the login name had moved to another entry since
    user = authenticate(service, auth, FLAVOUR, "alice", USER_PW, None, hints)
    assert (user.dn, user.groups) == (ALICE, (DEVS, ENG))
    assert hints.get("alice") == ALICE
    hints.put("nobody", ALICE)  # a name that no longer exists
    with pytest.raises(LoginRefused) as e:
        authenticate(service, auth, FLAVOUR, "nobody", USER_PW, None, hints)
    assert e.value.reason == "no such user" and hints.get("nobody") is None
    with pytest.raises(LoginRefused):  # a hint is no way around bob's password
        hints.put("bob", BOB)
        authenticate(service, auth, FLAVOUR, "bob", "wrong-" + USER_PW, None, hints)


def test_a_hinted_login_name_that_became_ambiguous_is_refused(
        pools: tuple[ConnectionPool, ConnectionPool], slapd: Slapd) -> None:
    service, auth = pools
    hints = LoginHints()
    authenticate(service, auth, FLAVOUR, "alice", USER_PW, None, hints)
    twin = f"uid=alice2,ou=people,{OL_BASE}"
    slapd.modify(f"dn: {twin}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: alice\n"
                 f"uid: alice2\ncn: Twin\nsn: twin\nuserPassword: {USER_PW}\n")
    try:
        with pytest.raises(LoginRefused) as e:
            authenticate(service, auth, FLAVOUR, "alice", USER_PW, None, hints)
        assert e.value.reason == "login name matches several entries"
    finally:
        slapd.modify(f"dn: {twin}\nchangetype: delete\n")


def test_combined_lookup_needs_member_dns_and_a_shared_subtree() -> None:
    assert common_base(f"ou=people,{OL_BASE}", f"OU=Groups, {OL_BASE}") == OL_BASE
    assert common_base("ou=people,dc=a", "ou=groups,dc=b") == ""
    cfg = LdapConfig(provider="openldap", user_search_base=f"ou=people,{OL_BASE}",
                     group_search_base=f"ou=groups,{OL_BASE}")
    assert combined_lookup_possible(cfg)
    assert not combined_lookup_possible(dataclasses.replace(
        cfg, group_member_mapping_attribute="memberUid", group_member_user_attribute="uid"))
    assert not combined_lookup_possible(dataclasses.replace(cfg, token_groups_enabled=True))
    assert not combined_lookup_possible(dataclasses.replace(cfg, group_search_base="dc=other"))


def test_login_hints_are_bounded() -> None:
    hints = LoginHints(max_entries=2)
    for name in ("a", "b", "c"):
        hints.put(name, f"uid={name}")
    assert len(hints) == 2 and hints.get("a") is None and hints.get("c") == "uid=c"
    hints.drop("c")
    hints.clear()
    assert len(hints) == 0
