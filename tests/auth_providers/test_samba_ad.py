"""Active Directory login against a real AD domain controller: Samba (Debian's ``samba``),
provisioned by the test into a temporary directory (``samba.py``), through the server's real
interfaces and the whole stack (the stand-in with RBAC and kube-api-auth as its token webhook,
the server, an imported agent): configure the provider and test the connection over the REST API
with an ordinary domain user as the service account over LDAPS, log in with sAMAccountName,
userPrincipalName (explicit, and the implicit ``sAMAccountName@domain`` of an account without
one) and ``DOMAIN\\user``, nested groups from member/memberOf and from tokenGroups (binary SIDs,
the primary group), a disabled account and a wrong password refused, then a group bound to the
cluster: kubectl through the proxy and the direct path, the user removed from the group, the
nesting undone and the account disabled with ``samba-tool``, and access ends within the refresh
period."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.auth_providers.samba import (
    ADMIN_PW,
    BASE,
    GROUPS,
    PEOPLE,
    SVC_DN,
    SVC_PW,
    USER_PW,
    SambaDC,
    group_dn,
    user_dn,
)
from tests.auth_providers.test_directory_e2e import (
    AD_LOGIN,
    GRANTED_WITHIN_S,
    PROXY_LOST_WITHIN_S,
    REFRESH_INTERVAL_S,
    lost_on_both,
)
from tests.e2e.ace_stack import ace_stack
from tests.e2e.test_access_e2e import both, can
from tests.kube import KubeSimProc
from tests.procs import ServerProc, wait_until
from tests.rest import ApiError, Rest

pytestmark = pytest.mark.slow

AD = "/v3/authconfigs/activedirectory"
DEVS = f"activedirectory_group://{group_dn('Developers')}"
ENG = f"activedirectory_group://{group_dn('Engineering')}"
DOMAIN_USERS = f"activedirectory_group://CN=Domain Users,CN=Users,{BASE}"


@dataclass
class Stack:
    tmp: Path
    server: ServerProc
    admin: Rest
    cluster: str
    dc: SambaDC

    def rest(self) -> Rest:
        return Rest(self.server.url, self.server.ca_path)

    def login(self, username: str, password: str = USER_PW) -> Rest:
        r = self.rest()
        r.token = str(r.call("POST", AD_LOGIN, {"username": username,
                                                "password": password})["token"])
        return r

    def me(self, rest: Rest) -> dict[str, Any]:
        me = rest.call("GET", "/v3/users?me=true")["data"][0]
        return dict(self.admin.call("GET", f"/v3/users/{me['id']}"))

    def kubeconfig(self, rest: Rest, name: str) -> Path:
        out = rest.call("POST", f"/v3/clusters/{self.cluster}?action=generateKubeconfig")
        kc = self.tmp / f"{name}.kubeconfig"
        kc.write_text(out["config"])
        assert {c["name"] for c in yaml.safe_load(out["config"])["contexts"]} == {
            "edge", "edge-direct"}
        return kc


def ad_config(dc: SambaDC, **over: Any) -> dict[str, Any]:
    """AD's defaults for everything else (person, group, name, nested groups)."""
    return {"enabled": True, "servers": [dc.address], "tls": "ldaps", "certificate": dc.ca_pem,
            "serviceAccountDistinguishedName": SVC_DN, "serviceAccountPassword": SVC_PW,
            "userSearchBase": PEOPLE, "groupSearchBase": GROUPS,
            "refreshIntervalS": REFRESH_INTERVAL_S, **over}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, samba_dc: SambaDC) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("samba-ad")
    with ace_stack(tmp) as s:
        admin, cid = s["admin"], str(s["cluster"])
        assert isinstance(admin, Rest)
        admin.call("PUT", f"/v3/clusters/{cid}/authorizedendpoint", {"enabled": True})
        sim, server = s["sim"], s["server"]
        assert isinstance(sim, KubeSimProc) and isinstance(server, ServerProc)
        admin.call("PUT", AD, ad_config(samba_dc))
        yield Stack(tmp, server, admin, cid, samba_dc)


