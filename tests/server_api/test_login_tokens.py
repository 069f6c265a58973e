"""Login, tokens, logout, revocation, expiry and throttling against the app in-process."""

from __future__ import annotations

import asyncio

from rancher_server.auth import authenticate_bearer
from rancher_server.auth.constants import (
    LOGIN_ADDRESS_FREE_FAILURES,
    LOGIN_MAX_CONCURRENT_HASHES,
    LOGIN_USER_FREE_FAILURES,
)
from tests.server_api.conftest import ADMIN_PASSWORD, LOGIN_PATH, USER_PASSWORD, Api


async def test_login_returns_rancher_token(api: Api) -> None:
    resp = await api.client.post(LOGIN_PATH,
                                 json={"username": "admin", "password": ADMIN_PASSWORD})
    assert resp.status == 201 and resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert body["type"] == "token" and body["token"].startswith(body["id"] + ":")
    assert body["id"].startswith("token-") and body["userId"].startswith("u-")
    assert body["expiresAt"].endswith("Z") and body["ttl"] > 0
    status, me = await api.call("GET", "/v3/users?me=true", body["token"])
    assert status == 200 and me["data"][0]["username"] == "admin" and me["data"][0]["admin"]


async def test_wrong_password_and_unknown_user_get_the_same_401(api: Api) -> None:
    s1, b1 = await api.call("POST", LOGIN_PATH, json={"username": "admin", "password": "nope"})
    s2, b2 = await api.call("POST", LOGIN_PATH, json={"username": "ghost", "password": "nope"})
    assert s1 == s2 == 401
    assert b1 == b2 and b1["code"] == "Unauthorized" and b1["type"] == "error"


async def test_failed_logins_are_throttled_with_retry_after(api: Api) -> None:
    for _ in range(LOGIN_USER_FREE_FAILURES - 1):
        status, _ = await api.call("POST", LOGIN_PATH, json={"username": "admin", "password": "x"})
        assert status == 401
    status, _ = await api.call("POST", LOGIN_PATH, json={"username": "admin", "password": "x"})
    assert status == 401  # the failure that starts the lockout
    resp = await api.client.post(LOGIN_PATH, json={"username": "admin",
                                                   "password": ADMIN_PASSWORD})
    assert resp.status == 429  # even the right password while locked
    retry = int(resp.headers["Retry-After"])
    assert retry >= 1
    await asyncio.sleep(retry + 0.1)
    assert await api.admin()  # the lockout ends; success resets the counter
    # Another username from the same address is not locked by admin's failures.
    status, _ = await api.call("POST", LOGIN_PATH, json={"username": "bob", "password": "x"})
    assert status == 401


async def test_missing_or_bad_token_gets_json_401(api: Api) -> None:
    for auth in (None, "Bearer nonsense", "Bearer token-abcde:" + "a" * 52, "Basic Zm9vOmJhcg=="):
        headers = {"Authorization": auth} if auth else {}
        resp = await api.client.get("/v3/clusters", headers=headers)
        assert resp.status == 401
        body = await resp.json()
        assert body == {"type": "error", "status": 401, "code": "Unauthorized",
                        "message": body["message"]}


async def test_wrong_secret_of_a_real_token_is_refused(api: Api) -> None:
    token = await api.admin()
    token_id, secret = token.split(":")
    forged = f"{token_id}:{secret[:-1]}{'a' if secret[-1] != 'a' else 'b'}"
    assert (await api.call("GET", "/v3/tokens", forged))[0] == 401


async def test_token_ttl_expiry(api: Api) -> None:
    token = await api.login("admin", ADMIN_PASSWORD, ttl=2000)
    assert (await api.call("GET", "/v3/tokens", token))[0] == 200
    await asyncio.sleep(2.1)
    assert (await api.call("GET", "/v3/tokens", token))[0] == 401


async def test_revocation_takes_effect_on_the_next_request(api: Api) -> None:
    admin = await api.admin()
    status, created = await api.call("POST", "/v3/tokens", admin,
                                     json={"description": "ci", "ttl": 3_600_000})
    assert status == 201 and created["token"].startswith("token-")
    api_token = created["token"]
    assert await authenticate_bearer(api.state, f"Bearer {api_token}") is not None
    status, listed = await api.call("GET", "/v3/tokens", admin)
    assert created["id"] in {t["id"] for t in listed["data"]}
    assert all("token" not in t for t in listed["data"])  # secrets are never listed
    assert (await api.call("DELETE", f"/v3/tokens/{created['id']}", admin))[0] == 200
    assert await authenticate_bearer(api.state, f"Bearer {api_token}") is None
    assert (await api.call("GET", "/v3/tokens", api_token))[0] == 401


