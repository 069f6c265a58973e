"""Typed msgpack messages for traffic that is not a byte stream (events, stats, node info, health).

A message is a frozen dataclass registered under a short ``KIND``; on the wire it is the msgpack
array ``[kind, {field: value, ...}]``. Decoding validates every field against its annotation
(``str``, ``int``, ``float``, ``bool``, ``bytes``, ``list[...]``, ``dict[str, ...]``, ``Any`` and
``X | None``). A kind this side does not know decodes to :class:`UnknownMessage`, so a newer peer
can add messages without breaking an older one. Other packages add their own messages with
:func:`register`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, TypeVar, Union

import msgpack

from .constants import MAX_MESSAGE_BYTES
from .errors import LocalProtocolError, RemoteProtocolError

MAX_KIND_BYTES = 64
MAX_NESTING_DEPTH = 16


@dataclasses.dataclass(frozen=True)
class Message:
    """Base class; subclasses set ``KIND`` and are decorated with :func:`register`."""

    KIND: ClassVar[str] = ""


@dataclasses.dataclass(frozen=True)
class UnknownMessage(Message):
    """A message of a kind this side does not know (kept, not rejected)."""

    kind: str
    body: dict[str, Any]


M = TypeVar("M", bound=type[Message])
_REGISTRY: dict[str, type[Message]] = {}
_HINTS: dict[type[Message], dict[str, Any]] = {}


def register(cls: M) -> M:
    """Class decorator: make a message dataclass encodable and decodable."""
    kind = cls.KIND
    if not kind or len(kind.encode()) > MAX_KIND_BYTES:
        raise ValueError(f"{cls.__name__}: KIND must be 1..{MAX_KIND_BYTES} bytes")
    if kind in _REGISTRY and _REGISTRY[kind] is not cls:
        raise ValueError(f"message kind {kind!r} already registered")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass")
    _REGISTRY[kind] = cls
    _HINTS[cls] = typing.get_type_hints(cls)
    return cls


def encode(msg: Message) -> bytes:
    cls = type(msg)
    if cls not in _HINTS:
        raise LocalProtocolError(f"message class {cls.__name__} is not registered")
    body = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
    raw: bytes = msgpack.packb([cls.KIND, body], use_bin_type=True)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise LocalProtocolError("message too large")
    return raw


def decode(raw: bytes | memoryview) -> Message:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise RemoteProtocolError("message too large")
    try:
        obj = msgpack.unpackb(raw, raw=False, strict_map_key=True, use_list=True)
    except Exception:  # msgpack raises several unrelated types on garbage
        raise RemoteProtocolError("message is not valid msgpack") from None
    if not (
        isinstance(obj, list)
        and len(obj) == 2
        and isinstance(obj[0], str)
        and isinstance(obj[1], dict)
    ):
        raise RemoteProtocolError("message is not [kind, body]")
    kind, body = obj
    _check_depth(body, 0)
    cls = _REGISTRY.get(kind)
    if cls is None:
        return UnknownMessage(kind=kind, body=body)
    hints = _HINTS[cls]
    names = {f.name for f in dataclasses.fields(cls)}
    if set(body) - names:
        raise RemoteProtocolError(f"{kind}: unknown fields")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in body:
            value = body[f.name]
            if not _matches(value, hints[f.name]):
                raise RemoteProtocolError(f"{kind}.{f.name}: wrong type")
            kwargs[f.name] = value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RemoteProtocolError(f"{kind}.{f.name}: missing")
    return cls(**kwargs)


def _check_depth(value: Any, depth: int) -> None:
    if depth > MAX_NESTING_DEPTH:
        raise RemoteProtocolError("message nested too deeply")
    if isinstance(value, dict):
        for v in value.values():
            _check_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(v, depth + 1)


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is None or hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        key, val = typing.get_args(hint) or (Any, Any)
        return isinstance(value, dict) and all(
            _matches(k, key) and _matches(v, val) for k, v in value.items()
        )
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return False


# --- the messages this package knows (later work adds more with @register) ----------------------


@register
@dataclasses.dataclass(frozen=True)
class Health(Message):
    """Health of the agent's side (cluster API reachable, components)."""

    KIND: ClassVar[str] = "health"
    healthy: bool
    detail: str = ""
    components: dict[str, bool] = dataclasses.field(default_factory=dict)


@register
@dataclasses.dataclass(frozen=True)
class NodeInfo(Message):
    """Facts about one node (node agents) or the cluster's nodes (cluster agent)."""

    KIND: ClassVar[str] = "node_info"
    name: str
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    capacity: dict[str, str] = dataclasses.field(default_factory=dict)
    kubelet_version: str = ""


@register
@dataclasses.dataclass(frozen=True)
class Stats(Message):
    """Counters and gauges (name -> value)."""

    KIND: ClassVar[str] = "stats"
    values: dict[str, float]


@register
@dataclasses.dataclass(frozen=True)
class Event(Message):
    """A Kubernetes event (or any structured event) forwarded by an agent."""

    KIND: ClassVar[str] = "event"
    reason: str
    message: str
    object: dict[str, Any] = dataclasses.field(default_factory=dict)
    type: str = "Normal"
