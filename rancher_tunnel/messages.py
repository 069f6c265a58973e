"""Typed msgpack messages for traffic that is not a byte stream (events, stats, node info, health).

A message is a frozen dataclass registered under a short ``KIND``; on the wire it is the msgpack
array ``[kind, {field: value, ...}]``. Decoding validates every field against its annotation
(``str``, ``int``, ``float``, ``bool``, ``bytes``, ``list[...]``, ``dict[str, ...]``, ``Any`` and
``X | None``). A kind this side does not know decodes to :class:`UnknownMessage`, and fields it
does not know are ignored, so a newer peer can add messages and fields (with defaults) without
breaking an older one. Other packages add their own messages with :func:`register`.

The cluster picture (``picture.*`` kinds and the node, stats, event, namespace and health
messages, version :data:`PICTURE_VERSION`) is a stream of changes in generations: the agent opens
a generation with :class:`PictureBegin` and a full snapshot, then sends only changes, in rounds
that each end with a :class:`PictureMark` the server acknowledges (:class:`PictureAck`); the
server asks for a new generation (:class:`PictureResync`) when a round arrived incomplete.
``docs/architecture.md`` ("The cluster picture") has the resynchronisation rule.
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

PICTURE_VERSION = 1  # of the picture messages below; a peer ignores fields it does not know
REMOVED_NODE, REMOVED_EVENT, REMOVED_NAMESPACE = "node", "event", "namespace"


@register
@dataclasses.dataclass(frozen=True)
class Health(Message):
    """Health of the agent's side: its API server's ``/readyz`` (and the checks failing there),
    the agent's version, the tunnel's round trip as the agent measures it, when it checked."""

    KIND: ClassVar[str] = "health"
    healthy: bool
    detail: str = ""
    components: dict[str, bool] = dataclasses.field(default_factory=dict)
    failing_checks: list[str] = dataclasses.field(default_factory=list)
    agent_version: str = ""
    rtt_ms: float | None = None
    heartbeat_at: float = 0.0  # the agent's clock (seconds since the epoch)
    generation: int = 0


@register
@dataclasses.dataclass(frozen=True)
class NodeInfo(Message):
    """Facts about one node (node agents) or one of the cluster's nodes (cluster agent: its
    whole current state; the latest wins)."""

    KIND: ClassVar[str] = "node_info"
    name: str
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    capacity: dict[str, str] = dataclasses.field(default_factory=dict)
    kubelet_version: str = ""
    allocatable: dict[str, str] = dataclasses.field(default_factory=dict)
    conditions: list[dict[str, str]] = dataclasses.field(default_factory=list)
    container_runtime_version: str = ""
    os_image: str = ""
    kernel_version: str = ""
    operating_system: str = ""
    architecture: str = ""
    addresses: list[dict[str, str]] = dataclasses.field(default_factory=list)
    taints: list[dict[str, str]] = dataclasses.field(default_factory=list)
    unschedulable: bool = False
    generation: int = 0


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
    namespace: str = ""
    name: str = ""  # with the namespace, the event's identity (repeats raise ``count``)
    uid: str = ""
    count: int = 1
    first_seen: str = ""  # RFC 3339, as the API server has it
    last_seen: str = ""
    source: str = ""
    generation: int = 0


@register
@dataclasses.dataclass(frozen=True)
class NodeStats(Message):
    """One node's requested and limited CPU (cores), memory (bytes) and pods from its pods'
    specs, its allocatable, and its usage where the cluster serves ``metrics.k8s.io``."""

    KIND: ClassVar[str] = "node_stats"
    name: str
    values: dict[str, float]
    generation: int = 0


@register
@dataclasses.dataclass(frozen=True)
class ClusterStats(Message):
    """The same figures for the whole cluster, plus node counts."""

    KIND: ClassVar[str] = "cluster_stats"
    values: dict[str, float]
    generation: int = 0


@register
@dataclasses.dataclass(frozen=True)
class NamespaceInfo(Message):
    KIND: ClassVar[str] = "namespace_info"
    name: str
    phase: str = "Active"
    generation: int = 0


@register
@dataclasses.dataclass(frozen=True)
class Removed(Message):
    """An object of the picture is gone: ``what`` is ``node``, ``event`` or ``namespace``;
    ``key`` its name (``namespace/name`` for events)."""

    KIND: ClassVar[str] = "picture.removed"
    what: str
    key: str
    generation: int = 0


@register
@dataclasses.dataclass(frozen=True)
class PictureBegin(Message):
    """Agent -> server: a new generation starts with a full snapshot; the server builds it aside
    and replaces its picture with it at the first mark with ``synced``."""

    KIND: ClassVar[str] = "picture.begin"
    generation: int
    version: int = PICTURE_VERSION
    agent_version: str = ""


@register
@dataclasses.dataclass(frozen=True)
class PictureMark(Message):
    """Agent -> server: the end of round ``seq`` of ``generation``, which carried ``count``
    picture messages; ``synced``: the snapshot is complete with this round. ``coalesced``: how
    many changes the agent has merged into a later message of the same object since it started
    (the latest state wins while the server reads slowly), for the server's metrics."""

    KIND: ClassVar[str] = "picture.mark"
    generation: int
    seq: int
    count: int
    synced: bool = False
    coalesced: int = 0


@register
@dataclasses.dataclass(frozen=True)
class PictureAck(Message):
    """Server -> agent: round ``seq`` of ``generation`` is applied."""

    KIND: ClassVar[str] = "picture.ack"
    generation: int
    seq: int


@register
@dataclasses.dataclass(frozen=True)
class PictureResync(Message):
    """Server -> agent: start a new generation (a round arrived incomplete, or the server lost
    its picture)."""

    KIND: ClassVar[str] = "picture.resync"
    reason: str = ""


@register
@dataclasses.dataclass(frozen=True)
class HostReport(Message):
    """Node agent -> server, every report interval: its host's facts (kernel, OS, CPUs, memory,
    boot time, container runtime sockets present) and stats (CPU busy percent since the last
    report, memory available, root disk, load averages, uptime), read from ``/proc`` and
    ``/sys``. The latest wins."""

    KIND: ClassVar[str] = "node.host"
    node: str
    facts: dict[str, str] = dataclasses.field(default_factory=dict)
    stats: dict[str, float] = dataclasses.field(default_factory=dict)
    runtime_sockets: list[str] = dataclasses.field(default_factory=list)
    at: float = 0.0  # the node agent's clock (seconds since the epoch)