async def test_logout_revokes_only_the_calling_token(api: Api) -> None:
    t1 = await api.admin()
    t2 = await api.admin()
    assert (await api.call("POST", "/v3/tokens?action=logout", t1, json={}))[0] == 200
    assert (await api.call("GET", "/v3/tokens", t1))[0] == 401
    assert (await api.call("GET", "/v3/tokens", t2))[0] == 200


async def test_disabled_users_token_is_refused_and_login_fails(api: Api) -> None:
    admin = await api.admin()
    bob = await api.new_user(admin, "bob")
    bob_token = await api.login("bob", USER_PASSWORD)
    assert (await api.call("GET", "/v3/users?me=true", bob_token))[0] == 200
    status, body = await api.call("PUT", f"/v3/users/{bob['id']}", admin, json={"enabled": False})
    assert status == 200 and body["enabled"] is False
    assert (await api.call("GET", "/v3/users?me=true", bob_token))[0] == 401
    status, _ = await api.call("POST", LOGIN_PATH,
                               json={"username": "bob", "password": USER_PASSWORD})
    assert status == 401
    await api.call("PUT", f"/v3/users/{bob['id']}", admin, json={"enabled": True})
    assert (await api.call("GET", "/v3/users?me=true", bob_token))[0] == 200


async def test_users_cannot_see_or_revoke_others_tokens(api: Api) -> None:
    admin = await api.admin()
    await api.new_user(admin, "bob")
    bob = await api.login("bob", USER_PASSWORD)
    admin_id = admin.split(":")[0]
    assert (await api.call("GET", f"/v3/tokens/{admin_id}", bob))[0] == 404
    assert (await api.call("DELETE", f"/v3/tokens/{admin_id}", bob))[0] == 404
    status, listed = await api.call("GET", "/v3/tokens?all=true", bob)
    assert status == 200 and {t["userId"] for t in listed["data"]} == {
        (await api.call("GET", "/v3/users?me=true", bob))[1]["data"][0]["id"]}


async def test_logins_are_audited_without_secrets(api: Api) -> None:
    token = await api.admin()
    await api.call("POST", LOGIN_PATH, json={"username": "admin", "password": "wrong-one"})
    status, log = await api.call("GET", "/v3/auditlogs", token)
    assert status == 200
    results = [(e["action"], e["result"].split()[0]) for e in log["data"]]
    assert ("login", "failure") in results and ("login", "success") in results
    text = str(log)
    assert token.split(":")[1] not in text and ADMIN_PASSWORD not in text
    assert "wrong-one" not in text


async def test_change_own_password(api: Api) -> None:
    admin = await api.admin()
    await api.new_user(admin, "carol")
    carol = await api.login("carol", USER_PASSWORD)
    status, _ = await api.call("POST", "/v3/users?action=changepassword", carol,
                               json={"currentPassword": "wrong", "newPassword": "n" * 16})
    assert status == 422
    status, _ = await api.call("POST", "/v3/users?action=changepassword", carol,
                               json={"currentPassword": USER_PASSWORD, "newPassword": "n" * 16})
    assert status == 200
    assert await api.login("carol", "n" * 16)


async def test_one_address_spraying_usernames_is_throttled(api: Api) -> None:
    """Per-address throttling, with attempts in flight at once: those queued for a hash slot are
    re-checked, so the 401s stop near the threshold."""
    attempts = LOGIN_ADDRESS_FREE_FAILURES + 10
    results = await asyncio.gather(*(
        api.call("POST", LOGIN_PATH, json={"username": f"user{i}", "password": "guess"})
        for i in range(attempts)
    ))
    statuses = [s for s, _ in results]
    assert statuses.count(429) >= 1
    assert statuses.count(401) <= LOGIN_ADDRESS_FREE_FAILURES + LOGIN_MAX_CONCURRENT_HASHES
    assert set(statuses) <= {401, 429}
