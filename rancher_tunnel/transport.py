"""One tunnel stream as an :class:`asyncio.Transport`, so any asyncio protocol (an HTTP client,
``asyncio.StreamReader``, TLS via ``loop.start_tls``) runs over it as if it were a socket.

Flow control maps onto tunnel credit: bytes handed to the protocol are reported consumed (credit
flows back to the peer) only while the protocol reads; ``pause_reading()`` stops that, so a stalled
reader holds at most its stream window and stalls only its own stream. Writes beyond the credit the
peer granted wait here, and the protocol is paused above the high-water mark.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from .constants import TRANSPORT_HIGH_WATER_BYTES, TRANSPORT_LOW_WATER_BYTES
from .errors import SessionClosed, StreamReset
from .logs import get_logger

if TYPE_CHECKING:
    from .session import Session

_log = get_logger(component="tunnel.transport")
VIEW_PIN_RATIO = 4  # a view smaller than 1/4 of its message is copied before it is held


class TunnelTransport(asyncio.Transport):
    """The byte pipe of one tunnel stream. Created by :class:`Session`; not constructed directly."""

    _start_tls_compatible = True

    def __init__(self, session: Session, stream_id: int, target: str) -> None:
        super().__init__(extra={"peername": target, "tunnel_stream_id": stream_id})
        self._session = session
        self._credit = session.connection.send_credit  # hot path: one call, not three
        self._loop = asyncio.get_running_loop()
        self.stream_id = stream_id
        self.target = target
        self._protocol: asyncio.BaseProtocol | None = None
        self._views_ok = False  # protocol accepts memoryviews in data_received
        self._reading = False  # no protocol yet: buffer until one is set and reading resumes
        self._in: deque[bytes | memoryview] = deque()
        self._in_bytes = 0
        self._remote_ended = False  # the peer sent END
        self._eof_delivered = False
        self._out = bytearray()  # written, not yet covered by credit
        self._eof_requested = False  # write_eof() called
        self._local_ended = False  # END queued
        self._closing = False
        self._lost = False
        self._write_paused = False
        self._high = TRANSPORT_HIGH_WATER_BYTES
        self._low = TRANSPORT_LOW_WATER_BYTES
        self._drain_scheduled = False
        self._linger: asyncio.TimerHandle | None = None
        self._lost_notified = False
        self._buffered_proto = False
        self._pause_on_no_credit = False

    def __repr__(self) -> str:
        return f"<TunnelTransport stream={self.stream_id} target={self.target!r}>"

    # ----------------------------------------------------------------- protocol plumbing

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._views_ok = bool(getattr(protocol, "accepts_memoryview", False)) or isinstance(
            protocol,
            asyncio.StreamReaderProtocol,  # StreamReader.feed_data copies anyway
        )
        # a protocol that reads in credit-sized pieces wants pause_writing() as soon as the
        # credit runs out, so nothing waits (copied) in this transport
        self._pause_on_no_credit = bool(getattr(protocol, "pause_on_no_credit", False))
        self._buffered_proto = isinstance(protocol, asyncio.BufferedProtocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def attach(self, protocol: asyncio.BaseProtocol) -> None:
        """Give the stream its protocol: ``connection_made`` now, buffered data soon after."""
        self.set_protocol(protocol)
        protocol.connection_made(self)
        if self._lost:
            return
        self.resume_reading()

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if self._reading or self._lost:
            return
        self._reading = True
        if (self._in or self._remote_ended) and not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain_in)

    # ----------------------------------------------------------------- inbound (from Session)

    def _data(self, data: bytes | memoryview) -> None:
        if self._closing or self._lost:
            self._session._consumed(self.stream_id, len(data))  # discarded, keep credit flowing
            return
        if self._reading and not self._in:
            self._deliver(data)
            return
        self._in.append(_compact(data))
        self._in_bytes += len(data)

    def _deliver(self, data: bytes | memoryview) -> None:
        """Hand data to the protocol; a protocol that raises loses its stream, never the session."""
        try:
            self._deliver_unguarded(data)
        except Exception as exc:
            self._fatal_error(exc, "protocol failed on received data")

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        if not isinstance(exc, OSError):
            _log.warning(message, stream_id=self.stream_id, error=repr(exc))
        self._force_close(exc if isinstance(exc, Exception) else None)

    def _force_close(self, exc: Exception | None) -> None:
        """Abort the stream (asyncio's sslproto calls this on a fatal TLS error)."""
        if self._lost:
            return
        self._session._reset_stream(self.stream_id, "aborted")
        self._connection_lost(exc)

    def _deliver_unguarded(self, data: bytes | memoryview) -> None:
        proto = self._protocol
        assert proto is not None
        n = len(data)
        if self._buffered_proto:
            pos = _feed_buffered(proto, data, self)  # type: ignore[arg-type]
            if pos < n:  # the protocol paused mid-chunk: keep the rest
                self._in.appendleft(_compact(memoryview(data)[pos:]))
                self._in_bytes += n - pos
                n = pos
        elif type(data) is bytes:
            proto.data_received(data)  # type: ignore[attr-defined]
        elif self._views_ok:
            proto.data_received(_compact(data))  # type: ignore[attr-defined]
        else:
            proto.data_received(bytes(data))  # type: ignore[attr-defined]
        self._session._consumed(self.stream_id, n)

    def _drain_in(self) -> None:
        self._drain_scheduled = False
        while self._in and self._reading and not self._lost:
            data = self._in.popleft()
            self._in_bytes -= len(data)
            self._deliver(data)
        if not self._in and self._remote_ended and self._reading and not self._lost:
            self._deliver_eof()

    def _end(self) -> None:
        self._remote_ended = True
        if self._closing:
            self._maybe_finish()
            return
        if self._reading and not self._in:
            self._deliver_eof()

    def _deliver_eof(self) -> None:
        if self._eof_delivered or self._protocol is None:
            return
        self._eof_delivered = True
        try:
            keep_open = self._protocol.eof_received()  # type: ignore[attr-defined]
        except Exception as exc:
            self._fatal_error(exc, "protocol failed on end of stream")
            return
        if not keep_open:
            self.close()

    def _reset(self, reason: str) -> None:
        self._connection_lost(StreamReset(reason))

    def _session_lost(self, exc: SessionClosed) -> None:
        self._connection_lost(exc)

    @property
    def write_credit(self) -> int:
        """Bytes that can be written now without waiting in this transport's buffer."""
        credit = self._credit(self.stream_id) - len(self._out)
        return credit if credit > 0 else 0

    def _window(self) -> None:
        """The peer granted credit: send what waits."""
        if self._lost:
            return
        if not self._out:
            self._maybe_resume_protocol()
            return
        n = self._session._send_data(self.stream_id, self._out)
        if n:
            del self._out[:n]
        if not self._out and self._eof_requested:
            self._send_end()
        self._maybe_resume_protocol()

    # ----------------------------------------------------------------- outbound

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof_requested:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._lost or not data:
            return
        if self._out:
            self._out += data
        else:
            n = self._session._send_data(self.stream_id, data)
            if n < len(data):
                self._out += memoryview(data)[n:]
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._eof_requested or self._lost:
            return
        self._eof_requested = True
        if not self._out:
            self._send_end()

    def _send_end(self) -> None:
        if self._local_ended or self._lost:
            return
        self._local_ended = True
        self._session._end_stream(self.stream_id)
        if self._closing:
            self._maybe_finish()

    def get_write_buffer_size(self) -> int:
        return len(self._out)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = TRANSPORT_HIGH_WATER_BYTES if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._write_paused or self._protocol is None:
            return
        if len(self._out) > self._high or (self._pause_on_no_credit and not self.write_credit):
            self._write_paused = True
            try:
                self._protocol.pause_writing()
            except Exception:
                _log.exception("protocol.pause_writing() failed", stream_id=self.stream_id)

    def _maybe_resume_protocol(self) -> None:
        if not self._write_paused or self._protocol is None or len(self._out) > self._low:
            return
        if not self._pause_on_no_credit or self.write_credit:
            self._write_paused = False
            try:
                self._protocol.resume_writing()
            except Exception:
                _log.exception("protocol.resume_writing() failed", stream_id=self.stream_id)

    # ----------------------------------------------------------------- closing

    def close(self) -> None:
        """Flush, send END; no more data is delivered. ``connection_lost(None)`` follows once our
        END is queued. The stream is reset if, within the linger time, the peer neither took the
        buffered bytes nor ended its side (no stream outlives its users for long)."""
        if self._closing or self._lost:
            return
        self._closing = True
        self._reading = False
        while self._in:  # discard what the protocol never read, returning the credit
            self._session._consumed(self.stream_id, len(self._in.popleft()))
        self._in_bytes = 0
        self.write_eof()
        if not self._lost:
            self._linger = self._loop.call_later(
                self._session.limits.stream_linger_s, self._linger_expired
            )
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self._lost or not self._local_ended:
            return
        if self._remote_ended:
            self._connection_lost(None)
            return
        # our side is done; the protocol is told now, the stream lingers for the peer's END
        self._notify_lost(None)

    def _linger_expired(self) -> None:
        self._linger = None
        if not self._remote_ended:
            self._session._reset_stream(self.stream_id, "peer did not close the stream")
        self._connection_lost(None)

    def abort(self) -> None:
        self._force_close(None)

    def _notify_lost(self, exc: Exception | None) -> None:
        if self._lost_notified or self._protocol is None:
            return
        self._lost_notified = True
        self._loop.call_soon(self._protocol.connection_lost, exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._reading = False
        self._in.clear()
        self._in_bytes = 0
        self._out.clear()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self._session._forget_transport(self.stream_id)
        self._notify_lost(exc)


def _compact(data: bytes | memoryview) -> bytes | memoryview:
    """A zero-copy view keeps its whole websocket message alive: a small view that may be held
    for a while (queued behind a paused reader, in a peer transport's buffer) is copied out, so a
    slow stream of small frames cannot pin many large messages."""
    if type(data) is memoryview and data.nbytes * VIEW_PIN_RATIO < memoryview(data.obj).nbytes:
        return bytes(data)
    return data


def _feed_buffered(
    proto: asyncio.BufferedProtocol, data: bytes | memoryview, tr: TunnelTransport
) -> int:
    """Copy ``data`` into a buffered protocol, stopping early if it pauses reading; bytes fed."""
    view = memoryview(data)
    total = len(view)
    pos = 0
    while pos < total:
        buf = memoryview(proto.get_buffer(total - pos))
        n = min(len(buf), total - pos)
        if not n:
            raise RuntimeError("get_buffer() returned an empty buffer")
        buf[:n] = view[pos : pos + n]
        proto.buffer_updated(n)
        pos += n
        if not tr._reading:
            break
    return pos
