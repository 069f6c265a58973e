"""The review endpoint over real HTTP on loopback, the index fed directly."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kube_api_auth.constants import REQUEST_LINGER_S
from kube_api_auth.index import Index, Kind
from kube_api_auth.metrics import Metrics
from kube_api_auth.server import ReviewSettings, make_app
from tests.kube_api_auth import objects

pytestmark = pytest.mark.timeout(30)
V1 = "authentication.k8s.io/v1"
V1BETA1 = "authentication.k8s.io/v1beta1"
TEN_MIB = 10 * 1024 * 1024


def _future(seconds: int) -> str:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Service:
    url: str
    index: Index
    http: aiohttp.ClientSession

    async def review(self, token: str, api_version: str = V1) -> dict[str, Any]:
        async with self.http.post(
            self.url + "/v1/authenticate?timeout=30s", json=objects.review(token, api_version)
        ) as resp:
            assert resp.status == 200, await resp.text()
            body: dict[str, Any] = await resp.json()
            return body

    async def post_raw(self, data: Any, **kw: Any) -> tuple[int, str]:
        async with self.http.post(self.url + "/v1/authenticate", data=data, **kw) as resp:
            return resp.status, await resp.text()


def seeded_index() -> Index:
    index = Index()
    index.replace(
        Kind.TOKENS,
        [
            objects.token("kubeconfig-u-alice", "u-alice", expires_at=_future(3600)),
            objects.token("token-nolimit", "u-alice"),
            objects.token("token-expired", "u-alice", expires_at="2020-01-01T00:00:00Z"),
            objects.token("token-off", "u-alice", enabled=False),
            objects.token("token-other", "u-alice", cluster="c-other"),
            objects.token("token-bob", "u-bob"),
            objects.token("token-ghost", "u-ghost"),
            objects.token("token-nohash", "u-alice"),
        ],
    )
    index.replace(
        Kind.SECRETS,
        [
            objects.secret(name, "s3cret")
            for name in (
                "kubeconfig-u-alice",
                "token-nolimit",
                "token-expired",
                "token-off",
                "token-other",
                "token-bob",
                "token-ghost",
            )
        ],
    )
    index.replace(
        Kind.USERS,
        [
            objects.user("u-alice", groups=["devs", "local://g1"]),
            objects.user("u-bob", enabled=False),
        ],
    )
    return index


async def start(index: Index, settings: ReviewSettings | None = None) -> tuple[web.AppRunner, str]:
    app = make_app(index, Metrics(), settings or ReviewSettings(cluster_name=objects.CLUSTER))
    runner = web.AppRunner(app, access_log=None, lingering_time=REQUEST_LINGER_S)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def svc() -> AsyncIterator[Service]:
    index = seeded_index()
    runner, url = await start(index)
    async with aiohttp.ClientSession() as http:
        yield Service(url, index, http)
    await runner.cleanup()


async def test_valid_token_v1(svc: Service) -> None:
    answer = await svc.review("kubeconfig-u-alice:s3cret")
    assert answer == {
        "apiVersion": V1,
        "kind": "TokenReview",
        "status": {
            "authenticated": True,
            "user": {"username": "u-alice", "uid": "u-alice", "groups": ["devs", "local://g1"]},
        },
    }


async def test_valid_token_v1beta1_answers_in_v1beta1(svc: Service) -> None:
    answer = await svc.review("token-nolimit:s3cret", V1BETA1)
    assert answer["apiVersion"] == V1BETA1
    assert answer["status"]["authenticated"] is True


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("token-expired:s3cret", "token expired"),
        ("token-off:s3cret", "token disabled"),
        ("token-other:s3cret", "token not valid for this cluster"),
        ("kubeconfig-u-alice:wrong", "invalid token secret"),
        ("kubeconfig-u-alice:", "malformed token"),
        ("no-colon-at-all", "malformed token"),
        ("token-unknown:s3cret", "unknown token"),
        ("token-bob:s3cret", "user disabled"),
        ("token-ghost:s3cret", "user unknown"),
        ("token-nohash:s3cret", "token hash missing"),
    ],
)
async def test_refusals(svc: Service, token: str, error: str) -> None:
    answer = await svc.review(token)
    assert answer["status"] == {"authenticated": False, "error": error}
    assert "s3cret" not in json.dumps(answer)


async def test_revocation_and_user_disable_take_effect(svc: Service) -> None:
    assert (await svc.review("token-nolimit:s3cret"))["status"]["authenticated"]
    svc.index.upsert(Kind.USERS, objects.user("u-alice", enabled=False))
    assert (await svc.review("token-nolimit:s3cret"))["status"]["error"] == "user disabled"
    svc.index.upsert(Kind.USERS, objects.user("u-alice", groups=["ops"]))
    answer = await svc.review("token-nolimit:s3cret")
    assert answer["status"]["user"]["groups"] == ["ops"]
    svc.index.delete(Kind.TOKENS, objects.token("token-nolimit", "u-alice"))
    assert (await svc.review("token-nolimit:s3cret"))["status"]["error"] == "unknown token"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (
            json.dumps({**objects.review("a:b"), "kind": "SubjectAccessReview"}).encode(),
            "kind must be TokenReview",
        ),
        (json.dumps({**objects.review("a:b"), "apiVersion": "v1"}).encode(), "apiVersion"),
        (json.dumps({**objects.review("a:b"), "spec": {}}).encode(), "spec.token"),
        (json.dumps({**objects.review("a:b"), "spec": "x"}).encode(), "spec must be an object"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b'{"kind": "TokenReview", "spec": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
         "nested too deeply"),
    ],
)
async def test_malformed_review_is_400(svc: Service, body: bytes, message: str) -> None:
    status, text = await svc.post_raw(body, headers={"Content-Type": "application/json"})
    assert status == 400
    doc = json.loads(text)
    assert doc["kind"] == "Status" and doc["code"] == 400
    assert message in doc["message"]


async def test_ten_mib_body_is_413(svc: Service) -> None:
    status, text = await svc.post_raw(io.BytesIO(b"x" * TEN_MIB))
    assert status == 413
    assert "larger than" in json.loads(text)["message"]


async def test_ten_mib_chunked_body_is_413(svc: Service) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * (1024 * 1024)

    status, _ = await svc.post_raw(chunks())
    assert status == 413


async def test_healthcheck_and_metrics(svc: Service) -> None:
    async with svc.http.get(svc.url + "/healthcheck") as resp:
        assert resp.status == 200
    await svc.review("kubeconfig-u-alice:s3cret")
    await svc.review("kubeconfig-u-alice:nope")
    async with svc.http.get(svc.url + "/metrics") as resp:
        text = await resp.text()
    assert 'kube_api_auth_reviews_total{result="ok"} 1.0' in text
    assert 'kube_api_auth_reviews_total{result="invalid token secret"} 1.0' in text
    assert "kube_api_auth_review_seconds_bucket" in text


async def test_not_ready_answers_503_not_a_denial() -> None:
    index = Index()
    index.replace(Kind.TOKENS, [])
    runner, url = await start(index)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/healthcheck") as resp:
                assert resp.status == 503
            async with http.post(url + "/v1/authenticate", json=objects.review("a:b")) as resp:
                assert resp.status == 503
    finally:
        await runner.cleanup()


async def test_rate_bound_answers_429() -> None:
    runner, url = await start(
        seeded_index(),
        ReviewSettings(cluster_name=objects.CLUSTER, max_reviews_per_s=0.001, review_burst=3),
    )
    try:
        async with aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(5):
                async with http.post(
                    url + "/v1/authenticate", json=objects.review("token-nolimit:s3cret")
                ) as resp:
                    statuses.append(resp.status)
                    if resp.status == 429:
                        assert resp.headers["Retry-After"] == "1"
        assert statuses == [200, 200, 200, 429, 429]
    finally:
        await runner.cleanup()
