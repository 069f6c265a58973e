"""Selectors, patches, pagination tokens and managedFields: pure functions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesim import errors
from kubesim.listing import decode_continue, paginate
from kubesim.patch import json_patch, merge_patch, strategic_merge
from kubesim.resources import Registry
from kubesim.selectors import Selector
from kubesim.ssa import FieldManager, field_paths, from_fields_v1, to_fields_v1

POD = {
    "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web", "tier": "fe"}},
    "spec": {"nodeName": "n1"},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("labels", "fields", "match"),
    [
        ("app=web", "", True),
        ("app==web,tier!=db", "", True),
        ("app in (web,api),!missing", "", True),
        ("app notin (web)", "", False),
        ("tier", "", True),
        ("!tier", "", False),
        ("", "spec.nodeName=n1,status.phase=Running", True),
        ("", "metadata.namespace!=ns", False),
        ("", "spec.nodeName=", False),
        ("app=web", "metadata.name=q", False),
    ],
)
def test_selectors(labels: str, fields: str, match: bool) -> None:
    assert Selector(labels, fields).matches(POD) is match


def test_bad_field_selector_is_400() -> None:
    with pytest.raises(errors.StatusError) as info:
        Selector("", "nonsense")
    assert info.value.code == 400


def test_merge_patch_rfc7386() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}, "f": [1]}) == {
        "a": 1,
        "b": {"d": 3, "e": 4},
        "f": [1],
    }


def test_json_patch_ops_and_failed_test() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c", "value": 2},
            {"op": "move", "from": "/b/c", "path": "/d"},
            {"op": "remove", "path": "/a/0"},
            {"op": "test", "path": "/d", "value": 2},
        ],
    )
    assert out == {"a": [2, 3], "b": {}, "d": 2}
    assert doc == {"a": [1, 2], "b": {"c": 1}}
    with pytest.raises(errors.StatusError) as info:
        json_patch(doc, [{"op": "test", "path": "/a/0", "value": 9}])
    assert info.value.code == 422


def test_strategic_merge_by_key_and_directives() -> None:
    orig: dict[str, Any] = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "env": [{"name": "E", "value": "1"}],
                    "ports": [{"containerPort": 80}],
                },
                {"name": "b", "image": "y"},
            ]
        },
        "metadata": {"finalizers": ["f1"]},
    }
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "image": "x2",
                    "env": [{"name": "F", "value": "2"}],
                    "ports": [{"containerPort": 80, "name": "http"}],
                },
                {"name": "b", "$patch": "delete"},
                {"name": "c", "image": "z"},
            ]
        },
        "metadata": {"finalizers": ["f2"]},
    }
    out = strategic_merge(orig, patch)
    cs = out["spec"]["containers"]
    assert [c["name"] for c in cs] == ["a", "c"]
    assert cs[0]["image"] == "x2"
    # the patch's items first, then the items only the server had (rules/deployment-smp-*.json)
    assert cs[0]["env"] == [{"name": "F", "value": "2"}, {"name": "E", "value": "1"}]
    assert cs[0]["ports"] == [{"containerPort": 80, "name": "http"}]
    assert out["metadata"]["finalizers"] == ["f1", "f2"]
    svc = strategic_merge(
        {"spec": {"ports": [{"port": 80}, {"port": 443}]}},
        {"spec": {"ports": [{"port": 443, "name": "tls"}]}},
    )
    assert svc["spec"]["ports"] == [{"port": 80}, {"port": 443, "name": "tls"}]


def test_continue_tokens() -> None:
    items = [
        {"metadata": {"name": f"n{i}", "namespace": ns}} for ns in ("a", "a-b") for i in range(3)
    ]
    page, cont, remaining, rv = paginate(items, 4, "", 50, 0)
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in page][-1] == ("a-b", "n0")
    assert remaining == 2 and rv == 50
    assert decode_continue(cont) == (50, "a-b/n0\x00")
    page2, cont2, remaining2, _ = paginate(items, 4, cont, 60, 0)
    assert [i["metadata"]["name"] for i in page2] == ["n1", "n2"]
    assert cont2 == "" and remaining2 is None
    with pytest.raises(errors.StatusError) as info:
        paginate(items, 4, cont, 60, 51)
    assert info.value.code == 410 and info.value.metadata and "continue" in info.value.metadata
    with pytest.raises(errors.StatusError) as info:
        paginate(items, 4, "garbage!", 60, 0)
    assert info.value.code == 400


def test_fields_v1_round_trip() -> None:
    obj = {
        "metadata": {"name": "x", "labels": {"a": "1"}},
        "spec": {"containers": [{"name": "c", "image": "i"}], "replicas": 1},
    }
    paths = field_paths(obj)
    doc = to_fields_v1(paths)
    assert doc == {
        "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
        "f:spec": {
            "f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}, "f:name": {}}},
            "f:replicas": {},
        },
    }
    assert from_fields_v1(doc) == paths


def test_server_side_apply_conflicts_force_and_field_removal() -> None:
    rt = Registry().by_group_resource("", "configmaps")
    assert rt is not None
    fm = FieldManager()
    cfg = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "1", "b": "2"},
    }
    first = fm.apply(rt, None, cfg, "one", False, "")
    assert first["data"] == {"a": "1", "b": "2"}
    other = dict(cfg, data={"a": "9"})
    with pytest.raises(errors.StatusError) as info:
        fm.apply(rt, first, other, "two", False, "")
    assert info.value.code == 409
    assert info.value.message == 'Apply failed with 1 conflict: conflict with "one": .data.a'
    assert info.value.details == {
        "causes": [
            {"reason": "FieldManagerConflict", "message": 'conflict with "one"', "field": ".data.a"}
        ]
    }
    forced = fm.apply(rt, first, other, "two", True, "")
    assert forced["data"] == {"a": "9", "b": "2"}
    owners = {
        e["manager"]: from_fields_v1(e["fieldsV1"]) for e in forced["metadata"]["managedFields"]
    }
    assert ("f:data", "f:a") in owners["two"] and ("f:data", "f:a") not in owners["one"]
    shrunk = fm.apply(rt, forced, dict(cfg, data={"a": "9"}), "one", False, "")
    assert shrunk["data"] == {"a": "9"}  # "one" stopped applying b and nobody else owns it
    assert json.dumps(shrunk)  # serializable


def test_yaml_bodies_keep_timestamps_as_strings() -> None:
    from kubesim.codec import decode_object

    obj = decode_object(
        b"metadata: {name: a, creationTimestamp: 2026-01-01T00:00:00Z}\ndata: {d: 2026-01-01}",
        "application/yaml",
        "ConfigMap",
    )
    assert obj == {
        "metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "data": {"d": "2026-01-01"},
    }
    assert json.dumps(obj)


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
_objects = st.dictionaries(st.text(max_size=4), _json, max_size=4)


@given(_objects, _objects)
def test_merge_patch_is_idempotent(target: dict[str, Any], patch: dict[str, Any]) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


@given(_objects)
def test_strategic_merge_of_self_is_identity_without_nulls(obj: dict[str, Any]) -> None:
    def has_null(v: Any) -> bool:
        if v is None:
            return True
        if isinstance(v, dict):
            return any(has_null(x) for x in v.values()) or any(k.startswith("$") for k in v)
        if isinstance(v, list):
            return any(has_null(x) for x in v)
        return False

    if not has_null(obj):
        assert strategic_merge(obj, obj) == obj


def test_strategic_merge_set_element_order() -> None:
    orig = {"spec": {"containers": [{"name": "a"}, {"name": "b"}], "finalizers": ["x", "y"]}}
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
            "containers": [{"name": "c", "image": "i"}],
        }
    }
    out = strategic_merge(orig, patch)
    assert [c["name"] for c in out["spec"]["containers"]] == ["c", "b", "a"]
