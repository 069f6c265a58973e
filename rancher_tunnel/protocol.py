"""The tunnel connection as a sans-I/O state machine (like h11, h2 and websockets' protocol core).

Bytes from the peer go in with :meth:`Connection.receive_data`, events come out of
:meth:`Connection.events`, bytes to write come out of :meth:`Connection.data_to_send`. No asyncio,
aiohttp or websockets in here.

Output is two queues: control frames (HELLO, OPEN, ACCEPT, REFUSE, RESET, WINDOW, PING, PONG) go out
before stream data, so a ping or a credit grant never waits behind a stream's bytes; order-sensitive
frames (DATA, END, SYNC, MESSAGE, GOAWAY) share the data queue in the order they were produced.

Both queues are bounded (``Limits.max_control_queue_bytes``, ``max_data_queue_bytes``): a peer that
makes us queue more than that (it does not read what it asks for) fails the connection with GOAWAY
LIMIT_EXCEEDED and a :class:`ConnectionTerminated` of kind ``"limit"``. Pongs are coalesced, not
queued: at most one is owed, the answer to the newest ping (RFC 6455 5.5.3 does the same).
"""

from __future__ import annotations

import enum
import secrets
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import frames as fr
from . import messages
from .constants import (
    DEFAULT_LIMITS,
    FRAME_HEADER_BYTES,
    MAX_OUTSTANDING_PINGS,
    MIN_FRAME_PAYLOAD_BYTES,
    PING_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    Limits,
)
from .errors import LimitExceeded, LocalProtocolError, ProtocolError, RemoteProtocolError
from .events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    HandshakeCompleted,
    MessageReceived,
    PongReceived,
    StreamAccepted,
    StreamEnded,
    StreamOpened,
    StreamRefused,
    StreamReset,
    WindowUpdated,
)
from .frames import FrameType, GoAwayCode, Role
from .windows import ReceiveWindow, SendWindow, SessionBudget

_HEADER = fr.HEADER
MAX_HEADROOM_BYTES = 64
MERGE_DATA_BYTES = 16 * 1024  # a data batch this small is sent in the same chunk as control
_PING_COUNTER = struct.Struct("!Q")
_EMPTY_BATCH = bytearray()  # bytearray().join(parts) builds a batch with one exact allocation


class StreamState(enum.Enum):
    IDLE = "idle"
    OPEN_SENT = "open_sent"  # we sent OPEN, waiting for ACCEPT / REFUSE
    OPEN_RECEIVED = "open_received"  # the peer sent OPEN, we have not answered
    OPEN = "open"
    HALF_CLOSED_LOCAL = "half_closed_local"  # we sent END
    HALF_CLOSED_REMOTE = "half_closed_remote"  # the peer sent END
    CLOSED = "closed"

    # members are singletons compared by identity: hash them in C (Enum's hash is Python code,
    # and every TRANSITIONS lookup on the hot path hashes a state and an input)
    __hash__ = object.__hash__


class StreamInput(enum.Enum):
    SEND_OPEN = "send_open"
    RECV_OPEN = "recv_open"
    SEND_ACCEPT = "send_accept"
    RECV_ACCEPT = "recv_accept"
    SEND_REFUSE = "send_refuse"
    RECV_REFUSE = "recv_refuse"
    SEND_DATA = "send_data"
    RECV_DATA = "recv_data"
    SEND_END = "send_end"
    RECV_END = "recv_end"
    SEND_RESET = "send_reset"
    RECV_RESET = "recv_reset"
    SEND_WINDOW = "send_window"
    RECV_WINDOW = "recv_window"

    __hash__ = object.__hash__  # see StreamState


