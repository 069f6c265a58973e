"""Events produced by :class:`rancher_tunnel.protocol.Connection` from the bytes it receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from .frames import Hello
from .messages import Message


@dataclass(slots=True)
class Event:
    """Base class of every connection event."""


@dataclass(slots=True)
class HandshakeCompleted(Event):
    hello: Hello  # the peer's HELLO


@dataclass(slots=True)
class StreamOpened(Event):
    stream_id: int
    target: str


@dataclass(slots=True)
class StreamAccepted(Event):
    stream_id: int


@dataclass(slots=True)
class StreamRefused(Event):
    stream_id: int
    reason: str


@dataclass(slots=True)
class DataReceived(Event):
    stream_id: int
    data: bytes | memoryview  # a zero-copy view when the frame arrived whole


@dataclass(slots=True)
class StreamEnded(Event):
    """The peer finished its direction of the stream (half-close)."""

    stream_id: int


@dataclass(slots=True)
class StreamReset(Event):
    stream_id: int
    reason: str


@dataclass(slots=True)
class WindowUpdated(Event):
    """The peer granted credit: more bytes may be sent on the stream."""

    stream_id: int


@dataclass(slots=True)
class PongReceived(Event):
    rtt_s: float


@dataclass(slots=True)
class MessageReceived(Event):
    message: Message
    nbytes: int = field(default=0, compare=False)  # its encoded size (for queue bounds)


@dataclass(slots=True)
class ConnectionTerminated(Event):
    """The connection is over. ``error_kind``: ``None`` for a clean GOAWAY from the peer,
    ``"remote"`` when the peer broke the protocol, or the peer's GOAWAY code name otherwise."""

    reason: str
    error_kind: str | None
