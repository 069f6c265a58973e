"""kubesim.protobuf against the bytes kubectl 1.32 really sent, and kube-apiserver's errors."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from kubesim import protobuf
from kubesim.errors import StatusError

from .captures import load, request_bodies

VECTORS = Path(__file__).parent / "vectors"
RBAC_V1 = "rbac.authorization.k8s.io/v1"
# bodies kubectl 1.32.4 sent for `kubectl create ...` (recorded with -v=8 or on the wire),
# and their JSON form (as `kubectl create ... --dry-run=client -o json` shows the same objects)
CREATE_VECTORS: dict[str, dict[str, Any]] = {
    "sa": {
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": {"name": "vec-sa", "namespace": "tr"},
    },
    "cm": {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "vec-cm", "namespace": "tr"},
        "data": {"a": "b", "empty": ""},
    },
    "secret": {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "vec-s", "namespace": "tr"},
        "data": {"x": "eQ=="},
        "type": "example.com/t",
    },
    "role": {
        "kind": "Role",
        "apiVersion": RBAC_V1,
        "metadata": {"name": "vec-r", "namespace": "tr"},
        "rules": [
            {
                "verbs": ["get", "list"],
                "apiGroups": [""],
                "resources": ["pods", "pods/log"],
                "resourceNames": ["p1"],
            }
        ],
    },
    "cr": {
        "kind": "ClusterRole",
        "apiVersion": RBAC_V1,
        "metadata": {"name": "vec-cr"},
        "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz/*"]}],
    },
    "agg": {
        "kind": "ClusterRole",
        "apiVersion": RBAC_V1,
        "metadata": {"name": "vec-agg"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]},
    },
    "crb": {
        "kind": "ClusterRoleBinding",
        "apiVersion": RBAC_V1,
        "metadata": {"name": "vec-crb"},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}],
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "vec-cr",
        },
    },
    "deploy": {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": "tr", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx",
                            "ports": [{"containerPort": 80}],
                            "resources": {},
                        }
                    ]
                },
            },
            "strategy": {},
        },
        "status": {},
    },
    "svc": {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"name": "svc1", "namespace": "tr", "labels": {"app": "svc1"}},
        "spec": {
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "svc1"},
            "type": "ClusterIP",
        },
        "status": {},
    },
    "np": {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"name": "np1", "namespace": "tr", "labels": {"app": "np1"}},
        "spec": {
            "ports": [
                {
                    "name": "80-http",
                    "protocol": "TCP",
                    "port": 80,
                    "targetPort": "http",
                    "nodePort": 30080,
                }
            ],
            "selector": {"app": "np1"},
            "type": "NodePort",
        },
        "status": {},
    },
    "ns": {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "vec-ns"},
        "spec": {},
        "status": {},
    },
}


@pytest.mark.parametrize("name", sorted(CREATE_VECTORS))
def test_kubectl_create_bodies(name: str) -> None:
    body = bytes.fromhex((VECTORS / f"create-{name}.hex").read_text().strip())
    assert protobuf.decode(body) == CREATE_VECTORS[name]


def test_create_namespace_body() -> None:
    (body,) = request_bodies("create-ns-x")
    obj = protobuf.decode(body, "Namespace")
    assert obj["kind"] == "Namespace"
    assert obj["apiVersion"] == "v1"
    assert obj["metadata"] == {"name": "x"}


def test_self_subject_access_review_body() -> None:
    bodies = [b for b in request_bodies("auth-can-i-create-pods") if b]
    obj = protobuf.decode(bodies[-1], "SelfSubjectAccessReview")
    assert obj["apiVersion"] == "authorization.k8s.io/v1"
    assert obj["kind"] == "SelfSubjectAccessReview"
    assert obj["spec"] == {
        "resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}
    }


def test_self_subject_review_body() -> None:
    (body,) = request_bodies("auth-whoami")
    obj = protobuf.decode(body)
    assert (obj["apiVersion"], obj["kind"]) == ("authentication.k8s.io/v1", "SelfSubjectReview")


def test_token_request_body() -> None:
    (body,) = request_bodies("create-token-sa")
    obj = protobuf.decode(body, "TokenRequest")
    assert (obj["apiVersion"], obj["kind"]) == ("authentication.k8s.io/v1", "TokenRequest")
    assert obj["spec"] == {}


def _put(field: int, payload: bytes) -> bytes:
    return bytes([field << 3 | 2, len(payload)]) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _put(1, api_version.encode()) + _put(2, kind.encode())
    return protobuf.MAGIC + _put(1, type_meta) + _put(2, raw) + _put(3, b"") + _put(4, b"")


def test_token_request_with_audiences_expiry_and_bound_object() -> None:
    ref = _put(1, b"Pod") + _put(2, b"v1") + _put(3, b"web-0") + _put(4, b"u-1")
    spec = _put(1, b"aud-a") + _put(1, b"aud-b") + _put(3, ref) + bytes([4 << 3, 0xB0, 0x09])
    obj = protobuf.decode(_envelope("authentication.k8s.io/v1", "TokenRequest", _put(2, spec)))
    assert obj["spec"] == {
        "audiences": ["aud-a", "aud-b"],
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": "u-1"},
        "expirationSeconds": 1200,
    }


def test_namespace_labels_annotations_generate_name() -> None:
    labels = _put(11, _put(1, b"team") + _put(2, b"blue"))
    annotations = _put(12, _put(1, b"a/b") + _put(2, b"c"))
    meta = _put(2, b"gen-") + labels + annotations
    spec = _put(1, b"kubernetes")
    obj = protobuf.decode(_envelope("v1", "Namespace", _put(1, meta) + _put(2, spec)))
    assert obj["metadata"] == {
        "generateName": "gen-",
        "labels": {"team": "blue"},
        "annotations": {"a/b": "c"},
    }
    assert obj["spec"] == {"finalizers": ["kubernetes"]}


def test_non_resource_access_review() -> None:
    non = _put(1, b"/healthz") + _put(2, b"get")
    raw = _put(2, _put(2, non))
    obj = protobuf.decode(_envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", raw))
    assert obj["spec"] == {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}


@pytest.mark.parametrize(
    "capture",
    [
        "status/create-protobuf-garbage-body-json-accept.json",
        "status/create-protobuf-magic-then-garbage.json",
    ],
)
def test_garbage_bodies_get_kube_apiservers_answer(capture: str) -> None:
    case = load(capture)
    body = base64.b64decode(case["request"]["body_base64"])
    with pytest.raises(StatusError) as info:
        protobuf.decode(body, "ConfigMap")
    assert info.value.status() == case["response"]["body"]


def test_other_kinds_are_unsupported_media_type() -> None:
    body = _envelope("v1", "Pod", _put(1, _put(1, b"p")))
    with pytest.raises(StatusError) as info:
        protobuf.decode(body, "Pod")
    assert info.value.code == 415
    assert info.value.reason == "UnsupportedMediaType"


@pytest.mark.parametrize("cut", range(1, 40))
def test_truncated_bodies_fail_cleanly(cut: int) -> None:
    (body,) = request_bodies("auth-whoami")
    try:
        protobuf.decode(body[: len(body) - cut])
    except StatusError as exc:
        assert exc.code in (400, 415)


def test_status_encoding_matches_capture() -> None:
    case = load("status/create-protobuf-garbage-body-protobuf-accept.json")
    json_case = load("status/create-protobuf-garbage-body-json-accept.json")
    expected = base64.b64decode(case["response"]["body_base64"])
    assert protobuf.encode_status(json_case["response"]["body"]) == expected


def test_zero_on_the_wire_is_kept_for_pointer_fields() -> None:
    spec = bytes([1 << 3, 0])  # replicas: 0 (kubectl create deployment --replicas=0)
    obj = protobuf.decode(_envelope("apps/v1", "Deployment", _put(2, spec)))
    assert obj["spec"] == {"replicas": 0}
    empty_name = _put(1, b"")
    obj = protobuf.decode(_envelope("v1", "Namespace", _put(1, empty_name)))
    assert obj["metadata"] == {}


def test_rules_review_and_token_review_bodies() -> None:
    raw = _put(2, _put(1, b"tr"))
    obj = protobuf.decode(_envelope("authorization.k8s.io/v1", "SelfSubjectRulesReview", raw))
    assert obj["spec"] == {"namespace": "tr"}
    raw = _put(2, _put(1, b"tok") + _put(2, b"api"))
    obj = protobuf.decode(_envelope("authentication.k8s.io/v1", "TokenReview", raw))
    assert obj["spec"] == {"token": "tok", "audiences": ["api"]}
