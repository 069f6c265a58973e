"""Impersonation against every answer recorded from kube-apiserver in impersonation/."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from kubesim.auth import (
    Authorizer,
    ImpersonationError,
    forbidden_error,
    impersonate,
    seed_bootstrap_rbac,
)
from kubesim.auth.impersonation import build_requests
from kubesim.auth.reviews import user_info_json
from kubesim.authtypes import RequestAttributes, UserInfo
from kubesim.errors import StatusError
from kubesim.store import Store

from .captures import load, reference_dir
from .rbac import RBAC, create_binding, create_role, user_subject

ADMIN = UserInfo(
    "kube-admin",
    groups=["system:masters", "system:authenticated"],
    extra={
        "authentication.kubernetes.io/credential-id": [
            "X509SHA256=e864b772cc3210fa6f5e97931220119299d415290b23eb9d0ed098b30601883c"
        ]
    },
)
SA_IMP = UserInfo(
    "system:serviceaccount:tr:imp",
    uid="bbfa417e-8647-4d89-87d3-6ff2b0e290ae",
    groups=["system:serviceaccounts", "system:serviceaccounts:tr", "system:authenticated"],
)


def _headers(pairs: list[list[str]]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict([(k, v) for k, v in pairs]))


def _cases() -> list[str]:
    names = sorted(p.name for p in (reference_dir() / "impersonation").glob("*.json"))
    return [n for n in names if n.startswith(("admin-", "sa-")) and n != "sa-00-whoami.json"]


@pytest.fixture
def store() -> Store:
    s = Store()
    s.seed()
    seed_bootstrap_rbac(s)
    return s


def _grant(store: Store) -> None:
    granted = load("impersonation/rbac-granted.json")
    store.create_item(RBAC, "clusterroles", granted["clusterrole"])
    store.create_item(RBAC, "clusterrolebindings", granted["clusterrolebinding"])


def _expected_user(body: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = body["status"]["userInfo"]
    return info


@pytest.mark.parametrize("name", _cases())
def test_capture(name: str, store: Store) -> None:
    case = load(f"impersonation/{name}")
    request, response = case["request"], case["response"]
    requester = ADMIN if name.startswith("admin-") else SA_IMP
    if name >= "sa-10":
        _grant(store)
    headers = _headers(request["headers"])
    authorizer = Authorizer(store)
    if response["status"] == 500:
        with pytest.raises(ImpersonationError) as info:
            impersonate(headers, requester, authorizer)
        text = f'Internal Server Error: "{request["path"]}": {info.value}\n'
        assert text == response["body"]
    elif response["status"] == 403 and name.startswith("sa-"):
        with pytest.raises(StatusError) as denied:
            impersonate(headers, requester, authorizer)
        assert denied.value.status() == response["body"]
    elif response["status"] == 403:
        # the impersonation itself succeeded; the impersonated user is then denied the list
        user = impersonate(headers, requester, authorizer)
        attrs = RequestAttributes(user, "list", resource="pods", namespace="tr")
        allowed, reason = authorizer.authorize(attrs)
        assert not allowed
        assert forbidden_error(attrs, reason).status() == response["body"]
    else:
        user = impersonate(headers, requester, authorizer)
        assert user_info_json(user) == _expected_user(response["body"])


def test_group_without_user_message_matches_status_capture() -> None:
    case = load("status/impersonate-group-without-user-500.json")
    headers = _headers([[k, v] for k, v in case["request"]["headers"].items()])
    with pytest.raises(ImpersonationError) as info:
        build_requests(headers)
    assert (
        f'Internal Server Error: "{case["request"]["path"]}": {info.value}\n'
        == case["response"]["body_text"]
    )


def test_extra_and_uid_without_user_lists_every_request() -> None:
    headers = _headers([["Impersonate-Extra-Scopes", "view"], ["Impersonate-Uid", "u1"]])
    with pytest.raises(ImpersonationError) as info:
        build_requests(headers)
    assert str(info.value) == (
        "requested [{UserExtra  view  authentication.k8s.io/v1  scopes} "
        "{UID  u1  authentication.k8s.io/v1  }] without impersonating a user"
    )


def test_impersonating_anonymous_gets_unauthenticated(store: Store) -> None:
    user = impersonate(
        _headers([["Impersonate-User", "system:anonymous"]]), ADMIN, Authorizer(store)
    )
    assert user.groups == ["system:unauthenticated"]


def test_service_account_user_with_explicit_groups_keeps_only_those(store: Store) -> None:
    headers = _headers(
        [["Impersonate-User", "system:serviceaccount:tr:b"], ["Impersonate-Group", "g"]]
    )
    user = impersonate(headers, ADMIN, Authorizer(store))
    assert user.groups == ["g", "system:authenticated"]


def test_allowed_by_namespaced_role_for_serviceaccounts(store: Store) -> None:
    store.create_item("", "namespaces", {"metadata": {"name": "tr"}})
    create_role(
        store,
        "imp-sa",
        [{"verbs": ["impersonate"], "apiGroups": [""], "resources": ["serviceaccounts"]}],
        ns="tr",
    )
    create_binding(store, "imp-sa", "imp-sa", [user_subject("alice")], ns="tr")
    alice = UserInfo("alice", groups=["system:authenticated"])
    headers = _headers([["Impersonate-User", "system:serviceaccount:tr:builder"]])
    user = impersonate(headers, alice, Authorizer(store))
    assert user.groups == [
        "system:serviceaccounts",
        "system:serviceaccounts:tr",
        "system:authenticated",
    ]
    headers = _headers([["Impersonate-User", "system:serviceaccount:other:builder"]])
    with pytest.raises(StatusError):
        impersonate(headers, alice, Authorizer(store))
