"""Request body decoding and response encoding (JSON out, JSON/YAML/protobuf in)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from . import errors

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PROTOBUF_MAGIC = b"k8s\x00"
PROTOBUF_PREVIEW_BYTES = 30
JSON_ERROR_PREVIEW_BYTES = 64
TABLE_MARKER = "as=Table"
_ACCEPTABLE = ("application/json", "application/yaml", PROTOBUF, "*/*", "application/*")
NOT_ACCEPTABLE_MSG = (
    "406: Not Acceptable\n\nAvailable representations: application/json, application/yaml, "
    "application/vnd.kubernetes.protobuf"
)


class _JsonCompatibleLoader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings, as Go's YAML-to-JSON conversion does."""


_JsonCompatibleLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def dumps(obj: Any) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    h = {"Cache-Control": "no-cache, private"}
    if headers:
        h.update(headers)
    return web.Response(body=dumps(obj), status=status, content_type=JSON, headers=h)


def status_response(err: errors.StatusError, accept: str = "") -> web.Response:
    """The Status as JSON, or protobuf when that is all the client accepts."""
    if accept and PROTOBUF in accept and "json" not in accept and "*/*" not in accept:
        try:
            from . import protobuf
        except ImportError:
            protobuf = None  # type: ignore[assignment]
        if protobuf is not None and hasattr(protobuf, "encode_status"):
            resp = web.Response(
                body=protobuf.encode_status(err.status()),
                status=err.code,
                headers={"Cache-Control": "no-cache, private"},
            )
            resp.headers["Content-Type"] = PROTOBUF
            return resp
    return json_response(err.status(), status=err.code)


def text_response(text: str, status: int) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/plain",
        charset="utf-8",
        headers={"Cache-Control": "no-cache, private", "X-Content-Type-Options": "nosniff"},
    )


_GO_JSON_ERRORS = (
    (
        "Expecting property name enclosed in double quotes",
        "looking for beginning of object key string",
    ),
    ("Expecting value", "looking for beginning of value"),
    ("Extra data", "after top-level value"),
    ("Expecting ':' delimiter", "after object key"),
    ("Expecting ',' delimiter", "after object key:value pair"),
)


def go_json_error(exc: Exception) -> str:
    """Python's JSON error in encoding/json's words (what kube-apiserver reports)."""
    if not isinstance(exc, json.JSONDecodeError):
        return str(exc)
    if exc.pos >= len(exc.doc):
        return "unexpected end of JSON input"
    ch = exc.doc[exc.pos]
    for py, go in _GO_JSON_ERRORS:
        if exc.msg.startswith(py):
            return f"invalid character {ch!r} {go}"
    return exc.msg


def check_accept(accept: str) -> None:
    if not accept:
        return
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in _ACCEPTABLE or not media:
            return
    raise errors.StatusError(406, "NotAcceptable", NOT_ACCEPTABLE_MSG, {})


def decode_object(body: bytes, content_type: str, kind: str) -> dict[str, Any]:
    """Decode a create/update body of Content-Type json, yaml or protobuf."""
    ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
    if ctype in ("", JSON):
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {kind}): couldn't get "
                f"version/kind; json parse error: {go_json_error(exc)} "
                f"({body[:JSON_ERROR_PREVIEW_BYTES].decode(errors='replace')})"
            ) from exc
    elif ctype in ("application/yaml", "application/apply-patch+yaml"):
        try:
            obj = yaml.load(body, Loader=_JsonCompatibleLoader)  # noqa: S506 (safe subclass)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from exc
    elif ctype == PROTOBUF:
        obj = decode_protobuf(body, kind)
    else:
        raise errors.StatusError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    if not isinstance(obj, dict):
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {kind}): couldn't get "
            "version/kind; json parse error: expected an object"
        )
    return obj


def decode_protobuf(body: bytes, kind: str) -> dict[str, Any]:
    if not body.startswith(PROTOBUF_MAGIC):
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {kind}): provided data does "
            f"not appear to be a protobuf message, expected prefix [107 56 115 0] "
            f"({body[:PROTOBUF_PREVIEW_BYTES].hex()} ...)"
        )
    try:
        from . import protobuf
    except ImportError:
        protobuf = None  # type: ignore[assignment]
    if protobuf is not None:
        try:
            result: dict[str, Any] = protobuf.decode(body, kind)
            return result
        except errors.StatusError:
            raise
        except Exception as exc:
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {kind}): {exc} "
                f"({body[:PROTOBUF_PREVIEW_BYTES].hex()})"
            ) from exc
    raise errors.bad_request(
        f"the object provided is unrecognized (must be of type {kind}): proto: illegal "
        f"wireType 7 ({body[:PROTOBUF_PREVIEW_BYTES].hex()})"
    )


def wants_table(accept: str) -> bool:
    return TABLE_MARKER in accept and "g=meta.k8s.io" in accept


def wants_partial_metadata(accept: str) -> str | None:
    for kind in ("PartialObjectMetadataList", "PartialObjectMetadata"):
        if f"as={kind}" in accept:
            return kind
    return None
