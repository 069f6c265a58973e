"""GitHub logins across replicas: the provider's callback, and a CLI's device-login polls, land on
whichever replica the front sends them to, not necessarily the one that started the login. Two
replicas on one etcd, the fake GitHub (a real process); the browser keeps its state cookie, as it
would behind one front address (same host, here 127.0.0.1 for both)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.auth_providers.fake_oauth import CLIENT_ID, CLIENT_SECRET, running
from tests.ha.cluster import Deployment, Replica
from tests.rest import ApiError, Rest

pytestmark = pytest.mark.slow

GH = "/v3-public/githubProviders/github"
HTTP_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    with running() as (_, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, fake_url: str) -> Iterator[Deployment]:
    with Deployment(tmp_path_factory.mktemp("ha-oauth"), replicas=2) as d:
        d.rest(d.replicas[0]).call("PUT", "/v3/authconfigs/github", {
            "enabled": True, "hostname": fake_url.removeprefix("http://"), "tlsEnabled": False,
            "apiPath": "/api/v3", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})
        yield d


def _fake(fake_url: str, path: str, body: dict[str, str]) -> None:
    requests.post(fake_url + path, json=body, timeout=HTTP_TIMEOUT_S).raise_for_status()


def _on(replica: Replica, url: str) -> str:
    """``url`` (a callback the provider redirected to) sent to ``replica`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=urlsplit(replica.url).netloc))


def _me(replica: Replica, token: str) -> str:
    out = Rest(replica.url, replica.ca_path, token).call("GET", "/v3/users?me=true")
    return str(out["data"][0]["username"])


def test_callback_on_another_replica_logs_in_once(deployment: Deployment, fake_url: str) -> None:
    r0, r1 = deployment.replicas
    _fake(fake_url, "/test/login_as", {"user": "alice"})
    browser = requests.Session()
    browser.trust_env = False
    start = browser.get(f"{r0.url}{GH}/authorize?responseType=json", verify=str(r0.ca_path),
                        allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert start.status_code == 302, start.text
    at_github = requests.get(start.headers["Location"], allow_redirects=False,
                             timeout=HTTP_TIMEOUT_S)
    callback = at_github.headers["Location"]
    done = browser.get(_on(r1, callback), verify=str(r1.ca_path), allow_redirects=False,
                       timeout=HTTP_TIMEOUT_S)
    assert done.status_code == 201, done.text
    assert _me(r0, str(done.json()["token"])) == "github_user://1001"
    # Used up on every replica: the same callback replayed on the one that began the login.
    replay = browser.get(_on(r0, callback), verify=str(r0.ca_path), allow_redirects=False,
                         timeout=HTTP_TIMEOUT_S)
    assert replay.status_code == 400 and "already used" in replay.text, replay.text


def test_device_login_polled_through_both_replicas(deployment: Deployment,
                                                   fake_url: str) -> None:
    r0, r1 = deployment.replicas
    start = Rest(r0.url, r0.ca_path).call("POST", f"{GH}?action=deviceCode")
    handle = {"deviceHandle": start["deviceHandle"]}

    def poll(replica: Replica) -> requests.Response:
        return requests.post(f"{replica.url}{GH}?action=deviceLogin", json=handle,
                             verify=str(replica.ca_path), timeout=HTTP_TIMEOUT_S)

    pending = poll(r1)
    assert pending.status_code == 202 and pending.json()["pending"] is True, pending.text
    _fake(fake_url, "/test/login_as", {"user": "bob"})
    _fake(fake_url, "/login/device", {"user_code": start["userCode"]})
    done = poll(r1)
    assert done.status_code == 201, done.text
    assert _me(r1, str(done.json()["token"])) == "github_user://1002"
    again = poll(r0)
    assert again.status_code == 400 and "unknown or expired" in again.text, again.text


def test_pending_logins_are_not_readable_in_etcd(deployment: Deployment) -> None:
    """What a login in flight keeps in etcd: a hash of its state as the key, the record
    encrypted (no PKCE verifier, nonce or GitHub device code in the clear)."""
    r0 = deployment.replicas[0]
    start = Rest(r0.url, r0.ca_path).call("POST", f"{GH}?action=deviceCode")
    kept = deployment.store_records("pending-logins")
    assert kept, "no pending login in etcd"
    assert not any(start["deviceHandle"] in k for k in kept)
    assert all(v.startswith('{"v":"aesgcm:') for v in kept.values()), list(kept.values())[:1]


def test_unknown_state_refused_on_any_replica(deployment: Deployment) -> None:
    for r in deployment.replicas:
        with pytest.raises(ApiError) as e:
            Rest(r.url, r.ca_path).call("GET", f"{GH}/callback?state=made-up&code=x")
        assert e.value.status == 400
