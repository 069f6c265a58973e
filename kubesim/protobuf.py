"""Decoding of the Kubernetes protobuf envelope for the few kinds kubectl sends as protobuf.

kubectl 1.32 posts ``application/vnd.kubernetes.protobuf`` bodies for ``create ns``,
``auth can-i`` (SelfSubjectAccessReview / SelfSubjectRulesReview), ``auth whoami``
(SelfSubjectReview) and ``create token`` (TokenRequest). A body is the magic ``k8s\\0``
followed by a ``runtime.Unknown`` message (typeMeta, raw, contentEncoding, contentType);
``raw`` holds the object itself. This module has a minimal wire-format reader (no protobuf
library) and per-kind schemas with the field numbers of the Kubernetes ``generated.proto``
files, and turns a body into the JSON dict form the rest of the stand-in works with.

Errors carry kube-apiserver's wording (``transformDecodeError`` and gogo-protobuf's
messages), so a garbage body gets the same 400 as from the real server. It is pure: no I/O.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubesim.errors import StatusError

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
SUMMARY_BYTES = 30
MAX_VARINT_BYTES = 10
MAX_DEPTH = 32

WIRE_VARINT = 0
WIRE_FIXED64 = 1
WIRE_BYTES = 2
WIRE_START_GROUP = 3
WIRE_END_GROUP = 4
WIRE_FIXED32 = 5


class ProtoError(ValueError):
    """The bytes are not a well-formed protobuf message (message in gogo-protobuf's words)."""


# --- wire format -------------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    for shift_i in range(MAX_VARINT_BYTES):
        if pos >= len(data):
            raise ProtoError("unexpected EOF")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << (7 * shift_i)
        if b < 0x80:
            return result, pos
    raise ProtoError("proto: integer overflow")


def iter_fields(data: bytes, message: str = "") -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field number, wire type, value)`` in order; bytes fields stay raw.

    A generator, so that (as in gogo-protobuf) a nested message fails before later bytes
    of its parent are looked at.
    """
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == WIRE_END_GROUP:
            raise ProtoError(f"proto: {message}: wiretype end group for non-group")
        if field <= 0:
            raise ProtoError(f"proto: {message}: illegal tag {field} (wire type {wire})")
        value: int | bytes
        if wire == WIRE_VARINT:
            value, pos = _varint(data, pos)
        elif wire == WIRE_FIXED64:
            if pos + 8 > len(data):
                raise ProtoError("unexpected EOF")
            value = int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        elif wire == WIRE_FIXED32:
            if pos + 4 > len(data):
                raise ProtoError("unexpected EOF")
            value = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        elif wire == WIRE_BYTES:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtoError("unexpected EOF")
            value = data[pos : pos + length]
            pos += length
        else:
            # groups and wire types 6/7: gogo's skip routine rejects anything but 0, 1, 2, 5
            raise ProtoError(f"proto: illegal wireType {wire}")
        yield field, wire, value


def _put_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _put_bytes(field: int, value: bytes) -> bytes:
    return _put_varint(field << 3 | WIRE_BYTES) + _put_varint(len(value)) + value


def _put_int(field: int, value: int) -> bytes:
    return _put_varint(field << 3 | WIRE_VARINT) + _put_varint(value & 0xFFFFFFFFFFFFFFFF)


# --- schemas (field numbers from k8s.io/api and apimachinery generated.proto) ----------------


@dataclass(frozen=True)
class F:
    """One field: JSON name, type (scalar name, ``map:<value type>`` or a message name).

    Zero values are left out of the JSON form (``omitempty``) unless ``keep`` is set: for
    pointer fields such as ``replicas`` a zero on the wire is meaningful.
    """

    name: str
    kind: str
    repeated: bool = False
    keep: bool = False


SCHEMAS: dict[str, dict[int, F]] = {
    "TypeMeta": {1: F("apiVersion", "string"), 2: F("kind", "string")},
    "Unknown": {
        1: F("typeMeta", "TypeMeta"),
        2: F("raw", "bytes"),
        3: F("contentEncoding", "string"),
        4: F("contentType", "string"),
    },
    "ObjectMeta": {
        1: F("name", "string"),
        2: F("generateName", "string"),
        3: F("namespace", "string"),
        4: F("selfLink", "string"),
        5: F("uid", "string"),
        6: F("resourceVersion", "string"),
        7: F("generation", "int64"),
        8: F("creationTimestamp", "Time"),
        9: F("deletionTimestamp", "Time"),
        10: F("deletionGracePeriodSeconds", "int64", keep=True),
        11: F("labels", "map:string"),
        12: F("annotations", "map:string"),
        13: F("ownerReferences", "OwnerReference", repeated=True),
        14: F("finalizers", "string", repeated=True),
    },
    "OwnerReference": {
        1: F("kind", "string"),
        3: F("name", "string"),
        4: F("uid", "string"),
        5: F("apiVersion", "string"),
        6: F("controller", "bool"),
        7: F("blockOwnerDeletion", "bool"),
    },
    "Time": {1: F("seconds", "int64"), 2: F("nanos", "int32")},
    "Namespace": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "NamespaceSpec"),
        3: F("status", "NamespaceStatus"),
    },
    "NamespaceSpec": {1: F("finalizers", "string", repeated=True)},
    "NamespaceStatus": {1: F("phase", "string")},
    "SelfSubjectAccessReview": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "SelfSubjectAccessReviewSpec"),
        3: F("status", "SubjectAccessReviewStatus"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: F("resourceAttributes", "ResourceAttributes"),
        2: F("nonResourceAttributes", "NonResourceAttributes"),
    },
    "ResourceAttributes": {
        1: F("namespace", "string"),
        2: F("verb", "string"),
        3: F("group", "string"),
        4: F("version", "string"),
        5: F("resource", "string"),
        6: F("subresource", "string"),
        7: F("name", "string"),
        8: F("fieldSelector", "SelectorAttributes"),
        9: F("labelSelector", "SelectorAttributes"),
    },
    "SelectorAttributes": {1: F("rawSelector", "string")},
    "NonResourceAttributes": {1: F("path", "string"), 2: F("verb", "string")},
    "SubjectAccessReviewStatus": {
        1: F("allowed", "bool", keep=True),
        4: F("denied", "bool"),
        2: F("reason", "string"),
        3: F("evaluationError", "string"),
    },
    "SelfSubjectRulesReview": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "SelfSubjectRulesReviewSpec"),
    },
    "SelfSubjectRulesReviewSpec": {1: F("namespace", "string")},
    "SelfSubjectReview": {
        1: F("metadata", "ObjectMeta"),
        2: F("status", "SelfSubjectReviewStatus"),
    },
    "SelfSubjectReviewStatus": {1: F("userInfo", "UserInfo")},
    "UserInfo": {
        1: F("username", "string"),
        2: F("uid", "string"),
        3: F("groups", "string", repeated=True),
        4: F("extra", "map:ExtraValue"),
    },
    "ExtraValue": {1: F("items", "string", repeated=True)},
    "TokenRequest": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "TokenRequestSpec"),
        3: F("status", "TokenRequestStatus"),
    },
    "TokenRequestSpec": {
        1: F("audiences", "string", repeated=True),
        4: F("expirationSeconds", "int64", keep=True),
        3: F("boundObjectRef", "BoundObjectReference"),
    },
    "BoundObjectReference": {
        1: F("kind", "string"),
        2: F("apiVersion", "string"),
        3: F("name", "string"),
        4: F("uid", "string"),
    },
    "TokenRequestStatus": {1: F("token", "string"), 2: F("expirationTimestamp", "Time")},
    "TokenReview": {1: F("metadata", "ObjectMeta"), 2: F("spec", "TokenReviewSpec")},
    "TokenReviewSpec": {1: F("token", "string"), 2: F("audiences", "string", repeated=True)},
    # what ``kubectl create serviceaccount|configmap|secret|role|rolebinding|...`` sends
    "ServiceAccount": {
        1: F("metadata", "ObjectMeta"),
        2: F("secrets", "ObjectReference", repeated=True),
        3: F("imagePullSecrets", "LocalObjectReference", repeated=True),
        4: F("automountServiceAccountToken", "bool", keep=True),
    },
    "ObjectReference": {
        1: F("kind", "string"),
        2: F("namespace", "string"),
        3: F("name", "string"),
        4: F("uid", "string"),
        5: F("apiVersion", "string"),
        6: F("resourceVersion", "string"),
        7: F("fieldPath", "string"),
    },
    "LocalObjectReference": {1: F("name", "string")},
    "ConfigMap": {
        1: F("metadata", "ObjectMeta"),
        2: F("data", "map:string"),
        3: F("binaryData", "map:b64"),
        4: F("immutable", "bool", keep=True),
    },
    "Secret": {
        1: F("metadata", "ObjectMeta"),
        2: F("data", "map:b64"),
        3: F("type", "string"),
        4: F("stringData", "map:string"),
        5: F("immutable", "bool", keep=True),
    },
    "PolicyRule": {
        1: F("verbs", "string", repeated=True),
        2: F("apiGroups", "string", repeated=True),
        3: F("resources", "string", repeated=True),
        4: F("resourceNames", "string", repeated=True),
        5: F("nonResourceURLs", "string", repeated=True),
    },
    "Role": {1: F("metadata", "ObjectMeta"), 2: F("rules", "PolicyRule", repeated=True)},
    "ClusterRole": {
        1: F("metadata", "ObjectMeta"),
        2: F("rules", "PolicyRule", repeated=True),
        3: F("aggregationRule", "AggregationRule"),
    },
    "AggregationRule": {1: F("clusterRoleSelectors", "LabelSelector", repeated=True)},
    "LabelSelector": {
        1: F("matchLabels", "map:string"),
        2: F("matchExpressions", "LabelSelectorRequirement", repeated=True),
    },
    "LabelSelectorRequirement": {
        1: F("key", "string"),
        2: F("operator", "string"),
        3: F("values", "string", repeated=True),
    },
    "Subject": {
        1: F("kind", "string"),
        2: F("apiGroup", "string"),
        3: F("name", "string"),
        4: F("namespace", "string"),
    },
    "RoleRef": {1: F("apiGroup", "string"), 2: F("kind", "string"), 3: F("name", "string")},
    "RoleBinding": {
        1: F("metadata", "ObjectMeta"),
        2: F("subjects", "Subject", repeated=True),
        3: F("roleRef", "RoleRef"),
    },
    # ``kubectl create deployment`` / ``kubectl create service``: the fields those generators set
    "Deployment": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "DeploymentSpec"),
        3: F("status", "Empty"),
    },
    "DeploymentSpec": {
        1: F("replicas", "int32", keep=True),
        2: F("selector", "LabelSelector"),
        3: F("template", "PodTemplateSpec"),
        4: F("strategy", "DeploymentStrategy"),
        5: F("minReadySeconds", "int32"),
        6: F("revisionHistoryLimit", "int32", keep=True),
        7: F("paused", "bool"),
        9: F("progressDeadlineSeconds", "int32", keep=True),
    },
    "DeploymentStrategy": {1: F("type", "string"), 2: F("rollingUpdate", "RollingUpdate")},
    "RollingUpdate": {1: F("maxUnavailable", "IntOrString"), 2: F("maxSurge", "IntOrString")},
    "PodTemplateSpec": {1: F("metadata", "ObjectMeta"), 2: F("spec", "PodSpec")},
    "PodSpec": {
        2: F("containers", "Container", repeated=True),
        3: F("restartPolicy", "string"),
        4: F("terminationGracePeriodSeconds", "int64", keep=True),
        6: F("dnsPolicy", "string"),
        7: F("nodeSelector", "map:string"),
        8: F("serviceAccountName", "string"),
        10: F("nodeName", "string"),
        11: F("hostNetwork", "bool"),
        16: F("hostname", "string"),
        19: F("schedulerName", "string"),
        20: F("initContainers", "Container", repeated=True),
        21: F("automountServiceAccountToken", "bool", keep=True),
    },
    "Container": {
        1: F("name", "string"),
        2: F("image", "string"),
        3: F("command", "string", repeated=True),
        4: F("args", "string", repeated=True),
        5: F("workingDir", "string"),
        6: F("ports", "ContainerPort", repeated=True),
        7: F("env", "EnvVar", repeated=True),
        8: F("resources", "ResourceRequirements"),
        13: F("terminationMessagePath", "string"),
        14: F("imagePullPolicy", "string"),
        16: F("stdin", "bool"),
        17: F("stdinOnce", "bool"),
        18: F("tty", "bool"),
        20: F("terminationMessagePolicy", "string"),
    },
    "ContainerPort": {
        1: F("name", "string"),
        2: F("hostPort", "int32"),
        3: F("containerPort", "int32", keep=True),
        4: F("protocol", "string"),
        5: F("hostIP", "string"),
    },
    "EnvVar": {1: F("name", "string"), 2: F("value", "string")},
    "ResourceRequirements": {1: F("limits", "map:Quantity"), 2: F("requests", "map:Quantity")},
    "Quantity": {1: F("string", "string")},
    "IntOrString": {1: F("type", "int64"), 2: F("intVal", "int32"), 3: F("strVal", "string")},
    "Empty": {},
    "Service": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "ServiceSpec"),
        3: F("status", "Empty"),
    },
    "ServiceSpec": {
        1: F("ports", "ServicePort", repeated=True),
        2: F("selector", "map:string"),
        3: F("clusterIP", "string"),
        4: F("type", "string"),
        5: F("externalIPs", "string", repeated=True),
        7: F("sessionAffinity", "string"),
        10: F("externalName", "string"),
        11: F("externalTrafficPolicy", "string"),
        17: F("ipFamilyPolicy", "string"),
        18: F("clusterIPs", "string", repeated=True),
        19: F("ipFamilies", "string", repeated=True),
        22: F("internalTrafficPolicy", "string"),
    },
    "ServicePort": {
        1: F("name", "string"),
        2: F("protocol", "string"),
        3: F("port", "int32", keep=True),
        4: F("targetPort", "IntOrString"),
        5: F("nodePort", "int32"),
        6: F("appProtocol", "string"),
    },
}
SCHEMAS["ClusterRoleBinding"] = SCHEMAS["RoleBinding"]

# (apiVersion, kind) pairs this module can decode; anything else is answered with 415
DECODABLE: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
    ("authentication.k8s.io/v1", "TokenReview"): "TokenReview",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("apps/v1", "Deployment"): "Deployment",
    ("v1", "Service"): "Service",
}

_SCALARS = {"string", "bytes", "b64", "bool", "int64", "int32"}


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(kind: str, wire: int, value: int | bytes, fname: str) -> Any:
    want_bytes = kind in ("string", "bytes", "b64")
    if want_bytes != isinstance(value, bytes) or (not want_bytes and wire != WIRE_VARINT):
        raise ProtoError(
            f"proto: wrong wireType = {wire} for field {fname[:1].upper() + fname[1:]}"
        )
    if kind == "string":
        assert isinstance(value, bytes)
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtoError(f"proto: invalid UTF-8 in field {fname}") from exc
    if kind == "bytes":
        return value
    if kind == "b64":
        assert isinstance(value, bytes)
        return base64.b64encode(value).decode("ascii")
    assert isinstance(value, int)
    if kind == "bool":
        return value != 0
    return _int64(value)


def _time(data: bytes, depth: int) -> str | None:
    parts = decode_message(data, "Time", depth)
    seconds = int(parts.get("seconds", 0))
    if seconds == 0 and not parts.get("nanos"):
        return None
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _map_entry(data: bytes, value_kind: str, depth: int) -> tuple[str, Any]:
    key = ""
    value: Any = "" if value_kind in _SCALARS else []
    for field, wire, raw in iter_fields(data, "MapEntry"):
        if field == 1:
            key = _scalar("string", wire, raw, "key")
        elif field == 2:
            if value_kind in _SCALARS:
                value = _scalar(value_kind, wire, raw, "value")
            else:
                if not isinstance(raw, bytes):
                    raise ProtoError(f"proto: wrong wireType = {wire} for field Value")
                value = _nested(raw, value_kind, depth + 1)
                if value_kind == "ExtraValue":
                    value = value.get("items", [])
    return key, value


def _nested(data: bytes, kind: str, depth: int) -> Any:
    """A nested message in JSON form; a few types have a scalar JSON form."""
    if kind == "Time":
        return _time(data, depth)
    msg = decode_message(data, kind, depth)
    if kind == "Quantity":
        return msg.get("string", "0")
    if kind == "IntOrString":
        return msg.get("strVal", "") if msg.get("type") == 1 else msg.get("intVal", 0)
    return msg


def decode_message(data: bytes, schema: str, depth: int = 0) -> dict[str, Any]:
    """Decode ``data`` as message ``schema`` into JSON form (zero values are left out)."""
    if depth > MAX_DEPTH:
        raise ProtoError("proto: message nested too deeply")
    fields = SCHEMAS[schema]
    out: dict[str, Any] = {}
    for number, wire, value in iter_fields(data, schema):
        spec = fields.get(number)
        if spec is None:
            continue  # unknown fields are skipped, as gogo-protobuf does
        if spec.kind.startswith("map:"):
            if not isinstance(value, bytes):
                raise ProtoError(f"proto: wrong wireType = {wire} for field {spec.name}")
            k, v = _map_entry(value, spec.kind[4:], depth)
            out.setdefault(spec.name, {})[k] = v
            continue
        item: Any
        if spec.kind in _SCALARS:
            item = _scalar(spec.kind, wire, value, spec.name)
        else:
            if not isinstance(value, bytes):
                raise ProtoError(f"proto: wrong wireType = {wire} for field {spec.name}")
            item = _nested(value, spec.kind, depth + 1)
        if spec.repeated:
            out.setdefault(spec.name, []).append(item)
        else:
            out[spec.name] = item
    keep = {f.name for f in fields.values() if f.keep}
    return {k: v for k, v in out.items() if v not in ("", None, 0, False) or k in keep}


# --- the envelope and the API-facing entry point ------------------------------------------


def summarize(data: bytes) -> str:
    """kube-apiserver's ``summarizeData``: the first bytes, as text if JSON-like, else hex."""
    if not data:
        return "<empty>"
    if data[:1] == b"{":
        text = data[:SUMMARY_BYTES].decode("utf-8", "replace")
        return text + " ..." if len(data) > SUMMARY_BYTES else text
    return data[:SUMMARY_BYTES].hex() + (" ..." if len(data) > SUMMARY_BYTES else "")


