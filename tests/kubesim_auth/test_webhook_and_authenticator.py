"""The token webhook against a real HTTPS webhook, and the Authenticator behind a real TLS
server that asks for client certificates (as the stand-in's server does)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kubesim.auth import Authenticator
from kubesim.auth.authenticator import encode_websocket_token
from kubesim.auth.reviews import user_info_json
from kubesim.auth.webhook import WebhookAuthenticator, load_config
from kubesim.certs import Pki, make_pki
from kubesim.options import Options
from kubesim.store import Store

from .captures import load
from .servers import client_context, https_server, server_context, webhook_kubeconfig

TIMEOUT_S = 10
BOB = {
    "authenticated": True,
    "user": {
        "username": "bob",
        "uid": "bob-uid",
        "groups": ["webhook-devs"],
        "extra": {"example.org/team": ["blue"]},
    },
}


@dataclass
class Webhook:
    url: str
    calls: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
async def webhook(pki: Pki) -> AsyncIterator[Webhook]:
    calls: list[dict[str, Any]] = []

    async def review(request: web.Request) -> web.Response:
        raw = await request.read()
        calls.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "raw": raw,
            }
        )
        token = json.loads(raw)["spec"]["token"]
        status: dict[str, Any] = (
            BOB
            if token == "webhook-token-bob"
            else {"authenticated": False, "error": "unknown token"}
        )
        answer = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}
        return web.json_response(answer)

    async with https_server(review, server_context(pki, request_client_cert=False)) as base:
        yield Webhook(f"{base}/authenticate", calls)


async def test_webhook_request_is_what_kube_apiserver_sends(
    webhook: Webhook, pki: Pki, tmp_path: Path
) -> None:
    config = load_config(webhook_kubeconfig(tmp_path, webhook.url, pki))
    authn = WebhookAuthenticator(config, ["https://kubernetes.default.svc.cluster.local"])
    try:
        user = await authn.authenticate("webhook-token-bob")
    finally:
        await authn.close()
    assert user is not None
    assert user_info_json(user) == BOB["user"]
    golden = load("webhook/tokenreview-request-v1.json")["request"]
    (call,) = webhook.calls
    assert call["method"] == golden["method"]
    assert call["path"] == golden["path"]
    assert call["raw"].decode() == golden["raw_body"]
    for name, value in golden["headers"]:
        if name not in ("Host", "Content-Length"):
            assert call["headers"][name] == value


async def test_webhook_caches_successes_only(webhook: Webhook, pki: Pki, tmp_path: Path) -> None:
    config = load_config(webhook_kubeconfig(tmp_path, webhook.url, pki))
    authn = WebhookAuthenticator(config, ["api"])
    try:
        assert await authn.authenticate("webhook-token-bob") is not None
        assert await authn.authenticate("webhook-token-bob") is not None
        assert len(webhook.calls) == 1
        assert await authn.authenticate("nope") is None
        assert await authn.authenticate("nope") is None
        assert len(webhook.calls) == 3
    finally:
        await authn.close()


async def test_webhook_unreachable_is_not_authenticated(pki: Pki, tmp_path: Path) -> None:
    config = load_config(webhook_kubeconfig(tmp_path, "https://127.0.0.1:1/authenticate", pki))
    authn = WebhookAuthenticator(config, ["api"])
    try:
        assert await authn.authenticate("webhook-token-bob") is None
    finally:
        await authn.close()


@pytest.fixture
async def whoami(
    webhook: Webhook, pki: Pki, tmp_path: Path
) -> AsyncIterator[tuple[str, Authenticator, Store]]:
    """A TLS server that answers with the authenticated user (401 when None)."""
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('alice-token,alice,alice-uid,"devs"\n')
    options = Options(
        token_auth_file=str(tokens),
        authentication_token_webhook_config_file=str(
            webhook_kubeconfig(tmp_path, webhook.url, pki)
        ),
    )
    store = Store()
    store.seed()
    store.create_item("", "serviceaccounts", {"metadata": {"name": "bot", "namespace": "default"}})
    authn = Authenticator(options, store)

    async def handler(request: web.Request) -> web.Response:
        user = await authn.authenticate(request)
        if user is None:
            return web.json_response({"code": 401}, status=401)
        return web.json_response(user_info_json(user))

    try:
        async with https_server(handler, server_context(pki, request_client_cert=True)) as base:
            yield base, authn, store
    finally:
        await authn.close()


async def _get(
    base: str, pki: Pki, *, cert: bool = False, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        ctx = client_context(pki, with_admin_cert=cert)
        async with session.get(f"{base}/whoami", ssl=ctx, headers=headers) as resp:
            return resp.status, await resp.json()


async def test_client_certificate(whoami: tuple[str, Authenticator, Store], pki: Pki) -> None:
    status, user = await _get(whoami[0], pki, cert=True)
    assert status == 200
    assert user["username"] == "kube-admin"
    assert user["groups"] == ["system:masters", "system:authenticated"]
    (cred,) = user["extra"]["authentication.kubernetes.io/credential-id"]
    assert cred.startswith("X509SHA256=")
    assert len(cred) == len("X509SHA256=") + 64


async def test_static_token_and_anonymous_and_bad_token(
    whoami: tuple[str, Authenticator, Store], pki: Pki
) -> None:
    base = whoami[0]
    assert await _get(base, pki, headers={"Authorization": "Bearer alice-token"}) == (
        200,
        {"username": "alice", "uid": "alice-uid", "groups": ["devs", "system:authenticated"]},
    )
    assert await _get(base, pki) == (
        200,
        {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
    )
    assert (await _get(base, pki, headers={"Authorization": "Bearer wrong"}))[0] == 401


async def test_webhook_and_service_account_tokens(
    whoami: tuple[str, Authenticator, Store], pki: Pki
) -> None:
    base, authn, store = whoami
    status, user = await _get(base, pki, headers={"Authorization": "Bearer webhook-token-bob"})
    assert status == 200
    assert user["groups"] == ["webhook-devs", "system:authenticated"]
    sa = store.get_item("", "serviceaccounts", "default", "bot")
    assert sa is not None
    token = authn.sa_tokens.issue("default", sa).token
    status, user = await _get(base, pki, headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    assert user["username"] == "system:serviceaccount:default:bot"
    assert user["groups"][-1] == "system:authenticated"
    proto = f"v5.channel.k8s.io, {encode_websocket_token(token)}"
    status, user = await _get(base, pki, headers={"Sec-WebSocket-Protocol": proto})
    assert user["username"] == "system:serviceaccount:default:bot"


async def test_webhook_with_client_certificate(pki: Pki, tmp_path: Path) -> None:
    seen: list[str] = []

    async def review(request: web.Request) -> web.Response:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        cert = ssl_object.getpeercert() if ssl_object is not None else None
        seen.append(str(dict(x[0] for x in cert["subject"])["commonName"]) if cert else "")
        answer = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": BOB}
        return web.json_response(answer)

    ctx = server_context(pki, request_client_cert=True, require=True)
    async with https_server(review, ctx) as base:
        for client_cert, expected in ((True, "bob"), (False, None)):
            path = webhook_kubeconfig(
                tmp_path, f"{base}/authenticate", pki, client_cert=client_cert
            )
            authn = WebhookAuthenticator(load_config(path), ["api"])
            try:
                user = await authn.authenticate("webhook-token-bob")
            finally:
                await authn.close()
            assert (user.name if user else None) == expected
    assert seen == ["kube-admin"]
