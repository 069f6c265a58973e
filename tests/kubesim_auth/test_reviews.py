"""The review APIs through ``reviews.handle`` (the API core calls it after authz)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kubesim.auth import (
    Authenticator,
    Authorizer,
    ReviewContext,
    ServiceAccountTokens,
    handle,
    seed_bootstrap_rbac,
)
from kubesim.authtypes import UserInfo
from kubesim.errors import StatusError
from kubesim.options import Options
from kubesim.store import Store

from .rbac import create_binding, group_subject

ADMIN = UserInfo("kube-admin", groups=["system:masters", "system:authenticated"])
ALICE = UserInfo("alice", uid="alice-uid", groups=["devs", "system:authenticated"])


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def ctx(tmp_path: Path, key: rsa.RSAPrivateKey) -> AsyncIterator[ReviewContext]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('alice-token,alice,alice-uid,"devs"\n')
    store = Store()
    store.seed()
    seed_bootstrap_rbac(store)
    store.create_item("", "namespaces", {"metadata": {"name": "tr"}})
    store.create_item("", "serviceaccounts", {"metadata": {"name": "builder", "namespace": "tr"}})
    sa_tokens = ServiceAccountTokens(store, key=key)
    authn = Authenticator(Options(token_auth_file=str(tokens)), store, sa_tokens=sa_tokens)
    authz = Authorizer(store, "RBAC")
    try:
        yield ReviewContext(authn, authz, store)
    finally:
        authz.close()
        await authn.close()


async def test_self_subject_review(ctx: ReviewContext) -> None:
    out = await handle("SelfSubjectReview", {}, ALICE, ctx)
    assert out["kind"] == "SelfSubjectReview"
    assert out["apiVersion"] == "authentication.k8s.io/v1"
    assert out["metadata"]["creationTimestamp"].endswith("Z")
    assert out["status"] == {
        "userInfo": {
            "username": "alice",
            "uid": "alice-uid",
            "groups": ["devs", "system:authenticated"],
        }
    }


def _ssar(verb: str, resource: str, namespace: str = "") -> dict[str, Any]:
    attrs = {"verb": verb, "resource": resource, **({"namespace": namespace} if namespace else {})}
    return {"spec": {"resourceAttributes": attrs}}


async def test_self_subject_access_review(ctx: ReviewContext) -> None:
    out = await handle("selfsubjectaccessreviews", _ssar("create", "pods", "default"), ADMIN, ctx)
    assert out["status"] == {"allowed": True}
    assert out["spec"]["resourceAttributes"]["verb"] == "create"
    out = await handle("SelfSubjectAccessReview", _ssar("create", "pods", "default"), ALICE, ctx)
    assert out["status"] == {"allowed": False}
    url = {"spec": {"nonResourceAttributes": {"path": "/version", "verb": "get"}}}
    out = await handle("SelfSubjectAccessReview", url, ALICE, ctx)
    assert out["status"]["allowed"] is True
    assert out["status"]["reason"].startswith("RBAC: allowed by ClusterRoleBinding")


async def test_subject_access_review_for_another_user(ctx: ReviewContext) -> None:
    body = {"spec": {"user": "alice", "groups": ["devs"], **_ssar("get", "secrets", "tr")["spec"]}}
    out = await handle("SubjectAccessReview", body, ADMIN, ctx)
    assert out["status"] == {"allowed": False}
    create_binding(
        ctx.store, "devs-view", "edit", [group_subject("devs")], ns="tr", kind="ClusterRole"
    )
    out = await handle("SubjectAccessReview", body, ADMIN, ctx)
    assert out["status"]["allowed"] is True
    with pytest.raises(StatusError) as info:
        await handle("SubjectAccessReview", {"spec": _ssar("get", "secrets")["spec"]}, ADMIN, ctx)
    assert info.value.code == 422


async def test_access_review_needs_exactly_one_attributes(ctx: ReviewContext) -> None:
    with pytest.raises(StatusError) as info:
        await handle("SelfSubjectAccessReview", {"spec": {}}, ALICE, ctx)
    assert info.value.code == 422


async def test_rules_review(ctx: ReviewContext) -> None:
    out = await handle("SelfSubjectRulesReview", {"spec": {"namespace": "tr"}}, ALICE, ctx)
    status = out["status"]
    assert status["incomplete"] is False
    assert any("selfsubjectreviews" in r["resources"] for r in status["resourceRules"])
    assert any("/api/*" in r["nonResourceURLs"] for r in status["nonResourceRules"])


async def test_token_request_then_token_review(ctx: ReviewContext) -> None:
    ctx.namespace, ctx.name = "tr", "builder"
    out = await handle("TokenRequest", {"spec": {}}, ADMIN, ctx)
    assert out["metadata"]["name"] == "builder"
    assert out["metadata"]["namespace"] == "tr"
    assert out["spec"] == {
        "audiences": ["https://kubernetes.default.svc.cluster.local"],
        "expirationSeconds": 3600,
        "boundObjectRef": None,
    }
    token = out["status"]["token"]
    assert out["status"]["expirationTimestamp"].endswith("Z")
    review = await handle("TokenReview", {"spec": {"token": token}}, ADMIN, ctx)
    status = review["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == "system:serviceaccount:tr:builder"
    assert status["user"]["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:tr",
        "system:authenticated",
    ]
    assert status["audiences"] == ["https://kubernetes.default.svc.cluster.local"]


async def test_token_request_audiences_and_limits(ctx: ReviewContext) -> None:
    ctx.namespace, ctx.name = "tr", "builder"
    body = {"spec": {"audiences": ["vault"], "expirationSeconds": 7200}}
    token = (await handle("TokenRequest", body, ADMIN, ctx))["status"]["token"]
    review = await handle("TokenReview", {"spec": {"token": token}}, ADMIN, ctx)
    assert review["status"] == {"user": {}, "error": review["status"]["error"]}
    assert "audiences" in review["status"]["error"]
    review = await handle(
        "TokenReview", {"spec": {"token": token, "audiences": ["vault"]}}, ADMIN, ctx
    )
    assert review["status"]["authenticated"] is True
    assert review["status"]["audiences"] == ["vault"]
    with pytest.raises(StatusError) as info:
        await handle("TokenRequest", {"spec": {"expirationSeconds": 60}}, ADMIN, ctx)
    assert info.value.code == 422
    assert info.value.message == (
        'TokenRequest.authentication.k8s.io "builder" is invalid: spec.expirationSeconds: '
        "Invalid value: 60: may not specify a duration less than 10 minutes"
    )
    ctx.name = "ghost"
    with pytest.raises(StatusError) as info:
        await handle("TokenRequest", {"spec": {}}, ADMIN, ctx)
    assert info.value.code == 404


async def test_token_review_static_and_unknown(ctx: ReviewContext) -> None:
    review = await handle("TokenReview", {"spec": {"token": "alice-token"}}, ADMIN, ctx)
    assert review["status"]["user"] == {
        "username": "alice",
        "uid": "alice-uid",
        "groups": ["devs", "system:authenticated"],
    }
    review = await handle("TokenReview", {"spec": {"token": "nope"}}, ADMIN, ctx)
    assert review["status"] == {"user": {}}


async def test_token_request_bound_to_a_pod(ctx: ReviewContext) -> None:
    pod = ctx.store.create_item(
        "",
        "pods",
        {
            "metadata": {"name": "p", "namespace": "tr"},
            "spec": {"serviceAccountName": "builder", "containers": [{"name": "c", "image": "i"}]},
        },
    )
    ctx.namespace, ctx.name = "tr", "builder"
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": pod["metadata"]["uid"]}
    out = await handle("TokenRequest", {"spec": {"boundObjectRef": ref}}, ADMIN, ctx)
    assert out["spec"]["boundObjectRef"] == ref
    review = await handle("TokenReview", {"spec": {"token": out["status"]["token"]}}, ADMIN, ctx)
    assert review["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["p"]
    with pytest.raises(StatusError) as info:
        bad = {**ref, "uid": "0000"}
        await handle("TokenRequest", {"spec": {"boundObjectRef": bad}}, ADMIN, ctx)
    assert info.value.code == 409
    assert info.value.message.startswith('Operation cannot be fulfilled on Pod "p": the UID')
    ctx.store.create_item("", "serviceaccounts", {"metadata": {"name": "other", "namespace": "tr"}})
    ctx.name = "other"
    with pytest.raises(StatusError) as info:
        await handle("TokenRequest", {"spec": {"boundObjectRef": ref}}, ADMIN, ctx)
    assert info.value.code == 400