def _unrecognized(expected_kind: str, why: str, body: bytes) -> StatusError:
    return StatusError(
        400,
        "BadRequest",
        f"the object provided is unrecognized (must be of type {expected_kind}): "
        f"{why} ({summarize(body)})",
    )


def unsupported_media_type() -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf",
    )


def decode(body: bytes, expected_kind: str = "") -> dict[str, Any]:
    """Decode a protobuf request body into the JSON dict form (with apiVersion and kind).

    ``expected_kind`` is the kind the URL takes (it only shapes error messages). Raises
    ``StatusError``: 400 with kube-apiserver's message for bytes that are not a protobuf
    object, 415 for a well-formed body of a kind this stand-in does not decode.
    """
    expected = expected_kind or "Unknown"
    if len(body) < len(MAGIC) or body[: len(MAGIC)] != MAGIC:
        why = (
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
        raise _unrecognized(expected, why, body)
    try:
        envelope = decode_message(body[len(MAGIC) :], "Unknown")
    except ProtoError as exc:
        raise _unrecognized(expected, str(exc), body) from exc
    type_meta = envelope.get("typeMeta", {})
    api_version = str(type_meta.get("apiVersion", ""))
    kind = str(type_meta.get("kind", ""))
    if not kind:
        raise _unrecognized(expected, "Object 'Kind' is missing in '" + summarize(body) + "'", body)
    schema = DECODABLE.get((api_version, kind))
    if schema is None or envelope.get("contentEncoding"):
        raise unsupported_media_type()
    raw = envelope.get("raw", b"")
    assert isinstance(raw, bytes)
    try:
        obj = decode_message(raw, schema)
    except ProtoError as exc:
        version = api_version.rsplit("/", 1)[-1]
        raise StatusError(
            400,
            "BadRequest",
            f'{kind} in version "{version}" cannot be handled as a {expected_kind or kind}: {exc}',
        ) from exc
    return {"kind": kind, "apiVersion": api_version, **obj}


# --- encoding a Status (for clients that accept only protobuf) -----------------------------


def _put_str(field: int, value: str) -> bytes:
    return _put_bytes(field, value.encode("utf-8"))


def encode_status(status: dict[str, Any]) -> bytes:
    """A ``Status`` as kube-apiserver writes it when the client accepts only protobuf."""
    meta = status.get("metadata") or {}
    list_meta = (
        _put_str(1, str(meta.get("selfLink", "")))
        + _put_str(2, str(meta.get("resourceVersion", "")))
        + _put_str(3, str(meta.get("continue", "")))
    )
    body = _put_bytes(1, list_meta)
    body += _put_str(2, str(status.get("status", "")))
    body += _put_str(3, str(status.get("message", "")))
    body += _put_str(4, str(status.get("reason", "")))
    det = status.get("details")
    if det is not None:
        d = _put_str(1, str(det.get("name", ""))) + _put_str(2, str(det.get("group", "")))
        d += _put_str(3, str(det.get("kind", "")))
        for cause in det.get("causes", []):
            c = _put_str(1, str(cause.get("reason", ""))) + _put_str(
                2, str(cause.get("message", ""))
            )
            c += _put_str(3, str(cause.get("field", "")))
            d += _put_bytes(4, c)
        d += _put_int(5, int(det.get("retryAfterSeconds", 0))) + _put_str(
            6, str(det.get("uid", ""))
        )
        body += _put_bytes(5, d)
    body += _put_int(6, int(status.get("code", 0)))
    type_meta = _put_str(1, "v1") + _put_str(2, "Status")
    envelope = _put_bytes(1, type_meta) + _put_bytes(2, body) + _put_str(3, "") + _put_str(4, "")
    return MAGIC + envelope
