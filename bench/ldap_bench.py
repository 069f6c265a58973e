"""Directory login and group refresh against a real slapd (LDAPS, a test CA).

Method: slapd is seeded offline (slapadd) with N users (10,000) in 100 groups of 100 users, the
groups nested in 10 parent groups (nestedGroupMembershipEnabled on), and started as this process's
child; the server runs as its own process with the OpenLDAP provider configured over the REST API.
After a warm-up of 10 logins, 100 directory logins run at once (aiohttp, one connection each)
and each one's latency is measured from request to answer: ``ldap_login_p99_ms``. The baseline in
the same run: 100 concurrent local logins (scrypt, the server's two hash slots) of 100 local users:
``local_login_p99_ms``. Then R directory users (5,000) are put in the store with no groups (as if
their groups had all changed in the directory since their last login), and an administrator's
``refreshGroups`` of the whole provider is timed: ``group_refresh_s`` (every one of them is
rewritten). Targets: ldap_login_p99_ms <= 200, group_refresh_s <= 60.

    python3 bench/ldap_bench.py [--quick]     # --quick: 1,000 refreshed users, under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rancher_server.auth.providers.constants import DIRECTORY_PASSWORD_HASH
from rancher_server.auth.providers.principals import user_principal
from rancher_server.store import SQLiteStore
from tests.auth_providers.slapd import OL_BASE, OL_SVC, SVC_PW, USER_PW, Slapd
from tests.procs import ServerProc
from tests.rest import Rest

ADMIN_PASSWORD = "bench-admin-password-1"
LOCAL_PASSWORD = "bench-local-password-1"
DIRECTORY_USERS = 10_000
GROUP_SIZE = 100
PARENT_GROUPS = 10
CONCURRENT_LOGINS = 100
WARMUP_LOGINS = 10
REFRESH_USERS = 5_000
QUICK_REFRESH_USERS = 1_000
TARGET_LOGIN_P99_MS = 200.0
TARGET_REFRESH_S = 60.0
PCT_99 = 0.99


def seed_ldif(users: int) -> str:
    out = []
    groups = users // GROUP_SIZE
    for i in range(users):
        out.append(f"dn: uid=u{i},ou=people,{OL_BASE}\nobjectClass: inetOrgPerson\nuid: u{i}\n"
                   f"cn: User {i}\nsn: u{i}\nuserPassword: {USER_PW}\n")
    for g in range(groups):
        members = "".join(f"member: uid=u{i},ou=people,{OL_BASE}\n"
                          for i in range(g * GROUP_SIZE, (g + 1) * GROUP_SIZE))
        out.append(f"dn: cn=team{g},ou=groups,{OL_BASE}\nobjectClass: groupOfNames\n"
                   f"cn: team{g}\n{members}")
    for p in range(PARENT_GROUPS):
        members = "".join(f"member: cn=team{g},ou=groups,{OL_BASE}\n"
                          for g in range(p, groups, PARENT_GROUPS))
        out.append(f"dn: cn=division{p},ou=groups,{OL_BASE}\nobjectClass: groupOfNames\n"
                   f"cn: division{p}\n{members}")
    return "\n".join(out) + "\n"


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def timed_logins(url: str, ca: Path, path: str, names: list[str], password: str) -> (
        list[float]):
    ctx = ssl.create_default_context(cafile=str(ca))
    conn = aiohttp.TCPConnector(ssl=ctx, limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def one(name: str) -> float:
            t0 = time.perf_counter()
            async with session.post(url + path, json={"username": name,
                                                      "password": password}) as r:
                await r.read()
                assert r.status == 201, (r.status, await r.text())
            return (time.perf_counter() - t0) * 1000

        return list(await asyncio.gather(*(one(n) for n in names)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    refresh_users = QUICK_REFRESH_USERS if args.quick else REFRESH_USERS
    tmp = Path(tempfile.mkdtemp(prefix="ldap-bench-"))
    ldap = Slapd(tmp / "slapd", ldif={OL_BASE: seed_ldif(DIRECTORY_USERS)}).start()
    server = ServerProc(tmp / "data", tmp / "server.log",
                        env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD})
    try:
        server.start()
        admin = Rest(server.url, server.ca_path)
        admin.token = admin.login("admin", ADMIN_PASSWORD)
        admin.call("PUT", "/v3/authconfigs/openldap", {
            "enabled": True, "servers": ["127.0.0.1"], "port": ldap.tls_port, "tls": "ldaps",
            "certificate": ldap.ca_pem, "serviceAccountDistinguishedName": OL_SVC,
            "serviceAccountPassword": SVC_PW, "userSearchBase": f"ou=people,{OL_BASE}",
            "groupSearchBase": f"ou=groups,{OL_BASE}", "nestedGroupMembershipEnabled": True,
            "refreshIntervalS": 24 * 3600})
        login = "/v3-public/openLdapProviders/openldap?action=login"
        asyncio.run(timed_logins(server.url, server.ca_path, login,
                                 [f"u{i}" for i in range(WARMUP_LOGINS)], USER_PW))
        names = [f"u{DIRECTORY_USERS - 1 - i}" for i in range(CONCURRENT_LOGINS)]
        first_ms = asyncio.run(timed_logins(server.url, server.ca_path, login, names, USER_PW))
        ldap_ms = asyncio.run(timed_logins(server.url, server.ca_path, login, names, USER_PW))

        for i in range(CONCURRENT_LOGINS):
            admin.call("POST", "/v3/users", {"username": f"local{i}",
                                             "password": LOCAL_PASSWORD})
        local_ms = asyncio.run(timed_logins(
            server.url, server.ca_path, "/v3-public/localProviders/local?action=login",
            [f"local{i}" for i in range(CONCURRENT_LOGINS)], LOCAL_PASSWORD))

        store = SQLiteStore(server.data_dir / "rancher.db")
        try:
            existing = {u.username for u in store.list_users()}
            for i in range(refresh_users):
                name = user_principal("openldap", f"uid=u{i},ou=people,{OL_BASE}")
                if name in existing:
                    store.set_user_groups(store.user_by_username(name).id, ())  # type: ignore[union-attr]
                else:
                    store.create_user(name, f"User {i}", DIRECTORY_PASSWORD_HASH)
        finally:
            store.close()
        t0 = time.perf_counter()
        report = admin.call("POST", "/v3/authconfigs/openldap?action=refreshGroups")
        refresh_s = time.perf_counter() - t0
    finally:
        server.stop()
        ldap.stop()
    print(json.dumps({
        "bench": "ldap", "quick": args.quick, "directory_users": DIRECTORY_USERS,
        "concurrent_logins": CONCURRENT_LOGINS,
        "ldap_first_login_p99_ms": round(pct(first_ms, PCT_99), 1),
        "ldap_login_p50_ms": round(statistics.median(ldap_ms), 1),
        "ldap_login_p99_ms": round(pct(ldap_ms, PCT_99), 1),
        "local_login_p50_ms": round(statistics.median(local_ms), 1),
        "local_login_p99_ms": round(pct(local_ms, PCT_99), 1),
        "refreshed_users": report["users"], "changed_users": report["changed"],
        "group_refresh_s": round(refresh_s, 2),
        "target_ldap_login_p99_ms": TARGET_LOGIN_P99_MS, "target_group_refresh_s": TARGET_REFRESH_S,
    }))


if __name__ == "__main__":
    main()
