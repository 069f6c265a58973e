"""Error types of the tunnel (h11 style: who broke the protocol is part of the type)."""

from __future__ import annotations

import traceback


class TunnelError(Exception):
    """Base class of every tunnel error."""


class ProtocolError(TunnelError):
    """The tunnel protocol was violated. ``reason`` is short and safe to send to the peer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LocalProtocolError(ProtocolError):
    """We (the local application) tried to do something the protocol forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed or forbidden; the connection is closed."""


class FlowControlError(RemoteProtocolError):
    """The peer sent more bytes than the credit it was granted."""


class LimitExceeded(RemoteProtocolError):
    """The peer exceeded a per-peer bound; ``bound`` names it (a metric label: ``streams``,
    ``control_queue``, ``data_queue``, ...)."""

    def __init__(self, bound: str, reason: str) -> None:
        super().__init__(reason)
        self.bound = bound


class DialRefused(TunnelError):
    """The peer refused to open a stream (target not allowed, connect failed, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SessionClosed(TunnelError):
    """The session ended (or is ending); no new streams, no more data."""

    def __init__(self, reason: str = "session closed") -> None:
        super().__init__(reason)
        self.reason = reason


class StreamReset(TunnelError, ConnectionResetError):
    """The stream was reset by either side."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def forget_traceback(exc: BaseException) -> None:
    """Drop ``exc``'s traceback and clear its finished frames. An exception kept after it was
    handled (by a library, or an exception group) holds, through its traceback, the frames and
    their locals, which often hold it back: a reference cycle that keeps everything it reaches
    (a whole tunnel session) until the next full garbage collection."""
    traceback.clear_frames(exc.__traceback__)
    exc.__traceback__ = None
