"""RBAC evaluation: wildcards, resourceNames, subresources, nonResourceURLs, aggregation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubesim.auth import Authorizer, forbidden_error, reconcile_aggregation, seed_bootstrap_rbac
from kubesim.auth.rbac import build_index
from kubesim.auth.rules import rule_allows, selector_matches
from kubesim.authtypes import RequestAttributes, UserInfo
from kubesim.store import Store

from .captures import load
from .rbac import RBAC, create_binding, create_role, group_subject, user_subject

ALICE = UserInfo("alice", groups=["devs", "system:authenticated"])


def _attrs(verb: str, resource: str = "", **kw: Any) -> RequestAttributes:
    return RequestAttributes(user=kw.pop("user", ALICE), verb=verb, resource=resource, **kw)


@pytest.fixture
def store() -> Store:
    s = Store()
    s.seed()
    for ns in ("st", "tr"):
        s.create_item("", "namespaces", {"metadata": {"name": ns}})
    seed_bootstrap_rbac(s)
    return s


def _res(verbs: str, groups: str, resources: str, names: str = "") -> dict[str, Any]:
    rule: dict[str, Any] = {"verbs": verbs.split(), "apiGroups": groups.split(",")}
    rule["resources"] = resources.split()
    if names:
        rule["resourceNames"] = names.split()
    return rule


def _url(verbs: str, urls: str) -> dict[str, Any]:
    return {"verbs": verbs.split(), "nonResourceURLs": urls.split()}


def _path(verb: str, path: str) -> RequestAttributes:
    return _attrs(verb, path=path, is_resource_request=False)


LOG = {"subresource": "log"}


@pytest.mark.parametrize(
    ("rule", "attrs", "allowed"),
    [
        (_res("*", "*", "*"), _attrs("delete", "pods"), True),
        (_res("get", "", "pods"), _attrs("list", "pods"), False),
        (_res("get", "apps", "pods"), _attrs("get", "pods"), False),
        (_res("get", "", "pods"), _attrs("get", "pods", **LOG), False),
        (_res("get", "", "pods/log"), _attrs("get", "pods", **LOG), True),
        (_res("get", "", "*/log"), _attrs("get", "pods", **LOG), True),
        (_res("get", "", "*/log"), _attrs("get", "pods"), False),
        (_res("get", "", "pods", "a"), _attrs("get", "pods", name="a"), True),
        (_res("get", "", "pods", "a"), _attrs("get", "pods", name="b"), False),
        (_res("list", "", "pods", "a"), _attrs("list", "pods"), False),
        (_url("get", "/healthz"), _path("get", "/healthz"), True),
        (_url("get", "/healthz/*"), _path("get", "/healthz/etcd"), True),
        (_url("get", "/healthz/*"), _path("get", "/healthz"), False),
        (_url("get", "*"), _path("get", "/anything"), True),
        (_url("get", "/metrics"), _path("post", "/metrics"), False),
        (_res("get", "*", "*"), _path("get", "/x"), False),
    ],
)
def test_rule_allows(rule: dict[str, Any], attrs: RequestAttributes, allowed: bool) -> None:
    assert rule_allows(attrs, rule) is allowed


def test_selector_expressions() -> None:
    sel = {
        "matchExpressions": [
            {"key": "a", "operator": "In", "values": ["1", "2"]},
            {"key": "b", "operator": "DoesNotExist"},
        ]
    }
    assert selector_matches(sel, {"a": "2"})
    assert not selector_matches(sel, {"a": "3"})
    assert not selector_matches(sel, {"a": "1", "b": "x"})
    assert selector_matches({"matchLabels": {"x": "y"}}, {"x": "y", "z": "w"})


def test_no_bindings_is_denied_with_kube_message(store: Store) -> None:
    az = Authorizer(store)
    attrs = _attrs("list", "configmaps", namespace="st")
    assert az.authorize(attrs) == (False, "")
    expected = load("status/forbidden-alice-token-403.json")["response"]["body"]
    assert forbidden_error(attrs, "").status() == expected
    attrs = _attrs("create", "deployments", api_group="apps", namespace="st")
    expected = load("status/forbidden-alice-create-deployment-403.json")["response"]["body"]
    assert forbidden_error(attrs, "").status() == expected
    attrs = _attrs("list", "nodes")
    expected = load("status/forbidden-alice-cluster-scoped-403.json")["response"]["body"]
    assert forbidden_error(attrs, "").status() == expected


def test_masters_bypass_and_always_allow(store: Store) -> None:
    root = UserInfo("root", groups=["system:masters"])
    assert Authorizer(store).authorize(_attrs("delete", "nodes", user=root)) == (True, "")
    assert Authorizer(store, "AlwaysAllow").authorize(_attrs("delete", "nodes"))[0]


def test_bootstrap_roles_kubectl_relies_on(store: Store) -> None:
    az = Authorizer(store)
    anon = UserInfo("system:anonymous", groups=["system:unauthenticated"])
    get_version = _attrs("get", path="/version", is_resource_request=False, user=anon)
    assert az.authorize(get_version)[0]
    assert not az.authorize(_attrs("get", path="/api", is_resource_request=False, user=anon))[0]
    assert az.authorize(_attrs("get", path="/apis/apps/v1", is_resource_request=False))[0]
    ssar = _attrs("create", "selfsubjectaccessreviews", api_group="authorization.k8s.io")
    assert az.authorize(ssar)[0]
    ssr = _attrs("create", "selfsubjectreviews", api_group="authentication.k8s.io")
    assert az.authorize(ssr)[0]


def test_role_binding_namespaced_and_reason(store: Store) -> None:
    az = Authorizer(store)
    create_role(
        store,
        "reader",
        [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]}],
        ns="st",
    )
    create_binding(store, "alice-reads", "reader", [{"kind": "User", "name": "alice"}], ns="st")
    allowed, reason = az.authorize(_attrs("list", "configmaps", namespace="st"))
    assert allowed
    assert (
        reason == 'RBAC: allowed by RoleBinding "alice-reads/st" of Role "reader" to User "alice"'
    )
    assert not az.authorize(_attrs("list", "configmaps", namespace="other"))[0]
    assert not az.authorize(_attrs("delete", "configmaps", namespace="st"))[0]


def test_cluster_role_binding_to_group_and_service_account(store: Store) -> None:
    az = Authorizer(store)
    create_role(
        store, "node-reader", [{"verbs": ["get"], "apiGroups": [""], "resources": ["nodes"]}]
    )
    create_binding(store, "devs-nodes", "node-reader", [{"kind": "Group", "name": "devs"}])
    create_binding(
        store,
        "sa-nodes",
        "node-reader",
        [{"kind": "ServiceAccount", "name": "bot", "namespace": "tr"}],
    )
    assert az.authorize(_attrs("get", "nodes", name="n1"))[0]
    bot = UserInfo("system:serviceaccount:tr:bot", groups=["system:serviceaccounts"])
    allowed, reason = az.authorize(_attrs("get", "nodes", user=bot))
    assert allowed
    assert reason.endswith('to ServiceAccount "tr/bot"')
    other = UserInfo("system:serviceaccount:other:bot")
    assert not az.authorize(_attrs("get", "nodes", user=other))[0]


def test_missing_role_is_reported_in_reason(store: Store) -> None:
    az = Authorizer(store)
    create_binding(store, "dangling", "nope", [{"kind": "User", "name": "alice"}])
    allowed, reason = az.authorize(_attrs("get", "nodes"))
    assert not allowed
    assert reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "nope" not found'
    message = forbidden_error(_attrs("get", "nodes"), reason).message
    assert message.endswith(
        'at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io "nope" not found'
    )


def test_index_follows_store_changes(store: Store) -> None:
    az = Authorizer(store)
    attrs = _attrs("get", "secrets", namespace="st")
    assert not az.authorize(attrs)[0]
    create_binding(
        store, "edit", "edit", [{"kind": "User", "name": "alice"}], ns="st", kind="ClusterRole"
    )
    assert az.authorize(attrs)[0]
    store.delete_item(RBAC, "rolebindings", "st", "edit")
    assert not az.authorize(attrs)[0]
    az.close()


def test_aggregated_roles_are_seeded(store: Store) -> None:
    rules = {
        name: store.get_item(RBAC, "clusterroles", "", name)["rules"]  # type: ignore[index]
        for name in ("admin", "edit", "view")
    }
    assert all(r in rules["edit"] for r in rules["view"])
    assert all(r in rules["admin"] for r in rules["edit"])
    assert len(rules["admin"]) > len(rules["edit"]) > len(rules["view"]) > 0


def test_aggregation_picks_up_new_labelled_role(store: Store) -> None:
    az = Authorizer(store)
    create_binding(store, "viewers", "view", [{"kind": "User", "name": "alice"}])
    widgets = _attrs("list", "widgets", api_group="example.com", namespace="st")
    assert not az.authorize(widgets)[0]
    store.create_item(
        RBAC,
        "clusterroles",
        {
            "metadata": {
                "name": "widget-view",
                "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"},
            },
            "rules": [{"verbs": ["list"], "apiGroups": ["example.com"], "resources": ["widgets"]}],
        },
    )
    assert az.authorize(widgets)[0]  # evaluated through the aggregation rule at once
    assert reconcile_aggregation(store) >= 3  # view, then edit and admin that include view
    view = store.get_item(RBAC, "clusterroles", "", "view")
    assert view is not None
    assert {"verbs": ["list"], "apiGroups": ["example.com"], "resources": ["widgets"]} in view[
        "rules"
    ]
    assert reconcile_aggregation(store) == 0


async def test_aggregation_controller_writes_rules_back(store: Store) -> None:
    az = Authorizer(store)
    store.create_item(
        RBAC,
        "clusterroles",
        {
            "metadata": {
                "name": "gadget-edit",
                "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"},
            },
            "rules": [
                {"verbs": ["create"], "apiGroups": ["example.com"], "resources": ["gadgets"]}
            ],
        },
    )
    for _ in range(50):
        admin = store.get_item(RBAC, "clusterroles", "", "admin")
        assert admin is not None
        if {"verbs": ["create"], "apiGroups": ["example.com"], "resources": ["gadgets"]} in admin[
            "rules"
        ]:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("admin did not aggregate the new rule")
    az.close()


def test_rules_review(store: Store) -> None:
    az = Authorizer(store)
    create_role(
        store,
        "pod-logs",
        [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"], "resourceNames": ["p"]}],
        ns="st",
    )
    create_binding(store, "logs", "pod-logs", [{"kind": "Group", "name": "devs"}], ns="st")
    resource_rules, url_rules, error = az.rules_for(ALICE, "st")
    assert {
        "verbs": ["get"],
        "apiGroups": [""],
        "resources": ["pods/log"],
        "resourceNames": ["p"],
    } in resource_rules
    assert {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    } in resource_rules
    assert any("/version" in r["nonResourceURLs"] for r in url_rules)
    assert error == ""


def test_authorization_mode_lists(store: Store) -> None:
    assert Authorizer(store, "Node,RBAC").mode == "RBAC"
    assert Authorizer(store, "RBAC,AlwaysAllow").mode == "AlwaysAllow"
    with pytest.raises(ValueError, match="unsupported"):
        Authorizer(store, "Webhook")


def _grants(index: Any) -> tuple[Any, ...]:
    cluster = {k: sorted(g.description for g in v) for k, v in index.cluster.items()}
    spaced = {ns: {k: sorted(g.description for g in v) for k, v in per.items() if v}
              for ns, per in index.namespaced.items()}
    return cluster, {ns: per for ns, per in spaced.items() if per}


def test_rule_index_follows_rbac_changes_one_event_at_a_time(store: Store) -> None:
    az = Authorizer(store)
    first = az.index()
    store.create_item("", "configmaps", {"metadata": {"name": "c", "namespace": "st"}})
    assert az.index() is first
    rules = [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]
    create_role(store, "x", rules, ns="st")
    create_role(store, "cx", rules)
    create_binding(store, "bx", "x", [user_subject("ann")], ns="st")
    create_binding(store, "cbx", "cx", [group_subject("devs")])
    create_binding(store, "dangling", "later", [user_subject("bo")])
    create_role(store, "later", rules)  # the dangling binding resolves when its role appears
    store.delete_item(RBAC, "rolebindings", "st", "bx")
    create_binding(store, "bx2", "x", [user_subject("cy")], ns="st")
    assert az.index() is first  # kept current, not rebuilt
    assert _grants(az.index()) == _grants(build_index(store))
    pods = RequestAttributes(UserInfo("bo", []), "get", resource="pods", namespace="st", name="p")
    assert az.authorize(pods)[0]
    az.close()