S, I = StreamState, StreamInput  # noqa: E741
# (state, input) -> next state; a pair missing here is invalid in that state (h2 stream.py style)
TRANSITIONS: dict[tuple[StreamState, StreamInput], StreamState] = {
    (S.IDLE, I.SEND_OPEN): S.OPEN_SENT,
    (S.IDLE, I.RECV_OPEN): S.OPEN_RECEIVED,
    (S.OPEN_SENT, I.RECV_ACCEPT): S.OPEN,
    (S.OPEN_SENT, I.RECV_REFUSE): S.CLOSED,
    (S.OPEN_SENT, I.SEND_RESET): S.CLOSED,
    (S.OPEN_SENT, I.RECV_RESET): S.CLOSED,
    (S.OPEN_RECEIVED, I.SEND_ACCEPT): S.OPEN,
    (S.OPEN_RECEIVED, I.SEND_REFUSE): S.CLOSED,
    (S.OPEN_RECEIVED, I.SEND_RESET): S.CLOSED,
    (S.OPEN_RECEIVED, I.RECV_RESET): S.CLOSED,
    (S.OPEN, I.SEND_DATA): S.OPEN,
    (S.OPEN, I.RECV_DATA): S.OPEN,
    (S.OPEN, I.SEND_WINDOW): S.OPEN,
    (S.OPEN, I.RECV_WINDOW): S.OPEN,
    (S.OPEN, I.SEND_END): S.HALF_CLOSED_LOCAL,
    (S.OPEN, I.RECV_END): S.HALF_CLOSED_REMOTE,
    (S.OPEN, I.SEND_RESET): S.CLOSED,
    (S.OPEN, I.RECV_RESET): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, I.RECV_DATA): S.HALF_CLOSED_LOCAL,
    (S.HALF_CLOSED_LOCAL, I.SEND_WINDOW): S.HALF_CLOSED_LOCAL,
    (S.HALF_CLOSED_LOCAL, I.RECV_WINDOW): S.HALF_CLOSED_LOCAL,
    (S.HALF_CLOSED_LOCAL, I.RECV_END): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, I.SEND_RESET): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, I.RECV_RESET): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, I.SEND_DATA): S.HALF_CLOSED_REMOTE,
    (S.HALF_CLOSED_REMOTE, I.RECV_WINDOW): S.HALF_CLOSED_REMOTE,
    (S.HALF_CLOSED_REMOTE, I.SEND_END): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, I.SEND_RESET): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, I.RECV_RESET): S.CLOSED,
}
del S, I


