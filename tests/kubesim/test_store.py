"""The store's semantics without any I/O."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim import errors
from kubesim.store import Store
from kubesim.watchcache import WatchCache


def cm(name: str, ns: str = "default", **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, **extra}


@pytest.fixture
def store() -> Store:
    s = Store()
    s.seed()
    s.compact()
    return s


def test_seed_creates_default_namespaces_with_sa_and_root_ca(store: Store) -> None:
    names = [n["metadata"]["name"] for n in store.list_items("", "namespaces")]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    for ns in names:
        assert store.get_item("", "serviceaccounts", ns, "default") is not None
        assert store.get_item("", "configmaps", ns, "kube-root-ca.crt") is not None


def test_create_sets_metadata_and_revision_increases(store: Store) -> None:
    before = store.revision
    a = store.create_item("", "configmaps", cm("a", data={"k": "v"}))
    md = a["metadata"]
    assert a["kind"] == "ConfigMap" and a["apiVersion"] == "v1"
    assert md["uid"] and md["creationTimestamp"].endswith("Z")
    assert int(md["resourceVersion"]) == before + 1 == store.revision
    assert "generation" not in md
    gen = store.create_item(
        "", "configmaps", {"metadata": {"generateName": "g-", "namespace": "default"}}
    )
    assert gen["metadata"]["name"].startswith("g-") and len(gen["metadata"]["name"]) == 7
    with pytest.raises(errors.StatusError) as info:
        store.create_item("", "configmaps", cm("a"))
    assert info.value.code == 409 and info.value.reason == "AlreadyExists"
    assert info.value.message == 'configmaps "a" already exists'


def test_create_validation_errors(store: Store) -> None:
    with pytest.raises(errors.StatusError) as info:
        store.create_item("", "configmaps", cm("Bad_Name"))
    assert info.value.code == 422 and info.value.reason == "Invalid"
    assert info.value.message.startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid')
    with pytest.raises(errors.StatusError) as info:
        store.create_item("", "configmaps", {"metadata": {"namespace": "default"}})
    assert info.value.message == (
        'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'
    )
    with pytest.raises(errors.StatusError) as info:
        store.create_item("", "configmaps", cm("x", "missing"))
    assert (info.value.code, info.value.message) == (404, 'namespaces "missing" not found')


def test_update_conflict_generation_and_status(store: Store) -> None:
    d = store.create_item(
        "apps",
        "deployments",
        {"metadata": {"name": "d", "namespace": "default"}, "spec": {"replicas": 1}},
    )
    assert d["metadata"]["generation"] == 1
    new = {**d, "spec": {"replicas": 2}, "status": {"replicas": 9}}
    upd = store.update_item("apps", "deployments", new)
    assert upd["metadata"]["generation"] == 2
    assert "status" not in upd  # the main resource ignores status
    with pytest.raises(errors.StatusError) as info:
        store.update_item("apps", "deployments", new)  # stale resourceVersion
    assert info.value.code == 409 and info.value.reason == "Conflict"
    st = store.update_item("apps", "deployments", {**upd, "status": {"replicas": 2}}, "status")
    assert st["status"] == {"replicas": 2} and st["metadata"]["generation"] == 2
    same = store.update_item("apps", "deployments", st)
    assert same["metadata"]["resourceVersion"] == st["metadata"]["resourceVersion"]


def test_finalizers_hold_deletion(store: Store) -> None:
    store.create_item(
        "",
        "configmaps",
        cm("f", metadata={"name": "f", "namespace": "default", "finalizers": ["x/y"]}),
    )
    marked = store.delete_item("", "configmaps", "default", "f")
    assert marked is not None and marked["metadata"]["deletionTimestamp"]
    assert store.get_item("", "configmaps", "default", "f") is not None
    cleared = dict(marked, metadata={**marked["metadata"], "finalizers": []})
    store.update_item("", "configmaps", cleared)
    assert store.get_item("", "configmaps", "default", "f") is None


def _owned(store: Store, owner: dict[str, Any], name: str) -> None:
    ref = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    store.create_item(
        "",
        "configmaps",
        {"metadata": {"name": name, "namespace": "default", "ownerReferences": [ref]}},
    )


@pytest.mark.parametrize(
    ("policy", "survives"),
    [(None, False), ("Background", False), ("Foreground", False), ("Orphan", True)],
)
def test_propagation_policy(store: Store, policy: str | None, survives: bool) -> None:
    owner = store.create_item(
        "apps", "deployments", {"metadata": {"name": "o", "namespace": "default"}, "spec": {}}
    )
    _owned(store, owner, "dep")
    store.delete_item("apps", "deployments", "default", "o", propagation=policy)
    dep = store.get_item("", "configmaps", "default", "dep")
    assert (dep is not None) == survives
    if dep is not None:
        assert "ownerReferences" not in dep["metadata"]


def test_namespace_deletion_cascades_and_waits_for_finalizers(store: Store) -> None:
    store.create_item("", "namespaces", {"metadata": {"name": "doomed"}})
    store.create_item("", "configmaps", cm("plain", "doomed"))
    store.create_item(
        "",
        "configmaps",
        {"metadata": {"name": "held", "namespace": "doomed", "finalizers": ["x/y"]}},
    )
    ns = store.delete_item("", "namespaces", "", "doomed")
    assert ns is not None and ns["status"]["phase"] == "Terminating"
    assert store.get_item("", "configmaps", "doomed", "plain") is None
    with pytest.raises(errors.StatusError) as info:
        store.create_item("", "configmaps", cm("late", "doomed"))
    assert info.value.code == 403 and "because it is being terminated" in info.value.message
    held = store.get_item("", "configmaps", "doomed", "held")
    ns = store.get_item("", "namespaces", "", "doomed")
    assert held is not None and ns is not None
    conds = {c["type"]: c for c in ns["status"]["conditions"]}
    assert conds["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps. has 1 resource instances"
    )
    assert conds["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: x/y in 1 resource instances"
    )
    store.update_item("", "configmaps", dict(held, metadata={**held["metadata"], "finalizers": []}))
    assert store.get_item("", "namespaces", "", "doomed") is None


def test_subscribe_and_history(store: Store) -> None:
    seen: list[tuple[str, str]] = []
    unsubscribe = store.subscribe(lambda t, g, r, o: seen.append((t, o["metadata"]["name"])))
    start = store.revision
    a = store.create_item("", "configmaps", cm("h"))
    store.update_item("", "configmaps", dict(a, data={"k": "v"}))
    store.delete_item("", "configmaps", "default", "h")
    unsubscribe()
    store.create_item("", "configmaps", cm("after"))
    assert seen == [("ADDED", "h"), ("MODIFIED", "h"), ("DELETED", "h")]
    hist = store.history_since(start)
    assert [e.type for e in hist] == ["ADDED", "MODIFIED", "DELETED", "ADDED"]
    assert [e.revision for e in hist] == sorted(e.revision for e in hist)
    with pytest.raises(errors.StatusError) as info:
        store.history_since(start - 1 - len(hist) * 100)
    assert info.value.code == 410 and info.value.reason == "Expired"


def test_bounded_history_expires_old_revisions() -> None:
    s = Store(watch_cache=WatchCache(lower_capacity=3, upper_capacity=3))
    s.seed()
    base = s.revision
    for i in range(5):
        s.create_item("", "configmaps", cm(f"c{i}"))
    with pytest.raises(errors.StatusError) as info:
        s.history_since(base, "", "configmaps")
    assert info.value.message == f"too old resource version: {base} ({base + 2})"
    assert len(s.history_since(base + 2, "", "configmaps")) == 3


def test_dry_run_changes_nothing(store: Store) -> None:
    rev = store.revision
    out = store.create_item("", "configmaps", cm("dry"), dry_run=True)
    assert out["metadata"]["name"] == "dry" and "resourceVersion" not in out["metadata"]
    assert store.get_item("", "configmaps", "default", "dry") is None and store.revision == rev


def test_namespace_spec_finalizers_and_finalize_subresource(store: Store) -> None:
    store.create_item(
        "",
        "namespaces",
        {"metadata": {"name": "held"}, "spec": {"finalizers": ["kubernetes", "example.com/x"]}},
    )
    store.delete_item("", "namespaces", "", "held")
    ns = store.get_item("", "namespaces", "", "held")
    assert ns is not None and ns["spec"]["finalizers"] == ["example.com/x"]
    ns = store.update_item(
        "", "namespaces", dict(ns, status={"phase": "Terminating", "x": 1}), "status"
    )
    assert store.get_item("", "namespaces", "", "held") is not None
    done = dict(ns, spec={"finalizers": []})
    store.update_item("", "namespaces", done, "finalize")
    assert store.get_item("", "namespaces", "", "held") is None


def test_foreground_deletion_waits_for_dependents(store: Store) -> None:
    owner = store.create_item(
        "apps", "deployments", {"metadata": {"name": "fg", "namespace": "default"}, "spec": {}}
    )
    ref = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "fg",
        "uid": owner["metadata"]["uid"],
    }
    store.create_item(
        "",
        "configmaps",
        {
            "metadata": {
                "name": "blocker",
                "namespace": "default",
                "ownerReferences": [ref],
                "finalizers": ["x/hold"],
            }
        },
    )
    store.create_item(
        "",
        "configmaps",
        {"metadata": {"name": "plain", "namespace": "default", "ownerReferences": [ref]}},
    )
    marked = store.delete_item("apps", "deployments", "default", "fg", propagation="Foreground")
    assert marked is not None
    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert store.get_item("", "configmaps", "default", "plain") is None
    assert store.get_item("apps", "deployments", "default", "fg") is not None
    blocker = store.get_item("", "configmaps", "default", "blocker")
    assert blocker is not None and blocker["metadata"]["deletionTimestamp"]
    store.update_item(
        "", "configmaps", dict(blocker, metadata={**blocker["metadata"], "finalizers": []})
    )
    assert store.get_item("apps", "deployments", "default", "fg") is None


def test_no_new_finalizers_while_deleting(store: Store) -> None:
    store.create_item(
        "", "configmaps", {"metadata": {"name": "d", "namespace": "default", "finalizers": ["a/b"]}}
    )
    marked = store.delete_item("", "configmaps", "default", "d")
    assert marked is not None
    more = dict(marked, metadata={**marked["metadata"], "finalizers": ["a/b", "c/d"]})
    with pytest.raises(errors.StatusError) as info:
        store.update_item("", "configmaps", more)
    assert info.value.code == 422
    assert info.value.message == (
        'ConfigMap "d" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added '
        'if the object is being deleted, found new finalizers []string{"c/d"}'
    )
