"""The pure review core: hostile input never crashes it."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_api_auth import review
from kube_api_auth.index import Index, Kind
from tests.kube_api_auth import objects

pytestmark = pytest.mark.timeout(60)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def index() -> Index:
    idx = Index()
    idx.replace(Kind.TOKENS, [objects.token("token-a", "u-a")])
    idx.replace(Kind.SECRETS, [objects.secret("token-a", "pw")])
    idx.replace(Kind.USERS, [objects.user("u-a")])
    return idx


INDEX = index()


@settings(max_examples=300, deadline=None)
@given(spec=json_values, api=st.sampled_from(sorted(review.SUPPORTED_API_VERSIONS)))
def test_any_spec_is_answered_or_refused_as_malformed(spec: object, api: str) -> None:
    body = json.dumps({"kind": "TokenReview", "apiVersion": api, "spec": spec}).encode()
    try:
        asked = review.parse_review(body)
    except review.MalformedReviewError:
        return
    decision = review.decide(INDEX, asked.token, time.time(), objects.CLUSTER)
    rendered = review.render(asked.api_version, decision)
    assert rendered["apiVersion"] == api
    json.dumps(rendered)


@settings(max_examples=300, deadline=None)
@given(token=st.text(max_size=60))
def test_any_token_text_is_decided(token: str) -> None:
    decision = review.decide(INDEX, token, time.time(), objects.CLUSTER)
    assert decision.authenticated == (token == "token-a:pw")


def test_lone_surrogate_in_secret_is_a_refusal() -> None:
    body = json.dumps(objects.review("token-a:\ud800")).encode()
    asked = review.parse_review(body)
    decision = review.decide(INDEX, asked.token, time.time(), objects.CLUSTER)
    assert decision.result is review.Result.WRONG_SECRET


def test_overlong_token_is_refused_without_hashing() -> None:
    decision = review.decide(INDEX, "token-a:" + "x" * 5000, time.time(), objects.CLUSTER)
    assert decision.result is review.Result.MALFORMED


def test_expiry_boundary() -> None:
    idx = Index()
    idx.replace(Kind.TOKENS, [objects.token("t", "u-a", expires_at="2030-01-01T00:00:00Z")])
    idx.replace(Kind.SECRETS, [objects.secret("t", "pw")])
    idx.replace(Kind.USERS, [objects.user("u-a")])
    edge = 1893456000.0  # 2030-01-01T00:00:00Z
    assert review.decide(idx, "t:pw", edge - 0.001, objects.CLUSTER).authenticated
    assert review.decide(idx, "t:pw", edge, objects.CLUSTER).result is review.Result.EXPIRED


def test_unusable_update_revokes_instead_of_keeping_stale_grant() -> None:
    idx = index()
    assert review.decide(idx, "token-a:pw", time.time(), objects.CLUSTER).authenticated
    broken = {**objects.token("token-a", "u-a"), "expiresAt": "not a time"}
    idx.upsert(Kind.TOKENS, broken)
    assert idx.invalid_objects == 1
    assert (
        review.decide(idx, "token-a:pw", time.time(), objects.CLUSTER).result
        is review.Result.UNKNOWN
    )


def test_inline_legacy_hash_and_no_cluster_name_configured() -> None:
    from kube_api_auth import hashing

    idx = Index()
    legacy = {**objects.token("t", "u-a", cluster=""), "hash": hashing.create_hash("pw")}
    del legacy["secretRef"]
    idx.replace(Kind.TOKENS, [legacy])
    idx.replace(Kind.SECRETS, [])
    idx.replace(Kind.USERS, [objects.user("u-a")])
    assert review.decide(idx, "t:pw", time.time(), "").authenticated
    assert (
        review.decide(idx, "t:pw", time.time(), objects.CLUSTER).result
        is review.Result.OTHER_CLUSTER
    )
