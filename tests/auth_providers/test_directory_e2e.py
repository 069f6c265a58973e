"""Directory login end to end against a real slapd (LDAPS with a test CA) and the whole stack
(stand-in with RBAC and kube-api-auth as its token webhook, the server, an imported agent):
configure and test each provider over the REST API, log in, kubectl through the proxy and the
direct path with rights bound to a directory group, then remove the user from the group, disable
and delete them in the directory and watch access end on both paths within the refresh period;
stop the directory: the local admin still logs in, directory users get a clear 503.

Active Directory is tested here against slapd seeded with AD's attributes (sAMAccountName,
userPrincipalName, userAccountControl, memberOf, objectSid, tokenGroups; ``ad_test.schema``),
and against a real Samba AD domain controller in ``test_samba_ad.py``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.auth_providers.slapd import (
    AD_BASE,
    AD_SVC,
    OL_BASE,
    OL_SVC,
    SVC_PW,
    USER_PW,
    Slapd,
)
from tests.e2e.ace_stack import ADMIN_PASSWORD, DIRECT_PATH_CACHE_S, ace_stack
from tests.e2e.test_access_e2e import both, can
from tests.kube import KubeSimProc
from tests.procs import ServerProc, wait_until
from tests.rest import ApiError, Rest

pytestmark = pytest.mark.slow

REFRESH_INTERVAL_S = 2
PROXY_LOST_WITHIN_S = REFRESH_INTERVAL_S + 3.0  # one refresh period and one reconcile pass
# The direct path: kube-apiserver (and the stand-in) keeps a successful webhook answer, groups
# included, for its caches' TTLs after the ClusterUserAttribute changed.
WEBHOOK_CACHE_S = DIRECT_PATH_CACHE_S
LOST_WITHIN_S = PROXY_LOST_WITHIN_S + WEBHOOK_CACHE_S
GRANTED_WITHIN_S = 8.0
OL_LOGIN = "/v3-public/openLdapProviders/openldap?action=login"
AD_LOGIN = "/v3-public/activeDirectoryProviders/activedirectory?action=login"
DEVS = f"openldap_group://cn=devs,ou=groups,{OL_BASE}"
ENG = f"openldap_group://cn=eng,ou=groups,{OL_BASE}"
AD_ENG = f"activedirectory_group://cn=Engineering,ou=Groups,{AD_BASE}"


@dataclass
class Stack:
    tmp: Path
    sim: KubeSimProc
    server: ServerProc
    admin: Rest
    cluster: str
    ldap: Slapd

    def rest(self) -> Rest:
        return Rest(self.server.url, self.server.ca_path)

    def login(self, path: str, username: str, password: str = USER_PW) -> Rest:
        r = self.rest()
        r.token = str(r.call("POST", path, {"username": username, "password": password})["token"])
        return r

    def kubeconfig(self, rest: Rest, name: str) -> Path:
        out = rest.call("POST", f"/v3/clusters/{self.cluster}?action=generateKubeconfig")
        kc = self.tmp / f"{name}.kubeconfig"
        kc.write_text(out["config"])
        assert {c["name"] for c in yaml.safe_load(out["config"])["contexts"]} == {
            "edge", "edge-direct"}
        return kc


def ol_config(s: Slapd, **over: Any) -> dict[str, Any]:
    return {"enabled": True, "servers": ["127.0.0.1"], "port": s.tls_port, "tls": "ldaps",
            "certificate": s.ca_pem, "serviceAccountDistinguishedName": OL_SVC,
            "serviceAccountPassword": SVC_PW, "userSearchBase": f"ou=people,{OL_BASE}",
            "groupSearchBase": f"ou=groups,{OL_BASE}", "nestedGroupMembershipEnabled": True,
            "refreshIntervalS": REFRESH_INTERVAL_S, **over}


def ad_config(s: Slapd, **over: Any) -> dict[str, Any]:
    return {"enabled": True, "servers": ["127.0.0.1"], "port": s.tls_port, "tls": "ldaps",
            "certificate": s.ca_pem, "serviceAccountDistinguishedName": AD_SVC,
            "serviceAccountPassword": SVC_PW, "userSearchBase": f"ou=Users,{AD_BASE}",
            "groupSearchBase": f"ou=Groups,{AD_BASE}", "groupObjectClass": "groupOfNames",
            "userNameAttribute": "cn", "refreshIntervalS": REFRESH_INTERVAL_S, **over}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, slapd: Slapd) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("directory")
    with ace_stack(tmp) as s:
        admin, cid = s["admin"], str(s["cluster"])
        assert isinstance(admin, Rest)
        admin.call("PUT", f"/v3/clusters/{cid}/authorizedendpoint", {"enabled": True})
        sim, server = s["sim"], s["server"]
        assert isinstance(sim, KubeSimProc) and isinstance(server, ServerProc)
        yield Stack(tmp, sim, server, admin, cid, slapd)


def lost_on_both(kc: Path, verb: str, resource: str, what: str) -> tuple[float, float]:
    """Seconds until the proxy, then the direct path, refuse (each within its bound)."""
    t0 = time.monotonic()
    wait_until(lambda: not can(kc, "edge", verb, resource, "default"), PROXY_LOST_WITHIN_S,
               0.2, what=f"{what} (proxy)")
    proxy_s = time.monotonic() - t0
    wait_until(lambda: not can(kc, "edge-direct", verb, resource, "default"), LOST_WITHIN_S,
               0.3, what=f"{what} (direct path)")
    direct_s = time.monotonic() - t0
    print(f"{what}: proxy {proxy_s:.1f} s, direct {direct_s:.1f} s")
    return proxy_s, direct_s


def project(stack: Stack, name: str) -> str:
    for p in stack.admin.call("GET", f"/v3/projects?clusterId={stack.cluster}")["data"]:
        if p["name"] == name:
            return str(p["id"])
    raise AssertionError(name)


def test_configure_openldap_secret_never_shown_nor_stored_plain(stack: Stack) -> None:
    admin, s = stack.admin, stack.ldap
    out = admin.call("PUT", "/v3/authconfigs/openldap", ol_config(s))
    assert out["serviceAccountPassword"] == "" and out["passwordSet"] is True
    got = admin.call("GET", "/v3/authconfigs/openldap")
    assert got["serviceAccountPassword"] == "" and got["passwordSet"] is True
    assert got["tls"] == "ldaps" and got["nestedGroupMembershipEnabled"] is True
    db = sqlite3.connect(stack.server.data_dir / "rancher.db")
    try:
        raw = db.execute("SELECT value FROM settings WHERE name='authconfig.openldap'").fetchone()
    finally:
        db.close()
    assert SVC_PW not in raw[0] and "aesgcm:" in raw[0]
    assert SVC_PW not in (stack.tmp / "server.log").read_text()
    # Only administrators configure providers.
    with pytest.raises(ApiError) as e:
        stack.rest().call("GET", "/v3/authconfigs/openldap")
    assert e.value.status == 401
    providers = {p["id"] for p in stack.rest().call("GET", "/v3-public/authProviders")["data"]}
    assert providers == {"local", "openldap"}


def test_connection_test_names_the_failing_step(stack: Stack) -> None:
    admin, s = stack.admin, stack.ldap
    ok = admin.call("POST", "/v3/authconfigs/openldap?action=testConnection",
                    {"username": "alice", "password": USER_PW})
    assert ok["ok"] is True, ok
    assert [st["stage"] for st in ok["steps"]][-1] == "login"
    other_ca = (stack.tmp / "other").resolve()
    other_ca.mkdir()
    from tests.tlsutil import self_signed
    wrong = self_signed(other_ca, "another-ca")[0].read_text()
    bad = admin.call("POST", "/v3/authconfigs/openldap?action=testConnection",
                     {"certificate": wrong})
    assert (bad["ok"], bad["stage"]) == (False, "tls"), bad
    assert "certificate" in bad["message"].lower()
    bind = admin.call("POST", "/v3/authconfigs/openldap?action=testConnection",
                      {"serviceAccountPassword": "wrong-password"})
    assert (bind["ok"], bind["stage"]) == (False, "bind"), bind
    dns = admin.call("POST", "/v3/authconfigs/openldap?action=testConnection",
                     {"servers": ["no-such-host.invalid"]})
    assert (dns["ok"], dns["stage"]) == (False, "dns"), dns
    search = admin.call("POST", "/v3/authconfigs/openldap?action=testConnection",
                        {"userSearchBase": f"ou=nobody,{OL_BASE}"})
    assert (search["ok"], search["stage"]) == (False, "search"), search
    # Nothing of it was saved.
    assert admin.call("GET", "/v3/authconfigs/openldap")["certificate"] == s.ca_pem


def test_openldap_login_groups_and_wrong_password(stack: Stack) -> None:
    alice = stack.login(OL_LOGIN, "alice")
    me = alice.call("GET", "/v3/users?me=true")["data"][0]
    assert me["username"] == f"openldap_user://uid=alice,ou=people,{OL_BASE}"
    user = stack.admin.call("GET", f"/v3/users/{me['id']}")
    assert sorted(user["groups"]) == sorted([DEVS, ENG])  # eng through devs (nested)
    with pytest.raises(ApiError) as e:
        stack.login(OL_LOGIN, "alice", "not-her-password")
    assert e.value.status == 401
    with pytest.raises(ApiError) as e:  # no local password for a directory user
        stack.rest().login(me["username"], USER_PW)
    assert e.value.status in (401, 422)


def test_group_bound_rights_on_both_paths_then_lost_when_removed_from_group(
        stack: Stack) -> None:
    """eng (alice's through the nested devs) gets project-member on Default; a group whose DN
    has '=' and ',' gets read-only for bob."""
    default = project(stack, "Default")
    b = stack.admin.call("POST", "/v3/projectroletemplatebindings", {
        "projectId": default, "groupPrincipalId": ENG, "roleTemplateId": "project-member"})
    assert b["groupPrincipalId"] == ENG
    ops = f"openldap_group://cn=ops\\2C night\\3Dshift,ou=groups,{OL_BASE}"
    stack.admin.call("POST", "/v3/projectroletemplatebindings", {
        "projectId": default, "groupPrincipalId": ops, "roleTemplateId": "read-only"})
    alice = stack.login(OL_LOGIN, "alice")
    kc = stack.kubeconfig(alice, "alice")
    wait_until(lambda: both(kc, "create", "configmap", "default") == (True, True),
               GRANTED_WITHIN_S, 0.3, what="alice may create configmaps on both paths")
    bob = stack.login(OL_LOGIN, "bob")
    bob_kc = stack.kubeconfig(bob, "bob")
    wait_until(lambda: both(bob_kc, "list", "configmaps", "default") == (True, True),
               GRANTED_WITHIN_S, 0.3, what="bob (group with '=' and ',') reads on both paths")
    assert both(bob_kc, "create", "configmap", "default") == (False, False)

    # Removed from devs in the directory: eng is lost with it, on both paths.
    stack.ldap.modify(f"dn: cn=devs,ou=groups,{OL_BASE}\nchangetype: modify\n"
                      f"delete: member\nmember: uid=alice,ou=people,{OL_BASE}\n")
    lost_on_both(kc, "create", "configmap", "alice removed from devs")
    me = alice.call("GET", "/v3/users?me=true")["data"][0]
    assert stack.admin.call("GET", f"/v3/users/{me['id']}")["groups"] == []

    # Back in the group, refreshed on demand by an administrator.
    stack.ldap.modify(f"dn: cn=devs,ou=groups,{OL_BASE}\nchangetype: modify\n"
                      f"add: member\nmember: uid=alice,ou=people,{OL_BASE}\n")
    out = stack.admin.call("POST", f"/v3/users/{me['id']}?action=refreshGroups")
    assert sorted(out["groups"]) == sorted([DEVS, ENG])
    wait_until(lambda: can(kc, "edge", "create", "configmap", "default"), GRANTED_WITHIN_S,
               0.3, what="alice's rights back")

    # Deleted from the directory: disabled in the store within a refresh period, every path.
    stack.ldap.modify(f"dn: uid=bob,ou=people,{OL_BASE}\nchangetype: delete\n")
    lost_on_both(bob_kc, "list", "configmaps", "bob deleted")
    with pytest.raises(ApiError) as e:
        bob.call("GET", "/v3/users?me=true")
    assert e.value.status == 401


def test_allowed_principals_restrict_login(stack: Stack) -> None:
    stack.admin.call("PUT", "/v3/authconfigs/openldap", {"allowedPrincipalIds": [ENG]})
    stack.login(OL_LOGIN, "alice")  # in eng (nested)
    with pytest.raises(ApiError) as e:
        stack.login(OL_LOGIN, "dave")
    assert e.value.status == 403
    stack.admin.call("PUT", "/v3/authconfigs/openldap", {"allowedPrincipalIds": []})
    stack.login(OL_LOGIN, "dave")


def test_posix_group_member_uid(stack: Stack) -> None:
    out = stack.admin.call("POST", "/v3/authconfigs/openldap?action=testConnection", {
        "groupObjectClass": "posixGroup", "groupMemberMappingAttribute": "memberUid",
        "groupMemberUserAttribute": "uid", "username": "carol", "password": USER_PW})
    assert out["ok"] is True, out
    assert out["steps"][-1]["message"].endswith("with 1 groups"), out


def test_active_directory_login_disabled_account_and_access(stack: Stack) -> None:
    admin, s = stack.admin, stack.ldap
    admin.call("PUT", "/v3/authconfigs/activedirectory", ad_config(s))
    ann = stack.login(AD_LOGIN, "ann@corp.example")  # userPrincipalName
    stack.login(AD_LOGIN, "CORP\\ann")  # DOMAIN\sAMAccountName
    stack.login(AD_LOGIN, "ann")
    me = ann.call("GET", "/v3/users?me=true")["data"][0]
    groups = stack.admin.call("GET", f"/v3/users/{me['id']}")["groups"]
    assert AD_ENG in groups and len(groups) == 2, groups  # Developers (memberOf) + nested
    with pytest.raises(ApiError) as e:  # userAccountControl 514: disabled
        stack.login(AD_LOGIN, "ben")
    assert e.value.status == 401
    # tokenGroups: the transitive SIDs AD computes, resolved through objectSid.
    admin.call("PUT", "/v3/authconfigs/activedirectory", {"tokenGroupsEnabled": True})
    out = admin.call("POST", f"/v3/users/{me['id']}?action=refreshGroups")
    assert sorted(out["groups"]) == sorted(groups)
    admin.call("PUT", "/v3/authconfigs/activedirectory", {"tokenGroupsEnabled": False})

    admin.call("POST", "/v3/clusterroletemplatebindings", {
        "clusterId": stack.cluster, "groupPrincipalId": AD_ENG, "roleTemplateId": "read-only"})
    kc = stack.kubeconfig(ann, "ann")
    wait_until(lambda: both(kc, "list", "configmaps", "default") == (True, True),
               GRANTED_WITHIN_S, 0.3, what="ann reads through Engineering on both paths")
    # Disabled in AD (userAccountControl 514): access ends on both paths.
    s.modify(f"dn: cn=Ann Lee,ou=Users,{AD_BASE}\nchangetype: modify\n"
             "replace: userAccountControl\nuserAccountControl: 514\n", AD_BASE)
    lost_on_both(kc, "list", "configmaps", "ann disabled in AD")
    # Enabled again in AD: the next login works again (the store user was disabled by the
    # directory, not by an administrator).
    s.modify(f"dn: cn=Ann Lee,ou=Users,{AD_BASE}\nchangetype: modify\n"
             "replace: userAccountControl\nuserAccountControl: 512\n", AD_BASE)
    stack.login(AD_LOGIN, "ann")


def test_directory_down_local_admin_still_logs_in(stack: Stack) -> None:
    stack.ldap.stop()
    with pytest.raises(ApiError) as e:
        stack.login(OL_LOGIN, "alice")
    assert e.value.status == 503 and "directory unreachable" in e.value.body["message"]
    with pytest.raises(ApiError) as e:
        stack.login(AD_LOGIN, "ann")
    assert e.value.status == 503
    assert stack.rest().login("admin", ADMIN_PASSWORD)
    out = stack.admin.call("POST", "/v3/authconfigs/openldap?action=testConnection", {})
    assert (out["ok"], out["stage"]) == (False, "connect"), out