def test_connection_test_against_samba(stack: Stack) -> None:
    admin = stack.admin
    ok = admin.call("POST", f"{AD}?action=testConnection", {"username": "ann",
                                                             "password": USER_PW})
    assert ok["ok"] is True, ok
    assert [st["stage"] for st in ok["steps"]] == [
        "dns", "connect", "tls", "bind", "search", "group lookup", "login"], ok
    assert ok["steps"][-1]["message"] == (
        f"activedirectory_user://{user_dn('ann')} with 2 groups"), ok
    # The account is disabled: AD refuses its bind (data 533) as it refuses a wrong password;
    # the step says which.
    ben = admin.call("POST", f"{AD}?action=testConnection", {"username": "ben",
                                                              "password": USER_PW})
    assert (ben["ok"], ben["stage"], ben["message"]) == (
        False, "login", "account disabled in the directory"), ben
    wrong = admin.call("POST", f"{AD}?action=testConnection", {"username": "ann",
                                                                "password": "Not-hers-1!"})
    assert (wrong["ok"], wrong["stage"], wrong["message"]) == (
        False, "login", "wrong password"), wrong
    bind = admin.call("POST", f"{AD}?action=testConnection",
                      {"serviceAccountPassword": "Wrong-secret-1!"})
    assert (bind["ok"], bind["stage"]) == (False, "bind"), bind
    from tests.tlsutil import self_signed
    other = stack.tmp / "other-ca"
    other.mkdir()
    bad = admin.call("POST", f"{AD}?action=testConnection",
                     {"certificate": self_signed(other, "another-ca")[0].read_text()})
    assert (bad["ok"], bad["stage"]) == (False, "tls"), bad
    # The built-in Administrator has no userPrincipalName; AD still takes
    # Administrator@<the domain's DNS name> (the implicit UPN).
    admin_upn = admin.call("POST", f"{AD}?action=testConnection", {
        "userSearchBase": BASE, "username": "Administrator@corp.example",
        "password": ADMIN_PW})
    assert admin_upn["ok"] is True, admin_upn
    assert admin_upn["steps"][-1]["message"].startswith(
        f"activedirectory_user://CN=Administrator,CN=Users,{BASE} with"), admin_upn
    # ... but not at another domain's name.
    other_domain = admin.call("POST", f"{AD}?action=testConnection", {
        "userSearchBase": BASE, "username": "Administrator@other.example",
        "password": ADMIN_PW})
    assert (other_domain["stage"], other_domain["message"]) == ("login", "no such user")


def test_login_forms_nested_groups_and_refusals(stack: Stack) -> None:
    ann = stack.login("ann")  # sAMAccountName
    me = stack.me(ann)
    assert me["username"] == f"activedirectory_user://{user_dn('ann')}"
    assert me["name"] == "Ann Lee"  # AD's default display attribute: name
    assert sorted(me["groups"]) == sorted([DEVS, ENG])  # Engineering through Developers
    for form in ("ann@corp.example", "CORP\\ann", "ANN"):  # UPN, DOMAIN\user, any case
        assert stack.me(stack.login(form))["id"] == me["id"], form
    assert stack.me(stack.login("cat"))["groups"] == []
    # Wrong password, disabled (userAccountControl 514), unknown: the same 401; an empty
    # password (an anonymous bind AD would accept) never reaches the directory.
    for username, password, status in (("ann", "Not-hers-1!", 401), ("ben", USER_PW, 401),
                                       ("nobody", USER_PW, 401), ("ann", "", 422)):
        with pytest.raises(ApiError) as e:
            stack.login(username, password)
        assert e.value.status == status, (username, e.value.body)


