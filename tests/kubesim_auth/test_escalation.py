"""RBAC escalation prevention (escalate/bind) for writes of roles and bindings."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim.auth import Authorizer, admit_rbac_write, seed_bootstrap_rbac
from kubesim.authtypes import UserInfo
from kubesim.errors import StatusError
from kubesim.store import Store

from .rbac import RBAC, create_binding, create_role, user_subject

ALICE = UserInfo("alice", groups=["devs", "system:authenticated"])


@pytest.fixture
def store() -> Store:
    s = Store()
    s.seed()
    s.create_item("", "namespaces", {"metadata": {"name": "st"}})
    seed_bootstrap_rbac(s)
    # alice administers namespace st (the aggregated admin role: roles, rolebindings, pods...)
    create_binding(s, "alice-admin", "admin", [user_subject("alice")], ns="st", kind="ClusterRole")
    return s


def _role(rules: list[dict[str, Any]], name: str = "r") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "st"}, "rules": rules}


def test_role_within_held_permissions_is_allowed(store: Store) -> None:
    rules = [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]
    admit_rbac_write("roles", _role(rules), ALICE, Authorizer(store))


def test_role_granting_more_is_forbidden_with_kube_message(store: Store) -> None:
    rules = [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
    ]
    with pytest.raises(StatusError) as info:
        admit_rbac_write("roles", _role(rules), ALICE, Authorizer(store))
    assert info.value.code == 403
    assert info.value.details == {"name": "r", "group": RBAC, "kind": "roles"}
    assert info.value.message == (
        'roles.rbac.authorization.k8s.io "r" is forbidden: user "alice" '
        '(groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not '
        "currently held:\n"
        '{APIGroups:[""], Resources:["nodes"], Verbs:["get" "list"]}\n'
        '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}'
    )


def test_escalate_verb_allows_anything(store: Store) -> None:
    create_role(
        store,
        "escalator",
        [{"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["escalate"]}],
        ns="st",
    )
    create_binding(store, "alice-escalates", "escalator", [user_subject("alice")], ns="st")
    rules = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    admit_rbac_write("roles", _role(rules), ALICE, Authorizer(store))


def _binding(role_kind: str, role: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "b", "namespace": "st"},
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": [{"kind": "User", "name": "bob"}],
    }


def test_binding_needs_the_roles_permissions_or_bind(store: Store) -> None:
    az = Authorizer(store)
    admit_rbac_write("rolebindings", _binding("ClusterRole", "view"), ALICE, az)
    with pytest.raises(StatusError) as info:
        admit_rbac_write("rolebindings", _binding("ClusterRole", "cluster-admin"), ALICE, az)
    assert "is attempting to grant RBAC permissions not currently held" in info.value.message
    create_role(
        store,
        "binder",
        [
            {
                "apiGroups": [RBAC],
                "resources": ["clusterroles"],
                "verbs": ["bind"],
                "resourceNames": ["cluster-admin"],
            }
        ],
        ns="st",
    )
    create_binding(store, "alice-binds", "binder", [user_subject("alice")], ns="st")
    admit_rbac_write("rolebindings", _binding("ClusterRole", "cluster-admin"), ALICE, az)


def test_cluster_role_binding_uses_cluster_wide_permissions(store: Store) -> None:
    binding = {**_binding("ClusterRole", "view"), "metadata": {"name": "cb"}}
    with pytest.raises(StatusError) as info:
        admit_rbac_write("clusterrolebindings", binding, ALICE, Authorizer(store))
    assert info.value.message.startswith(
        'clusterrolebindings.rbac.authorization.k8s.io "cb" is forbidden'
    )


def test_masters_and_always_allow_are_exempt(store: Store) -> None:
    root = UserInfo("root", groups=["system:masters"])
    everything = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    admit_rbac_write("roles", _role(everything), root, Authorizer(store))
    admit_rbac_write("roles", _role(everything), ALICE, Authorizer(store, "AlwaysAllow"))
    admit_rbac_write("configmaps", {}, ALICE, Authorizer(store))


def test_aggregation_rule_needs_full_authority(store: Store) -> None:
    create_binding(store, "alice-escalates-cluster", "view", [user_subject("alice")])
    role = {
        "metadata": {"name": "agg"},
        "rules": [],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]},
    }
    with pytest.raises(StatusError) as info:
        admit_rbac_write("clusterroles", role, ALICE, Authorizer(store))
    assert info.value.message == (
        'clusterroles.rbac.authorization.k8s.io "agg" is forbidden: must have cluster-admin '
        "privileges to use the aggregationRule"
    )
