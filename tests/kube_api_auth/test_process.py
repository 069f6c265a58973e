"""The real ``kube-api-auth`` process: kubeconfig + list+watch, flags from the environment,
TLS serving, the static feed, clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from kube_api_auth import watch
from tests import tlsutil
from tests.kube_api_auth import objects, proc
from tests.kube_api_auth.faultapi import FaultApi

pytestmark = pytest.mark.timeout(60)
WAIT_S = 5.0
POLL_S = 0.05
API_TOKEN = "api-reader-token"
TOKENS, USERS, SECRETS = (r.path for r in watch.resources(objects.NAMESPACE))


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "k", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": API_TOKEN}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            }
        )
    )
    return path


async def review(http: aiohttp.ClientSession, url: str, token: str, **kw: Any) -> dict[str, Any]:
    async with http.post(
        url + "/v1/authenticate?timeout=30s", json=objects.review(token), **kw
    ) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def wait_ready(http: aiohttp.ClientSession, url: str, **kw: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        async with http.get(url + "/healthcheck", **kw) as resp:
            if resp.status == 200:
                return
        await asyncio.sleep(POLL_S)
    raise AssertionError("never ready")


@pytest.fixture
async def api() -> AsyncIterator[FaultApi]:
    fault = FaultApi()
    await fault.start()
    await fault.put(TOKENS, objects.token("kubeconfig-u-x1", "u-x"))
    await fault.put(SECRETS, objects.secret("kubeconfig-u-x1", "topsecret"))
    await fault.put(USERS, objects.user("u-x", groups=["team"]))
    yield fault
    await fault.stop()


async def test_process_watches_and_revokes_within_seconds(api: FaultApi, tmp_path: Path) -> None:
    api.required_token = API_TOKEN
    cfg = kubeconfig(tmp_path / "kubeconfig", api.url)
    async with (
        proc.running(
            ["--kubeconfig", str(cfg)], env={"KUBE_API_AUTH_CLUSTER_NAME": objects.CLUSTER}
        ) as service,
        aiohttp.ClientSession() as http,
    ):
        await wait_ready(http, service.url)
        answer = await review(http, service.url, "kubeconfig-u-x1:topsecret")
        assert answer["status"]["user"] == {"username": "u-x", "uid": "u-x", "groups": ["team"]}
        await api.remove(TOKENS, "kubeconfig-u-x1")
        started = time.monotonic()
        while (await review(http, service.url, "kubeconfig-u-x1:topsecret"))["status"][
            "authenticated"
        ]:
            assert time.monotonic() - started < WAIT_S, "revocation not seen"
            await asyncio.sleep(POLL_S)
        async with http.get(service.url + "/metrics") as resp:
            metrics = await resp.text()
        assert 'kube_api_auth_index_objects{kind="clusterauthtokens"} 0.0' in metrics
        assert "kube_api_auth_ready 1.0" in metrics
    assert any(r.startswith("watch ") for r in api.requests)


async def test_process_serves_tls_with_static_feed(tmp_path: Path) -> None:
    cert, key = tlsutil.self_signed(tmp_path)
    feed = tmp_path / "tokens.json"
    feed.write_text(
        json.dumps(
            {
                "clusterauthtokens": [objects.token("token-t", "u-t")],
                "secrets": [objects.secret("token-t", "pw")],
                "clusteruserattributes": [objects.user("u-t")],
            }
        )
    )
    async with proc.running(
        [
            "--tokens-file",
            str(feed),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--cluster-name",
            objects.CLUSTER,
        ]
    ) as service:
        assert service.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, service.url, ssl=ctx)
            answer = await review(http, service.url, "token-t:pw", ssl=ctx)
            assert answer["status"]["authenticated"] is True
            answer = await review(http, service.url, "token-t:nope", ssl=ctx)
            assert answer["status"]["error"] == "invalid token secret"


async def test_bad_kubeconfig_exits_with_message(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(RuntimeError, match="exited with 2"):
        await proc.start(["--kubeconfig", str(missing)])
