"""Directory login's fast path against a real slapd (LDAPS, test CA): the user binds reuse pooled
connections without ever leaving one usable as the user, the nesting cache saves the nested
searches without ever answering for membership itself, and it expires and is bounded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rancher_server.auth.providers.config import LdapConfig
from rancher_server.auth.providers.ldap import (
    ConnectionPool,
    LoginRefused,
    NestedGroupCache,
    authenticate,
)
from rancher_server.auth.providers.ldap3lib import Connection
from rancher_server.auth.providers.openldap import FLAVOUR
from tests.auth_providers.slapd import OL_BASE, OL_SVC, SVC_PW, USER_PW, Slapd

# ldap3 2.9 calls ssl.match_hostname (deprecated in Python 3.7) while wrapping the socket: its
# warning, not ours; the hostname is still checked (the server's certificate names 127.0.0.1).
pytestmark = pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")
ALICE = f"uid=alice,ou=people,{OL_BASE}"
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