class ConnectionState(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


class _Stream:
    __slots__ = ("id", "recv", "send", "state", "target")

    def __init__(self, stream_id: int, target: str, recv: ReceiveWindow) -> None:
        self.id = stream_id
        self.target = target
        self.state = StreamState.IDLE
        self.send = SendWindow()
        self.recv = recv


@dataclass(slots=True)
class ConnectionStats:
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0  # stream payload bytes received
    bytes_out: int = 0  # stream payload bytes sent
    streams_opened: int = 0  # by either side
    streams_synced_away: int = 0  # dropped because a SYNC showed the peer had forgotten them


class Connection:
    """One end of a tunnel connection. ``role`` decides the parity of the stream ids we open."""

    __slots__ = (
        "_batch_limit", "_budget", "_clock", "_control", "_data", "_draining", "_events",
        "_grant_threshold", "_headroom", "_headroom_bytes", "_highest_peer_id", "_max_control",
        "_max_data_batches", "_next_id", "_over_limit_opens", "_owed_pong", "_own_stream_count",
        "_parser", "_peer_stream_count", "_ping_counter", "_pings", "_send_frame_max", "_starved",
        "_streams", "limit_exceeded", "limits", "peer_hello", "role", "state", "stats",
    )

    def __init__(
        self,
        role: Role,
        *,
        limits: Limits = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.monotonic,
        headroom_bytes: int = 0,
    ) -> None:
        """``headroom_bytes``: spare bytes reserved at the front of every outgoing chunk (see
        :meth:`next_chunk`) so a websocket layer can write its frame header in place."""
        if not 0 <= headroom_bytes <= MAX_HEADROOM_BYTES:
            raise ValueError("headroom_bytes out of range")
        self.role = role
        self._headroom = headroom_bytes
        self._headroom_bytes = bytes(headroom_bytes)
        self.limits = limits
        self._clock = clock
        self.state = ConnectionState.HANDSHAKE
        self.peer_hello: fr.Hello | None = None
        self.stats = ConnectionStats()
        self._parser = fr.FrameParser(limits.max_frame_payload_bytes)
        self._streams: dict[int, _Stream] = {}
        self._draining: dict[int, ReceiveWindow] = {}  # closed, the application still buffers
        self._starved: dict[int, None] = {}  # streams whose credit the budget clipped
        self._budget = SessionBudget(limits.shared_window_budget_bytes)
        self._next_id = 2 if role is Role.SERVER else 1
        self._highest_peer_id = 0
        self._peer_stream_count = 0
        self._over_limit_opens = 0  # OPENs refused since the peer's streams were last below max
        self._own_stream_count = 0
        self._send_frame_max = min(limits.max_frame_payload_bytes, MIN_FRAME_PAYLOAD_BYTES)
        self._grant_threshold = min(
            limits.min_stream_window_bytes,
            min(limits.initial_stream_window_bytes, limits.stream_window_bytes) // 4,
        )
        self._control = bytearray(headroom_bytes)
        self._data: deque[bytearray] = deque()
        self._batch_limit = limits.max_batch_bytes + headroom_bytes
        self._events: list[Event] = []
        self._pings: dict[bytes, float] = {}
        self._ping_counter = 0
        self._owed_pong: bytes | None = None  # the newest peer PING's payload, not answered yet
        self._max_control = limits.max_control_queue_bytes + headroom_bytes
        # every data batch but the last is at least _batch_limit bytes long
        self._max_data_batches = limits.max_data_queue_bytes // self._batch_limit + 1
        self.limit_exceeded: str | None = None  # the bound the peer exceeded, if it did
        self._emit_control(
            0,
            FrameType.HELLO,
            fr.hello_payload(
                fr.Hello(
                    PROTOCOL_VERSION,
                    role,
                    limits.stream_window_bytes,
                    limits.max_frame_payload_bytes,
                    limits.max_streams,
                )
            ),
        )

    # ------------------------------------------------------------------ introspection

    @property
    def closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    @property
    def stream_ids(self) -> list[int]:
        return list(self._streams)

    def stream_state(self, stream_id: int) -> StreamState:
        st = self._streams.get(stream_id)
        return st.state if st else StreamState.CLOSED

    def send_credit(self, stream_id: int) -> int:
        st = self._streams.get(stream_id)
        return st.send.credit if st else 0

    def stream_buffered(self, stream_id: int) -> int:
        """Bytes of one stream received and not yet consumed."""
        st = self._streams.get(stream_id)
        if st is not None:
            return st.recv.buffered
        rw = self._draining.get(stream_id)
        return rw.buffered if rw is not None else 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes received on streams and not yet consumed by the application."""
        return sum(s.recv.buffered for s in self._streams.values()) + sum(
            w.buffered for w in self._draining.values()
        )

    @property
    def committed_bytes(self) -> int:
        """Bytes the peer may have in flight or we hold (credit granted or reserved + buffered)."""
        return sum(s.recv.committed for s in self._streams.values()) + sum(
            w.buffered for w in self._draining.values()
        )

    # ------------------------------------------------------------------ output

    def _emit_control(self, stream_id: int, ftype: FrameType, payload: bytes = b"") -> None:
        self._control += _HEADER.pack(len(payload), stream_id, ftype, 0)
        self._control += payload
        self.stats.frames_out += 1

    def _data_buffer(self) -> bytearray:
        if self._data and len(self._data[-1]) < self._batch_limit:
            return self._data[-1]
        buf = bytearray(self._headroom)
        self._data.append(buf)
        return buf

    def _emit_data(self, stream_id: int, ftype: FrameType, payload: bytes = b"") -> None:
        out = self._data_buffer()
        out += _HEADER.pack(len(payload), stream_id, ftype, 0)
        out += payload
        self.stats.frames_out += 1

    def next_chunk(self) -> tuple[bytearray, int] | None:
        """The next chunk to write as ``(buffer, offset)``: frames are ``buffer[offset:]``, the
        ``offset`` (= headroom) bytes before them are free for the caller; None when nothing is
        due. Control frames come first; a small data batch rides along with them."""
        h = self._headroom
        if self._owed_pong is not None:
            self._emit_control(0, FrameType.PONG, self._owed_pong)
            self._owed_pong = None
        if len(self._control) > h:
            out, self._control = self._control, bytearray(h)
            if self._data and len(self._data[0]) - h <= MERGE_DATA_BYTES:
                out += memoryview(self._data.popleft())[h:]
            return out, h
        if self._data:
            return self._data.popleft(), h
        return None

    def data_to_send(self) -> bytearray:
        """The next chunk of bytes to write (control frames first); empty when nothing is due.

        Each chunk is at most about ``max_batch_bytes`` and may be sent as one websocket message.
        """
        chunk = self.next_chunk()
        if chunk is None:
            return bytearray()
        buf, offset = chunk
        if offset:
            del buf[:offset]
        return buf

    @property
    def has_data_to_send(self) -> bool:
        return (
            len(self._control) > self._headroom
            or bool(self._data)
            or self._owed_pong is not None
        )

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting to be written (control and data queues)."""
        pong = 0 if self._owed_pong is None else FRAME_HEADER_BYTES + PING_PAYLOAD_BYTES
        data = sum(len(b) - self._headroom for b in self._data)
        return len(self._control) - self._headroom + data + pong

    def events(self) -> list[Event]:
        """Events produced since the last call."""
        ev, self._events = self._events, []
        return ev

    # ------------------------------------------------------------------ local actions

    def _require_open(self) -> None:
        if self.state is ConnectionState.CLOSED:
            raise LocalProtocolError("connection closed")
        if self.state is ConnectionState.HANDSHAKE:
            raise LocalProtocolError("handshake not complete")

    def _transition(self, st: _Stream, inp: StreamInput) -> StreamState:
        new = TRANSITIONS.get((st.state, inp))
        if new is None:
            raise LocalProtocolError(f"{inp.value} invalid in state {st.state.value}")
        st.state = new
        return new

    def _local_stream(self, stream_id: int) -> _Stream:
        st = self._streams.get(stream_id)
        if st is None:
            raise LocalProtocolError(f"no such stream {stream_id}")
        return st

    def _new_recv_window(self) -> ReceiveWindow:
        lim = self.limits
        return ReceiveWindow(
            self._budget,
            lim.min_stream_window_bytes,
            lim.stream_window_bytes,
            lim.initial_stream_window_bytes,
            self._clock(),
        )

    def _initial_credit(self, st: _Stream) -> int:
        if not st.recv.reserve():
            self._starved[st.id] = None
        return st.recv.take_grant(0)

    def open_stream(self, target: str) -> int:
        """Open a stream to ``target`` (e.g. ``tcp://host:port``); returns its id."""
        self._require_open()
        assert self.peer_hello is not None
        if self._own_stream_count >= min(self.peer_hello.max_streams, self.limits.max_streams):
            raise LocalProtocolError("too many streams")
        if self._next_id > fr.MAX_STREAM_ID:
            raise LocalProtocolError("stream ids exhausted")
        payload_target = fr.open_payload(0, target)  # validates the target first
        stream_id = self._next_id
        self._next_id += 2
        st = _Stream(stream_id, target, self._new_recv_window())
        self._transition(st, StreamInput.SEND_OPEN)
        self._streams[stream_id] = st
        self._own_stream_count += 1
        self.stats.streams_opened += 1
        credit = self._initial_credit(st)
        self._emit_control(stream_id, FrameType.OPEN, fr.u32_payload(credit) + payload_target[4:])
        return stream_id

    def accept(self, stream_id: int) -> None:
        st = self._local_stream(stream_id)
        self._transition(st, StreamInput.SEND_ACCEPT)
        self._emit_control(stream_id, FrameType.ACCEPT, fr.u32_payload(self._initial_credit(st)))

    def refuse(self, stream_id: int, reason: str) -> None:
        st = self._local_stream(stream_id)
        self._transition(st, StreamInput.SEND_REFUSE)
        self._emit_control(stream_id, FrameType.REFUSE, fr.reason_payload(reason))
        self._forget(st, keep_buffered=False)

    def send_data(self, stream_id: int, data: bytes | bytearray | memoryview) -> int:
        """Queue as much of ``data`` as the stream's credit allows; returns how many bytes."""
        st = self._streams.get(stream_id)
        if st is None or self.state is ConnectionState.CLOSED:
            raise LocalProtocolError(f"no such stream {stream_id}")
        new = TRANSITIONS.get((st.state, StreamInput.SEND_DATA))
        if new is None:
            raise LocalProtocolError(f"send_data invalid in state {st.state.value}")
        n = st.send.take(len(data))
        if not n:
            return 0
        step = self._send_frame_max
        view = memoryview(data)
        pos = 0
        pack = _HEADER.pack
        dtype = FrameType.DATA
        queue = self._data
        limit = self._batch_limit
        frames = 0
        while pos < n:
            last = queue[-1] if queue else None
            if last is not None and len(last) < limit:  # top up the open batch
                chunk = min(step, n - pos)
                last += pack(chunk, stream_id, dtype, 0)
                last += view[pos : pos + chunk]
                pos += chunk
                frames += 1
                continue
            # a new batch built in one go at its final size: no reallocation while it fills
            parts: list[bytes | memoryview] = [self._headroom_bytes]
            size = self._headroom
            while pos < n and size < limit:
                chunk = min(step, n - pos)
                parts.append(pack(chunk, stream_id, dtype, 0))
                parts.append(view[pos : pos + chunk])
                pos += chunk
                size += FRAME_HEADER_BYTES + chunk
                frames += 1
            queue.append(_EMPTY_BATCH.join(parts))
        self.stats.frames_out += frames
        self.stats.bytes_out += n
        return n

    def end_stream(self, stream_id: int) -> None:
        """Half-close: we send no more data on this stream."""
        st = self._local_stream(stream_id)
        new = self._transition(st, StreamInput.SEND_END)
        self._emit_data(stream_id, FrameType.END)
        if new is StreamState.CLOSED:
            self._forget(st, keep_buffered=True)

    def reset(self, stream_id: int, reason: str) -> None:
        """Abort the stream in both directions (the application drops what it buffered)."""
        st = self._streams.get(stream_id)
        if st is None:
            rw = self._draining.pop(stream_id, None)
            if rw is not None:
                rw.release()
                self._refill_starved()
            return
        self._transition(st, StreamInput.SEND_RESET)
        self._emit_control(stream_id, FrameType.RESET, fr.reason_payload(reason))
        self._forget(st, keep_buffered=False)

    def consumed(self, stream_id: int, nbytes: int) -> None:
        """The application consumed ``nbytes`` of the stream's data: grant credit (batched)."""
        st = self._streams.get(stream_id)
        if st is None:
            rw = self._draining.get(stream_id)
            if rw is not None:
                rw.consumed(nbytes)
                if not rw.buffered:
                    rw.release()
                    del self._draining[stream_id]
                self._refill_starved()
            return
        rw = st.recv
        rw.consumed(nbytes)
        state = st.state
        if state is StreamState.OPEN or state is StreamState.HALF_CLOSED_LOCAL:
            if rw.epoch_bytes >= rw.max_window:  # else autotune() has nothing to do
                rw.autotune(self._clock())
            self._refill(st)
        if self._starved:
            self._refill_starved()

    def _refill(self, st: _Stream) -> None:
        if st.recv.reserve():
            self._starved.pop(st.id, None)
        else:
            self._starved[st.id] = None
        inc = st.recv.take_grant(self._grant_threshold)
        if inc:
            self._emit_control(st.id, FrameType.WINDOW, fr.u32_payload(inc))

    def _refill_starved(self) -> None:
        while self._starved and self._budget.free > 0:
            stream_id = next(iter(self._starved))
            del self._starved[stream_id]
            st = self._streams.get(stream_id)
            if st is not None and st.state in (StreamState.OPEN, StreamState.HALF_CLOSED_LOCAL):
                self._refill(st)
                if stream_id in self._starved:
                    break

    @property
    def pings_sent(self) -> int:
        return self._ping_counter

    def ping(self, now: float | None = None) -> bytes:
        """Send a PING; the matching PONG yields :class:`PongReceived` with the round-trip time."""
        if self.state is ConnectionState.CLOSED:
            raise LocalProtocolError("connection closed")
        self._ping_counter += 1
        # unpredictable, so a peer that does not read cannot keep the session alive by
        # answering pings it never saw (a counter alone would be easy to forge)
        payload = _PING_COUNTER.pack(self._ping_counter ^ secrets.randbits(64))
        while payload in self._pings:
            payload = _PING_COUNTER.pack(secrets.randbits(64))
        if len(self._pings) >= MAX_OUTSTANDING_PINGS:
            del self._pings[next(iter(self._pings))]
        self._pings[payload] = self._clock() if now is None else now
        self._emit_control(0, FrameType.PING, payload)
        return payload

    def oldest_unanswered_ping(self) -> float | None:
        """Send time of the oldest PING still waiting for its PONG."""
        return next(iter(self._pings.values()), None)

    def send_message(self, msg: messages.Message) -> None:
        self._require_open()
        self._emit_data(0, FrameType.MESSAGE, messages.encode(msg))

    def sync(self) -> None:
        """Send the ids of our live streams so the peer forgets the ones we no longer have."""
        self._require_open()
        self._emit_data(
            0, FrameType.SYNC, fr.sync_payload(self._highest_peer_id, list(self._streams))
        )

    def close(self, reason: str = "going away", code: GoAwayCode = GoAwayCode.NORMAL) -> None:
        """Send GOAWAY (after the data already queued); nothing is accepted afterwards."""
        if self.state is ConnectionState.CLOSED:
            return
        self._emit_data(0, FrameType.GOAWAY, fr.goaway_payload(code, reason))
        self.state = ConnectionState.CLOSED

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes | bytearray) -> None:
        """Feed bytes from the peer (any chunking); events become available from events()."""
        if self.state is ConnectionState.CLOSED:
            return
        try:
            frames = self._parser.feed(data)
            handle = self._handle
            for frame in frames:
                handle(frame)
                if self.closed:
                    break
            if not self.closed:
                self._check_queues()
        except LimitExceeded as exc:
            self.limit_exceeded = exc.bound
            self._fail(exc.reason, GoAwayCode.LIMIT_EXCEEDED, "limit")
        except RemoteProtocolError as exc:
            self._fail(exc.reason)
        except LocalProtocolError as exc:  # a bug of ours surfaced by the peer's input
            self._fail(f"internal error: {exc.reason}", GoAwayCode.INTERNAL_ERROR, "local")

    def _check_queues(self) -> None:
        """The peer's input made us queue output: a peer that does not read it is cut off."""
        if len(self._control) > self._max_control:
            raise LimitExceeded(
                "control_queue",
                f"peer does not read: over {self.limits.max_control_queue_bytes} bytes "
                "of control frames queued",
            )
        if len(self._data) > self._max_data_batches:
            raise LimitExceeded(
                "data_queue",
                f"peer does not read: over {self.limits.max_data_queue_bytes} bytes "
                "of stream data queued",
            )

    def _fail(
        self, reason: str, code: GoAwayCode = GoAwayCode.PROTOCOL_ERROR, kind: str = "remote"
    ) -> None:
        self._data.clear()
        self._owed_pong = None
        self._control = bytearray(self._headroom)
        self._emit_data(0, FrameType.GOAWAY, fr.goaway_payload(code, reason))
        self.state = ConnectionState.CLOSED
        self._events.append(ConnectionTerminated(reason, kind))

    def _handle(self, frame: fr.Frame) -> None:
        stream_id, ftype, _flags, payload = frame
        self.stats.frames_in += 1
        if ftype is FrameType.DATA:  # hot path first
            st = self._peer_frame_stream(stream_id)
            if st is None:
                return
            if (st.state, StreamInput.RECV_DATA) not in TRANSITIONS:
                self._stream_error(st, "DATA")
                return
            n = len(payload)
            st.recv.received(n)
            self.stats.bytes_in += n
            self._events.append(DataReceived(stream_id, payload))
            return
        if self.state is ConnectionState.HANDSHAKE:
            if ftype is not FrameType.HELLO:
                raise RemoteProtocolError("expected HELLO")
            self._on_hello(payload)
            return
        handler = self._HANDLERS.get(ftype)
        if handler is None:
            raise RemoteProtocolError(f"unexpected {ftype.name}")
        handler(self, stream_id, payload)

    def _peer_frame_stream(self, stream_id: int) -> _Stream | None:
        """The stream a frame names; None for a stream that existed and is gone (frame ignored)."""
        if self.state is ConnectionState.HANDSHAKE:
            raise RemoteProtocolError("expected HELLO")
        st = self._streams.get(stream_id)
        if st is not None:
            return st
        if self.role.owns(stream_id):
            if stream_id >= self._next_id:
                raise RemoteProtocolError("frame for a stream never opened")
        elif stream_id > self._highest_peer_id:
            raise RemoteProtocolError("frame for a stream never opened")
        return None

    def _stream_error(self, st: _Stream, what: str) -> None:
        """An input invalid in the stream's state: reset that stream, keep the connection."""
        reason = f"protocol error: {what} in state {st.state.value}"
        self._emit_control(st.id, FrameType.RESET, fr.reason_payload(reason))
        self._forget(st, keep_buffered=False)
        self._events.append(StreamReset(st.id, reason))

    def _apply(self, st: _Stream, inp: StreamInput, what: str) -> StreamState | None:
        new = TRANSITIONS.get((st.state, inp))
        if new is None:
            self._stream_error(st, what)
            return None
        st.state = new
        return new

    def _forget(self, st: _Stream, *, keep_buffered: bool) -> None:
        del self._streams[st.id]
        self._starved.pop(st.id, None)
        if self.role.owns(st.id):
            self._own_stream_count -= 1
        else:
            self._peer_stream_count -= 1
            self._over_limit_opens = 0
        rw = st.recv
        if keep_buffered and rw.buffered:
            rw.granted = rw.unsent = 0
            rw._settle()
            self._draining[st.id] = rw
        else:
            rw.release()
        self._refill_starved()

    def _on_hello(self, payload: bytes | memoryview) -> None:
        hello = fr.decode_hello(payload)
        if hello.version != PROTOCOL_VERSION:
            raise RemoteProtocolError(f"unsupported protocol version {hello.version}")
        if hello.role is not self.role.peer:
            raise RemoteProtocolError("peer has the same role")
        if hello.max_frame_payload < MIN_FRAME_PAYLOAD_BYTES:
            raise RemoteProtocolError("peer max frame payload too small")
        self.peer_hello = hello
        self._send_frame_max = min(self.limits.max_frame_payload_bytes, hello.max_frame_payload)
        self.state = ConnectionState.OPEN
        self._events.append(HandshakeCompleted(hello))

    def _on_open(self, stream_id: int, payload: bytes | memoryview) -> None:
        if not self.role.peer.owns(stream_id):
            raise RemoteProtocolError("OPEN with a stream id of the wrong side")
        if stream_id <= self._highest_peer_id:
            raise RemoteProtocolError("OPEN reuses a stream id")
        credit, target = fr.decode_open(payload)
        self._highest_peer_id = stream_id
        if self._peer_stream_count >= self.limits.max_streams:
            # our HELLO told the peer this maximum; a conforming peer goes over it only while its
            # END (data queue) of a stream trails its next OPEN (control queue), so at most by
            # max_streams: beyond that, it ignores the maximum
            self._over_limit_opens += 1
            if self._over_limit_opens > self.limits.max_streams:
                raise LimitExceeded(
                    "streams", f"peer keeps opening streams over its {self.limits.max_streams}"
                )
            self._emit_control(stream_id, FrameType.REFUSE, fr.reason_payload("too many streams"))
            return
        st = _Stream(stream_id, target, self._new_recv_window())
        st.state = TRANSITIONS[(StreamState.IDLE, StreamInput.RECV_OPEN)]
        if credit:
            st.send.grant(credit)
        self._streams[stream_id] = st
        self._peer_stream_count += 1
        self.stats.streams_opened += 1
        self._events.append(StreamOpened(stream_id, target))

    def _on_accept(self, stream_id: int, payload: bytes | memoryview) -> None:
        credit = fr.decode_u32(payload, "ACCEPT")
        st = self._peer_frame_stream(stream_id)
        if st is None:
            return
        if not self.role.owns(stream_id):
            raise RemoteProtocolError("ACCEPT for a stream the peer opened")
        if self._apply(st, StreamInput.RECV_ACCEPT, "ACCEPT") is None:
            return
        if credit:
            st.send.grant(credit)
        self._events.append(StreamAccepted(stream_id))

    def _on_refuse(self, stream_id: int, payload: bytes | memoryview) -> None:
        reason = fr.decode_reason(payload)
        st = self._peer_frame_stream(stream_id)
        if st is None:
            return
        if self._apply(st, StreamInput.RECV_REFUSE, "REFUSE") is None:
            return
        self._forget(st, keep_buffered=False)
        self._events.append(StreamRefused(stream_id, reason))

    def _on_end(self, stream_id: int, payload: bytes | memoryview) -> None:
        st = self._peer_frame_stream(stream_id)
        if st is None:
            return
        new = self._apply(st, StreamInput.RECV_END, "END")
        if new is None:
            return
        if new is StreamState.CLOSED:
            self._forget(st, keep_buffered=True)
        self._events.append(StreamEnded(stream_id))

    def _on_reset(self, stream_id: int, payload: bytes | memoryview) -> None:
        reason = fr.decode_reason(payload)
        st = self._peer_frame_stream(stream_id)
        if st is None:
            return
        st.state = StreamState.CLOSED
        self._forget(st, keep_buffered=False)
        self._events.append(StreamReset(stream_id, reason))

    def _on_window(self, stream_id: int, payload: bytes | memoryview) -> None:
        increment = fr.decode_u32(payload, "WINDOW")
        st = self._peer_frame_stream(stream_id)
        if st is None:
            return
        if self._apply(st, StreamInput.RECV_WINDOW, "WINDOW") is None:
            return
        st.send.grant(increment)
        self._events.append(WindowUpdated(stream_id))

    def _on_ping(self, stream_id: int, payload: bytes | memoryview) -> None:
        if len(payload) != PING_PAYLOAD_BYTES:
            raise RemoteProtocolError("bad PING size")
        self._owed_pong = bytes(payload)  # coalesced: only the newest ping is answered

    def _on_pong(self, stream_id: int, payload: bytes | memoryview) -> None:
        if len(payload) != PING_PAYLOAD_BYTES:
            raise RemoteProtocolError("bad PONG size")
        sent = self._pings.pop(bytes(payload), None)
        if sent is None:
            return  # an answer to a ping we forgot: harmless
        # every older ping is answered too (the peer answers in order)
        for key in [k for k, t in self._pings.items() if t <= sent]:
            del self._pings[key]
        self._events.append(PongReceived(max(0.0, self._clock() - sent)))

    def _on_sync(self, stream_id: int, payload: bytes | memoryview) -> None:
        watermark, ids = fr.decode_sync(payload)
        if watermark >= self._next_id or (watermark and not self.role.owns(watermark)):
            raise RemoteProtocolError("bad SYNC watermark")
        live = set(ids)
        if len(live) != len(ids) or 0 in live:
            raise RemoteProtocolError("bad SYNC stream ids")
        for st in list(self._streams.values()):
            if st.id in live:
                continue
            if self.role.owns(st.id) and st.id > watermark:
                continue  # the peer had not seen our OPEN yet
            reason = "stream forgotten by peer"
            self.stats.streams_synced_away += 1
            self._emit_control(st.id, FrameType.RESET, fr.reason_payload(reason))
            self._forget(st, keep_buffered=False)
            self._events.append(StreamReset(st.id, reason))
        for sid in live:
            if sid in self._streams:
                continue
            if self.role.owns(sid):
                if sid >= self._next_id:
                    raise RemoteProtocolError("SYNC names a stream never opened")
            elif sid > self._highest_peer_id:
                raise RemoteProtocolError("SYNC names a stream never opened")
            # we forgot it, the peer did not: tell the peer to drop it
            self._emit_control(sid, FrameType.RESET, fr.reason_payload("stream unknown"))

    def _on_message(self, stream_id: int, payload: bytes | memoryview) -> None:
        self._events.append(MessageReceived(messages.decode(payload), len(payload)))

    def _on_goaway(self, stream_id: int, payload: bytes | memoryview) -> None:
        code, reason = fr.decode_goaway(payload)
        try:
            kind: str | None = None if code == GoAwayCode.NORMAL else GoAwayCode(code).name.lower()
        except ValueError:
            kind = f"code {code}"
        self.state = ConnectionState.CLOSED
        self._events.append(ConnectionTerminated(reason or "peer went away", kind))

    def _on_hello_again(self, stream_id: int, payload: bytes | memoryview) -> None:
        raise RemoteProtocolError("duplicate HELLO")

    _HANDLERS: dict[FrameType, Callable[[Connection, int, bytes | memoryview], None]] = {
        FrameType.HELLO: _on_hello_again,
        FrameType.OPEN: _on_open,
        FrameType.ACCEPT: _on_accept,
        FrameType.REFUSE: _on_refuse,
        FrameType.END: _on_end,
        FrameType.RESET: _on_reset,
        FrameType.WINDOW: _on_window,
        FrameType.PING: _on_ping,
        FrameType.PONG: _on_pong,
        FrameType.SYNC: _on_sync,
        FrameType.MESSAGE: _on_message,
        FrameType.GOAWAY: _on_goaway,
    }


__all__ = [
    "TRANSITIONS",
    "Connection",
    "ConnectionState",
    "ConnectionStats",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "Role",
    "StreamInput",
    "StreamState",
]
