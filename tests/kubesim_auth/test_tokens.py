"""Service-account JWTs (round trip and every rejection), and the static token file."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kubesim.auth import jwt
from kubesim.auth.serviceaccounts import ServiceAccountTokens, TokenError
from kubesim.auth.tokencontroller import LegacyTokenController
from kubesim.auth.tokenfile import TokenFileError, load_token_file, lookup
from kubesim.store import Store

HOUR_S = 3600


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def store() -> Store:
    s = Store()
    s.seed()
    s.create_item("", "namespaces", {"metadata": {"name": "tr"}})
    s.create_item("", "serviceaccounts", {"metadata": {"name": "builder", "namespace": "tr"}})
    return s


def _sa(store: Store) -> dict[str, Any]:
    sa = store.get_item("", "serviceaccounts", "tr", "builder")
    assert sa is not None
    return sa


def test_round_trip_claims_and_user(store: Store, key: rsa.RSAPrivateKey) -> None:
    tokens = ServiceAccountTokens(store, key=key)
    issued = tokens.issue("tr", _sa(store))
    header = json.loads(jwt.b64url_decode(issued.token.split(".")[0]))
    assert header == {"alg": "RS256", "kid": jwt.key_id(key.public_key())}
    claims = issued.claims
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert claims["sub"] == "system:serviceaccount:tr:builder"
    assert claims["exp"] - claims["iat"] == HOUR_S
    assert claims["kubernetes.io"] == {
        "namespace": "tr",
        "serviceaccount": {"name": "builder", "uid": _sa(store)["metadata"]["uid"]},
    }
    user = tokens.validate(issued.token)
    assert user.name == "system:serviceaccount:tr:builder"
    assert user.uid == _sa(store)["metadata"]["uid"]
    assert user.groups == ["system:serviceaccounts", "system:serviceaccounts:tr"]
    assert user.extra == {"authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"]}


def test_expired_token_is_rejected(store: Store, key: rsa.RSAPrivateKey) -> None:
    tokens = ServiceAccountTokens(store, key=key)
    issued = tokens.issue("tr", _sa(store), expiration_s=600, now=time.time() - 601)
    with pytest.raises(TokenError, match="expired"):
        tokens.validate(issued.token)


def test_wrong_key_is_rejected(
    store: Store, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    forged = ServiceAccountTokens(store, key=other_key).issue("tr", _sa(store)).token
    with pytest.raises(TokenError, match="invalid bearer token"):
        ServiceAccountTokens(store, key=key).validate(forged)


def test_tampered_claims_are_rejected(store: Store, key: rsa.RSAPrivateKey) -> None:
    tokens = ServiceAccountTokens(store, key=key)
    head, _, sig = tokens.issue("tr", _sa(store)).token.split(".")
    claims = jwt.b64url(json.dumps({"sub": "system:serviceaccount:kube-system:admin"}).encode())
    with pytest.raises(TokenError):
        tokens.validate(f"{head}.{claims}.{sig}")


def test_deleted_and_recreated_service_account(store: Store, key: rsa.RSAPrivateKey) -> None:
    tokens = ServiceAccountTokens(store, key=key)
    token = tokens.issue("tr", _sa(store)).token
    store.delete_item("", "serviceaccounts", "tr", "builder")
    with pytest.raises(TokenError, match='serviceaccounts "builder" not found'):
        tokens.validate(token)
    store.create_item("", "serviceaccounts", {"metadata": {"name": "builder", "namespace": "tr"}})
    with pytest.raises(TokenError, match="does not match claim"):
        tokens.validate(token)


def test_audiences(store: Store, key: rsa.RSAPrivateKey) -> None:
    tokens = ServiceAccountTokens(store, key=key)
    token = tokens.issue("tr", _sa(store), audiences=["vault"]).token
    with pytest.raises(TokenError, match="audiences"):
        tokens.validate(token)
    assert tokens.validate(token, audiences=["vault"]).name.endswith(":builder")


def test_pod_bound_token(store: Store, key: rsa.RSAPrivateKey) -> None:
    tokens = ServiceAccountTokens(store, key=key)
    pod = store.create_item(
        "",
        "pods",
        {
            "metadata": {"name": "p", "namespace": "tr"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        },
    )
    token = tokens.issue("tr", _sa(store), bound=pod).token
    user = tokens.validate(token)
    assert user.extra["authentication.kubernetes.io/pod-name"] == ["p"]
    assert user.extra["authentication.kubernetes.io/pod-uid"] == [pod["metadata"]["uid"]]
    assert "authentication.kubernetes.io/node-name" not in user.extra
    node = store.create_item("", "nodes", {"metadata": {"name": "n1"}})
    scheduled = {**pod, "spec": {**pod["spec"], "nodeName": "n1"}}
    claims = tokens.issue("tr", _sa(store), bound=scheduled).claims
    assert claims["kubernetes.io"]["node"] == {"name": "n1", "uid": node["metadata"]["uid"]}
    store.delete_item("", "pods", "tr", "p")
    with pytest.raises(TokenError, match='pods "p" not found'):
        tokens.validate(token)


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c", "x" * 20000, "e30.e30.e30"])
def test_garbage_is_rejected(store: Store, key: rsa.RSAPrivateKey, garbage: str) -> None:
    with pytest.raises(TokenError):
        ServiceAccountTokens(store, key=key).validate(garbage)


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text(
        't-alice,alice,alice-uid,"devs,qa"\nt-bob,bob,2\n\nt-root,root,3,system:masters\n'
    )
    tokens = load_token_file(path)
    alice = lookup(tokens, "t-alice")
    assert alice is not None
    assert (alice.name, alice.uid, alice.groups) == ("alice", "alice-uid", ["devs", "qa"])
    bob = lookup(tokens, "t-bob")
    assert bob is not None
    assert bob.groups == []
    assert lookup(tokens, "t-nobody") is None
    path.write_text("only,two\n")
    with pytest.raises(TokenFileError):
        load_token_file(path)


async def test_legacy_token_secret_is_filled_and_validated(
    store: Store, key: rsa.RSAPrivateKey
) -> None:
    tokens = ServiceAccountTokens(store, key=key)
    controller = LegacyTokenController(store, tokens)
    store.root_ca_pem = "-----BEGIN CERTIFICATE-----\n...\n"
    try:
        store.create_item(
            "",
            "secrets",
            {
                "metadata": {
                    "name": "builder-token",
                    "namespace": "tr",
                    "annotations": {"kubernetes.io/service-account.name": "builder"},
                },
                "type": "kubernetes.io/service-account-token",
            },
        )
        for _ in range(50):
            secret = store.get_item("", "secrets", "tr", "builder-token")
            assert secret is not None
            if (secret.get("data") or {}).get("token"):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the token controller did not fill the secret")
    finally:
        controller.close()
    sa_uid = _sa(store)["metadata"]["uid"]
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == sa_uid
    assert base64.b64decode(secret["data"]["namespace"]) == b"tr"
    assert base64.b64decode(secret["data"]["ca.crt"]).startswith(b"-----BEGIN CERTIFICATE")
    token = base64.b64decode(secret["data"]["token"]).decode()
    claims = json.loads(jwt.b64url_decode(token.split(".")[1]))
    assert claims["iss"] == "kubernetes/serviceaccount"
    assert "exp" not in claims
    user = tokens.validate(token)
    assert (user.name, user.uid) == ("system:serviceaccount:tr:builder", sa_uid)
    store.delete_item("", "secrets", "tr", "builder-token")
    with pytest.raises(TokenError, match='secrets "builder-token" not found'):
        tokens.validate(token)


def test_legacy_token_for_missing_service_account_is_not_filled(
    store: Store, key: rsa.RSAPrivateKey
) -> None:
    controller = LegacyTokenController(store, ServiceAccountTokens(store, key=key))
    try:
        store.create_item(
            "",
            "secrets",
            {
                "metadata": {
                    "name": "t",
                    "namespace": "tr",
                    "annotations": {"kubernetes.io/service-account.name": "ghost"},
                },
                "type": "kubernetes.io/service-account-token",
            },
        )
        assert controller.fill("tr", "t") is False
    finally:
        controller.close()


def test_jwks_verifies_issued_tokens(store: Store, key: rsa.RSAPrivateKey) -> None:
    tokens = ServiceAccountTokens(store, key=key)
    (jwk,) = tokens.jwks()["keys"]
    assert jwk["kid"] == tokens.kid
    n = int.from_bytes(jwt.b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(jwt.b64url_decode(jwk["e"]), "big")
    public = rsa.RSAPublicNumbers(e, n).public_key()
    claims = jwt.verify(tokens.issue("tr", _sa(store)).token, public)
    assert claims["iss"] == tokens.openid_configuration()["issuer"]