def test_token_groups_binary_sids_and_primary_group(stack: Stack) -> None:
    admin = stack.admin
    me = stack.me(stack.login("ann"))
    try:
        admin.call("PUT", AD, {"tokenGroupsEnabled": True})
        out = admin.call("POST", f"/v3/users/{me['id']}?action=refreshGroups")
        assert sorted(out["groups"]) == sorted([DEVS, ENG]), out["groups"]
        # Over the whole domain: tokenGroups also carries the primary group (Domain Users),
        # which neither memberOf nor member ever lists, and the builtin Users alias.
        admin.call("PUT", AD, {"groupSearchBase": BASE})
        out = admin.call("POST", f"/v3/users/{me['id']}?action=refreshGroups")
        assert set(out["groups"]) == {
            DEVS, ENG, DOMAIN_USERS, f"activedirectory_group://CN=Users,CN=Builtin,{BASE}"}, (
            out["groups"])
        admin.call("PUT", AD, {"tokenGroupsEnabled": False})
        out = admin.call("POST", f"/v3/users/{me['id']}?action=refreshGroups")
        assert DOMAIN_USERS not in out["groups"] and {DEVS, ENG} <= set(out["groups"])
    finally:
        admin.call("PUT", AD, {"tokenGroupsEnabled": False, "groupSearchBase": GROUPS})
    out = admin.call("POST", f"/v3/users/{me['id']}?action=refreshGroups")
    assert sorted(out["groups"]) == sorted([DEVS, ENG])


def test_group_rights_end_when_samba_removes_membership_or_disables(stack: Stack) -> None:
    admin, dc = stack.admin, stack.dc
    admin.call("POST", "/v3/clusterroletemplatebindings", {
        "clusterId": stack.cluster, "groupPrincipalId": ENG, "roleTemplateId": "read-only"})
    ann = stack.login("ann")
    uid = stack.me(ann)["id"]
    kc = stack.kubeconfig(ann, "ann")
    wait_until(lambda: both(kc, "list", "configmaps", "default") == (True, True),
               GRANTED_WITHIN_S, 0.3, what="ann reads through Engineering on both paths")

    def groups() -> list[str]:
        return sorted(admin.call("GET", f"/v3/users/{uid}")["groups"])

    # Removed from Developers (and so from Engineering) in AD: the periodic refresh sees it.
    dc.tool("group", "removemembers", "Developers", "ann")
    lost_on_both(kc, "list", "configmaps", "ann removed from Developers in Samba")
    assert groups() == []

    dc.tool("group", "addmembers", "Developers", "ann")
    out = admin.call("POST", f"/v3/users/{uid}?action=refreshGroups")
    assert sorted(out["groups"]) == sorted([DEVS, ENG])
    wait_until(lambda: can(kc, "edge", "list", "configmaps", "default"), GRANTED_WITHIN_S,
               0.3, what="ann's rights back")

    # The nesting undone: Developers stays, Engineering (and the binding's rights) goes.
    dc.tool("group", "removemembers", "Engineering", "Developers")
    wait_until(lambda: groups() == [DEVS], PROXY_LOST_WITHIN_S, 0.2,
               what="Engineering gone from ann's groups at the next refresh")
    wait_until(lambda: not can(kc, "edge", "list", "configmaps", "default"),
               PROXY_LOST_WITHIN_S, 0.2, what="proxy refuses without Engineering")
    dc.tool("group", "addmembers", "Engineering", "Developers")
    admin.call("POST", f"/v3/users/{uid}?action=refreshGroups")
    wait_until(lambda: can(kc, "edge", "list", "configmaps", "default"), GRANTED_WITHIN_S,
               0.3, what="ann's rights back with the nesting")

    # Disabled in AD (userAccountControl's ACCOUNTDISABLE): access ends on both paths, the
    # token with it; enabled again, she logs in again.
    t0 = time.monotonic()
    dc.tool("user", "disable", "ann")
    lost_on_both(kc, "list", "configmaps", "ann disabled in Samba")
    with pytest.raises(ApiError) as e:
        ann.call("GET", "/v3/users?me=true")
    assert e.value.status == 401
    print(f"disabled to refused: {time.monotonic() - t0:.1f} s")
    dc.tool("user", "enable", "ann")
    assert stack.me(stack.login("ann"))["groups"] == sorted([DEVS, ENG])
