"""A tunnel session: the sans-I/O :class:`Connection` driven over one websocket.

Tasks (one TaskGroup, each named and guarded: an unexpected exit is logged and tears the session
down): ``reader`` feeds websocket messages to the connection and dispatches events (on an aiohttp
websocket in push mode: our frame reader hands each message to the connection from the
transport's read callback, and the task only waits for the input to end); ``writer`` is
the one write path (control frames first); ``keepalive`` pings every ``ping_interval_s`` and tears
the session down when no pong came for ``pong_timeout_s`` however busy the streams are; ``sync``
(agent side) lists live stream ids every ``sync_interval_s``; ``messages`` runs the message handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import ssl as ssl_module
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.client_ws import ClientWebSocketResponse

from . import events as ev
from .constants import DEFAULT_LIMITS, MAX_PENDING_MESSAGES, Limits
from .errors import (
    DialRefused,
    LocalProtocolError,
    ProtocolError,
    SessionClosed,
    StreamReset,
    forget_traceback,
)
from .flag import Flag
from .frames import GoAwayCode, Role
from .logs import get_logger
from .malloc import tune_malloc
from .messages import Message
from .protocol import Connection
from .stream import STREAM_READER_LIMIT_BYTES, IncomingStream, TunnelStream
from .transport import TunnelTransport
from .wsadapter import WebSocketLike, adapt

StreamHandler = Callable[[IncomingStream], Awaitable[None]]
MessageHandler = Callable[[Message], Awaitable[None]]
P = TypeVar("P", bound=asyncio.BaseProtocol)

KEEPALIVE_GRACE_S = 0.02  # before declaring the peer dead, let already-arrived input be read
KEEPALIVE_DEADLINE_SLACK_S = 0.001  # wake just past the pong deadline, not just before it
HEARD_PING_FACTOR = 1.5  # the server pings a peer it has not heard from for this many intervals
KEEPALIVE_MIN_SLEEP_S = 0.001  # a deadline already passed is looked at again after this
# Each next ping comes after a random part of the interval's last fifth (never later than the
# interval, so no deadline moves). Without it sessions that shook hands together, or whose timers
# all came due during one stall of the loop (a full garbage collection at 10,000 sessions stops
# it for ~1 s), ping in step forever: a burst every interval that held the server's loop for
# 20-40 ms and was the tail of every proxied request that met it.
KEEPALIVE_JITTER = 0.2
_JITTER = random.Random()  # timing only, nothing secret
WS_CLOSE_GOING_AWAY = 1001
WS_CLOSE_PROTOCOL_ERROR = 1002
WS_CLOSE_POLICY_VIOLATION = 1008  # the peer exceeded a per-peer bound
WS_CLOSE_INTERNAL_ERROR = 1011
_CONNECTION_CLOSED = object()  # push-mode input end: the tunnel connection itself ended


class _Stop(Exception):
    """Raised by a guarded task to end the session's task group."""


@dataclass(frozen=True, slots=True)
class SessionStats:
    bytes_in: int
    bytes_out: int
    frames_in: int
    frames_out: int
    open_streams: int
    streams_opened: int
    streams_synced_away: int
    rtt_s: float | None
    messages_dropped: int
    dials_over_limit: int  # our dials refused because max_pending_opens were waiting


def format_target(host: str, port: int) -> str:
    """``tcp://host:port`` (IPv6 literals in brackets)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


class Session:
    """One tunnel over one websocket (either end). Call :meth:`run` to drive it."""

    # slots, not an instance dict: one session per agent, 10,000 of them in a server
    __slots__ = (
        "__weakref__",
        "_abort_ws",
        "_bound_exceeded",
        "_close_callbacks",
        "_close_code",
        "_close_reason",
        "_closed",
        "_closing",
        "_conn",
        "_dials_over_limit",
        "_draining",
        "_finished",
        "_flush_scheduled",
        "_flushed",
        "_input_done",
        "_ka_dead",
        "_ka_grace",
        "_ka_last_ping",
        "_ka_next_ping",
        "_ka_timer",
        "_last_heard",
        "_last_pong",
        "_log",
        "_loop",
        "_message_task",
        "_messages",
        "_messages_dropped",
        "_on_message",
        "_on_stream",
        "_pending_message_bytes",
        "_pending_opens",
        "_ready",
        "_rtt_s",
        "_started",
        "_tg",
        "_transports",
        "_wake",
        "_write_error",
        "_ws",
        "limits",
        "name",
        "role",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse | ClientWebSocketResponse | WebSocketLike,
        role: Role,
        *,
        name: str,
        on_stream: StreamHandler | None = None,
        on_message: MessageHandler | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if limits.ping_interval_s >= limits.pong_timeout_s:
            raise ValueError("ping_interval_s must be shorter than pong_timeout_s")
        self._ws = adapt(ws)
        self.role = role
        self.name = name
        self.limits = limits
        self._on_stream = on_stream
        self._on_message = on_message
        self._conn = Connection(
            role, limits=limits, clock=time.monotonic, headroom_bytes=self._ws.headroom_bytes
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_scheduled = False
        self._draining = False  # the writer task waits for the transport; flushes defer to it
        self._write_error: BaseException | None = None
        self._log = get_logger(tunnel=name, role=role.name.lower())
        self._transports: dict[int, TunnelTransport] = {}
        self._pending_opens: dict[int, asyncio.Future[None]] = {}
        self._ready = Flag()
        self._wake = Flag()
        self._flushed = Flag()
        self._finished = Flag()
        self._close_callbacks: list[Callable[[], None]] = []
        # received messages for the handler, and the task handing them over while there are any
        self._messages: deque[tuple[Message, int]] | None = None  # (made when one comes)
        self._message_task: asyncio.Task[None] | None = None
        # the keepalive runs on loop timers, not in a task (a task per session cost memory at
        # 10,000 sessions): the next timer, the next ping, the last ping, and whether the grace
        # for input that already arrived was given
        self._ka_timer: asyncio.TimerHandle | None = None
        self._ka_next_ping = 0.0
        self._ka_last_ping = 0.0
        self._ka_grace = False
        self._ka_dead = False  # the keepalive declared the peer dead: the writer ends
        self._pending_message_bytes = 0
        self._messages_dropped = 0
        self._dials_over_limit = 0
        self._bound_exceeded: str | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._closing = False  # a clean close was requested: flush, GOAWAY, stop
        self._closed = False
        self._close_reason: str | None = None
        self._close_code = WS_CLOSE_GOING_AWAY
        self._rtt_s: float | None = None
        self._last_pong = time.monotonic()  # the last valid pong (or the handshake)
        self._last_heard = self._last_pong  # the server: the last message of any kind
        self._started = False
        self._input_done = False  # push mode: no more websocket input is processed
        self._abort_ws = False  # cut off for a bound: the peer does not read, do not wait

    # ------------------------------------------------------------------ public API

    @property
    def rtt_s(self) -> float | None:
        """Round-trip time of the last ping, in seconds (None before the first pong)."""
        return self._rtt_s

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str | None:
        return self._close_reason

    @property
    def stats(self) -> SessionStats:
        s = self._conn.stats
        return SessionStats(
            bytes_in=s.bytes_in,
            bytes_out=s.bytes_out,
            frames_in=s.frames_in,
            frames_out=s.frames_out,
            open_streams=len(self._conn.stream_ids),
            streams_opened=s.streams_opened,
            streams_synced_away=s.streams_synced_away,
            rtt_s=self._rtt_s,
            messages_dropped=self._messages_dropped,
            dials_over_limit=self._dials_over_limit,
        )

    @property
    def bound_exceeded(self) -> str | None:
        """The per-peer bound the peer exceeded (the session was cut off for it), if any."""
        return self._bound_exceeded

    async def close_for_bound(self, bound: str, reason: str) -> None:
        """Cut the peer off for exceeding a bound kept above the tunnel (e.g. its reports):
        logged, recorded in :attr:`bound_exceeded`, the websocket closed with 1008."""
        if self._bound_exceeded is None and not self._closed:
            self._bound_exceeded = bound
            self._log.warning("peer exceeded a bound", bound=bound, reason=reason)
        await self.close(WS_CLOSE_POLICY_VIOLATION, reason)

    @property
    def connection(self) -> Connection:
        """The protocol state machine (read-only use: introspection in tests and metrics)."""
        return self._conn

    async def wait_ready(self) -> None:
        """Wait until the handshake completed (raises SessionClosed if the session ended)."""
        if self._ready.is_set():
            return
        ready = asyncio.ensure_future(self._ready.wait())
        finished = asyncio.ensure_future(self._finished.wait())
        try:
            await asyncio.wait(
                {ready, finished},
                timeout=self.limits.handshake_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
            finished.cancel()
        if self._closed or not self._ready.is_set():
            raise SessionClosed(self._close_reason or "handshake not complete")

    async def run(self) -> None:
        """Drive the session until it ends (peer gone, close(), keepalive timeout, error)."""
        if self._started:
            raise RuntimeError("session already running")
        self._started = True
        self._loop = asyncio.get_running_loop()
        tune_malloc()  # once per process: keeps bulk buffers off fresh kernel pages
        self._kick()  # our HELLO
        self._log.info("tunnel session started")
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                if not self._start_push():
                    self._spawn("reader", self._pull_reader)
                self._spawn("writer", self._writer)
                self._ka_timer = self._loop.call_later(self.limits.handshake_timeout_s,
                                                       self._keepalive)
                if self.role is Role.AGENT:
                    self._spawn("sync", self._sync_loop)
        except* _Stop as stopped:
            # The group's traceback holds TaskGroup.__aexit__'s finished frame, whose local holds
            # the group: a cycle that kept the whole session (~50 objects, ~90 in the server)
            # until a full collection. Clearing the finished frames frees it at once.
            for exc in (stopped, *stopped.exceptions):
                forget_traceback(exc)
        finally:
            self._tg = None
            if self._ka_timer is not None:
                self._ka_timer.cancel()
                self._ka_timer = None
            await self._teardown()

    async def close(self, code: int = WS_CLOSE_GOING_AWAY, reason: str = "going away") -> None:
        """Close cleanly: queued data and a GOAWAY are flushed (bounded), then the websocket."""
        if self._closed:
            return
        self._set_reason(reason)
        self._close_code = code
        self._closing = True
        self._conn.close(reason)
        self._kick()
        if not self._started:
            self._closed = True
            await self._close_ws()
            self._set_finished()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.close_timeout_s * 2):
                await self._finished.wait()

    async def wait_closed(self) -> None:
        await self._finished.wait()

    def add_close_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from the event loop) once the session has ended: a task per
        session that only waits for its end cost memory at 10,000 sessions."""
        if self._finished.is_set():
            asyncio.get_running_loop().call_soon(callback)
        else:
            self._close_callbacks.append(callback)

    def _set_finished(self) -> None:
        self._finished.set()
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:  # one failing callback does not stop the others
                self._log.error("close callback failed", exc_info=exc)

    async def open_stream(self, target: str) -> TunnelStream:
        """Ask the peer to open ``target``; raises DialRefused(reason) or SessionClosed."""
        if self._closed or self._closing:
            raise SessionClosed(self._close_reason or "session closed")
        await self.wait_ready()
        if len(self._pending_opens) >= self.limits.max_pending_opens:
            self._dials_over_limit += 1
            raise DialRefused(
                f"too many dials waiting for the peer ({self.limits.max_pending_opens})"
            )
        try:
            stream_id = self._conn.open_stream(target)
        except LocalProtocolError as exc:
            raise DialRefused(exc.reason) from None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_opens[stream_id] = fut
        transport = TunnelTransport(self, stream_id, target)
        self._transports[stream_id] = transport
        self._kick()
        try:
            async with asyncio.timeout(self.limits.open_timeout_s):
                await fut
        except TimeoutError:
            self._reset_stream(stream_id, "open timed out")
            transport._connection_lost(None)
            raise DialRefused("open timed out") from None
        except BaseException:
            if not fut.done() or fut.exception() is None:
                self._reset_stream(stream_id, "open cancelled")
            transport._connection_lost(None)
            raise
        finally:
            self._pending_opens.pop(stream_id, None)
        return TunnelStream(transport)

    async def open_connection(
        self,
        host: str,
        port: int,
        *,
        ssl: ssl_module.SSLContext | bool | None = None,
        server_hostname: str | None = None,
        limit: int = STREAM_READER_LIMIT_BYTES,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Like ``asyncio.open_connection`` through the tunnel (the peer connects to host:port)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await self.create_connection(
            lambda: protocol, host, port, ssl=ssl, server_hostname=server_hostname
        )
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        return reader, writer

    async def create_connection(
        self,
        protocol_factory: Callable[[], P],
        host: str,
        port: int,
        *,
        ssl: ssl_module.SSLContext | bool | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        **_ignored: Any,
    ) -> tuple[asyncio.Transport, P]:
        """Like ``loop.create_connection`` through the tunnel; TLS runs end to end inside the
        stream when ``ssl`` is set (the peer only sees ciphertext)."""
        stream = await self.open_stream(format_target(host, port))
        protocol = protocol_factory()
        if not ssl:
            return stream.attach(protocol), protocol
        context = (
            ssl if isinstance(ssl, ssl_module.SSLContext) else ssl_module.create_default_context()
        )
        hostname = host if server_hostname is None else server_hostname
        try:
            tls = await _start_tls(
                stream.transport, protocol, context, hostname or None, ssl_handshake_timeout
            )
        except BaseException:
            stream.transport.abort()
            raise
        protocol.connection_made(tls)
        return tls, protocol

    async def send_message(self, msg: Message) -> None:
        """Send a typed message (ordered with stream data)."""
        if self._closed or self._closing:
            raise SessionClosed(self._close_reason or "session closed")
        await self.wait_ready()
        self._conn.send_message(msg)
        self._kick()

    # ------------------------------------------------------------------ used by transports

    def _kick(self) -> None:
        """Output is pending: it is written when the loop iteration's ready callbacks are done,
        so everything the iteration produced (all the streams' input read in one poll, the
        credit its deliveries freed) goes out in one websocket message and one system call.
        Writing the first output at once instead cost about 10% more CPU per request with 16
        connections and no measurable latency gain at 1 connection."""
        if self._flush_scheduled or self._draining:
            return
        if self._loop is None:
            self._wake.set()
            return
        self._flush_scheduled = True
        self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """The one write path (synchronous part): write chunks until none is left or the
        transport is full; then the writer task takes over and waits for it to drain."""
        self._flush_scheduled = False
        if self._draining or self._closed or self._write_error is not None:
            return
        conn, ws = self._conn, self._ws
        try:
            while True:
                if ws.needs_drain:
                    self._draining = True
                    self._wake.set()
                    return
                chunk = conn.next_chunk()
                if chunk is None:
                    break
                ws.write_chunk(*chunk)
        except (ConnectionError, OSError) as exc:
            self._write_error = exc
            self._wake.set()
            return
        if self._closing:
            self._wake.set()

    def _send_credit(self, stream_id: int) -> int:
        return self._conn.send_credit(stream_id)

    def _send_data(self, stream_id: int, data: bytes | bytearray | memoryview) -> int:
        if self._conn.closed:
            return 0
        try:
            n = self._conn.send_data(stream_id, data)
        except LocalProtocolError:
            return 0
        if n:
            self._kick()
        return n

    def _consumed(self, stream_id: int, nbytes: int) -> None:
        if self._conn.closed:
            return
        self._conn.consumed(stream_id, nbytes)
        if self._conn.has_data_to_send:
            self._kick()

    def _end_stream(self, stream_id: int) -> None:
        if self._conn.closed:
            return
        with contextlib.suppress(LocalProtocolError):
            self._conn.end_stream(stream_id)
            self._kick()

    def _reset_stream(self, stream_id: int, reason: str) -> None:
        self._pending_opens.pop(stream_id, None)
        if self._conn.closed:
            return
        with contextlib.suppress(LocalProtocolError):
            self._conn.reset(stream_id, reason)
            self._kick()

    def _forget_transport(self, stream_id: int) -> None:
        self._transports.pop(stream_id, None)

    def _accept_incoming(self, stream_id: int, target: str) -> TunnelTransport:
        if self._conn.closed:
            raise SessionClosed(self._close_reason or "session closed")
        try:
            self._conn.accept(stream_id)
        except LocalProtocolError:
            raise StreamReset("stream reset before it was accepted") from None
        transport = TunnelTransport(self, stream_id, target)
        self._transports[stream_id] = transport
        self._kick()
        return transport

    def _refuse_incoming(self, stream_id: int, reason: str) -> None:
        if self._conn.closed:
            return
        with contextlib.suppress(LocalProtocolError):
            self._conn.refuse(stream_id, reason)
            self._kick()

    # ------------------------------------------------------------------ tasks

    def _spawn(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        assert self._tg is not None
        guard = self._guard(name, work)
        try:
            self._tg.create_task(guard, name=f"tunnel:{self.name}:{name}")
        except RuntimeError:  # the group is stopping: never started, closed here
            guard.close()
            raise

    def _set_reason(self, reason: str) -> None:
        if self._close_reason is None:
            self._close_reason = reason

    async def _guard(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """``work()`` is only called here: a task cancelled before it starts leaves no
        coroutine never awaited."""
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log.error("tunnel task failed", task=name, exc_info=exc)
            self._set_reason(f"internal error in {name}")
            self._close_code = WS_CLOSE_INTERNAL_ERROR
        else:
            self._set_reason(f"{name} ended")
        # streams learn the session is gone before their tasks are cancelled
        self._lose_transports()
        raise _Stop()

    def _lose_transports(self) -> None:
        reason = self._close_reason or "session closed"
        for fut in self._pending_opens.values():
            if not fut.done():
                fut.set_exception(SessionClosed(reason))
        self._pending_opens.clear()
        for tr in list(self._transports.values()):
            tr._session_lost(SessionClosed(reason))
        self._transports.clear()

    def _start_push(self) -> bool:
        """Push mode where the websocket offers it: messages are handled from the transport's
        read callback, and the reader's end runs as a task only once the input has ended (no
        task per session waiting for it meanwhile: memory and collector work at 10,000
        sessions). False: the caller reads with :meth:`_pull_reader`."""
        start_push = getattr(self._ws, "start_push", None)
        return start_push is not None and bool(start_push(self._on_ws_message, self._on_ws_end))

    def _on_ws_message(self, data: bytes | bytearray) -> None:
        """Push mode: one websocket message, delivered from the transport's read callback."""
        if self._input_done:
            return
        conn = self._conn
        if self.role is Role.SERVER:
            self._last_heard = time.monotonic()
        try:
            conn.receive_data(data)
            self._dispatch(conn.events())
        except Exception as exc:  # a fault of ours: the reader's task fails with it
            self._input_ends(None, exc)
            return
        if conn.closed:
            self._on_ws_end(_CONNECTION_CLOSED)
        elif conn.has_data_to_send:
            self._kick()

    def _on_ws_end(self, result: object) -> None:
        self._input_ends(result, None)

    def _input_ends(self, result: object, failure: Exception | None) -> None:
        """Push mode, once: the input is over, and its end is handled by a reader task started
        now (:meth:`_push_reader`), unless the session has ended already."""
        if self._input_done:
            return
        self._input_done = True
        if self._tg is None:
            return
        with contextlib.suppress(RuntimeError):  # the task group is already stopping it
            self._spawn("reader", functools.partial(self._push_reader, result, failure))

    async def _push_reader(self, result: object, failure: Exception | None) -> None:
        if failure is not None:
            raise failure
        if result is _CONNECTION_CLOSED:
            if not self._abort_ws:  # a peer cut off for a bound does not read: do not wait
                await self._closing_flush()
        elif isinstance(result, ProtocolError):  # e.g. a text message on the tunnel websocket
            self._set_reason(f"remote: {result.reason}")
            self._close_code = int(getattr(result, "close_code", WS_CLOSE_PROTOCOL_ERROR))
        elif isinstance(result, BaseException):
            self._set_reason(f"connection lost: {type(result).__name__}")
        else:
            self._set_reason("connection closed by peer")

    async def _closing_flush(self) -> None:
        self._closing = True
        self._kick()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.close_timeout_s):
                await self._flushed.wait()

    async def _pull_reader(self) -> None:
        conn = self._conn
        receive = self._ws.receive
        dispatch = self._dispatch
        while True:
            try:
                data = await receive()
            except (ConnectionError, OSError) as exc:
                self._set_reason(f"connection lost: {type(exc).__name__}")
                return
            except ProtocolError as exc:  # e.g. a text message on the tunnel websocket
                self._set_reason(f"remote: {exc.reason}")
                self._close_code = WS_CLOSE_PROTOCOL_ERROR
                return
            if data is None:
                self._set_reason("connection closed by peer")
                return
            if self.role is Role.SERVER:
                self._last_heard = time.monotonic()
            conn.receive_data(data)
            dispatch(conn.events())
            if conn.closed:
                if not self._abort_ws:
                    await self._closing_flush()
                return
            if conn.has_data_to_send:
                self._kick()

    def _dispatch(self, events: list[ev.Event]) -> None:
        transports = self._transports
        for e in events:
            t = type(e)
            if t is ev.DataReceived:
                assert isinstance(e, ev.DataReceived)
                tr = transports.get(e.stream_id)
                if tr is not None:
                    tr._data(e.data)
                else:
                    self._conn.consumed(e.stream_id, len(e.data))
            elif t is ev.WindowUpdated:
                assert isinstance(e, ev.WindowUpdated)
                tr = transports.get(e.stream_id)
                if tr is not None:
                    tr._window()
            elif t is ev.StreamEnded:
                assert isinstance(e, ev.StreamEnded)
                tr = transports.get(e.stream_id)
                if tr is not None:
                    tr._end()
            elif isinstance(e, ev.StreamReset):
                fut = self._pending_opens.pop(e.stream_id, None)
                if fut is not None and not fut.done():
                    fut.set_exception(DialRefused(f"stream reset: {e.reason}"))
                tr = transports.get(e.stream_id)
                if tr is not None:
                    tr._reset(e.reason)
            elif isinstance(e, ev.StreamOpened):
                self._incoming(e.stream_id, e.target)
            elif isinstance(e, ev.StreamAccepted):
                fut = self._pending_opens.pop(e.stream_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            elif isinstance(e, ev.StreamRefused):
                fut = self._pending_opens.pop(e.stream_id, None)
                if fut is not None and not fut.done():
                    fut.set_exception(DialRefused(e.reason))
                tr = transports.get(e.stream_id)
                if tr is not None:
                    tr._connection_lost(None)
            elif isinstance(e, ev.PongReceived):
                self._rtt_s = e.rtt_s
                self._last_pong = time.monotonic()
            elif isinstance(e, ev.MessageReceived):
                pending = self._pending_message_bytes + e.nbytes
                if pending > self.limits.max_pending_message_bytes:
                    self._cut_off(
                        "messages",
                        f"over {self.limits.max_pending_message_bytes} bytes of messages "
                        "waiting for the handler",
                    )
                    return
                if self._messages is None:
                    self._messages = deque()
                elif len(self._messages) >= MAX_PENDING_MESSAGES:
                    self._messages_dropped += 1
                    self._log.warning("message dropped: handler too slow", kind=e.message.KIND)
                    continue
                self._messages.append((e.message, e.nbytes))
                self._pending_message_bytes = pending
                if self._message_task is None and self._tg is not None:
                    self._message_task = self._tg.create_task(
                        self._hand_over_messages(), name=f"tunnel:{self.name}:messages")
            elif isinstance(e, ev.HandshakeCompleted):
                self._last_pong = self._last_heard = time.monotonic()
                self._ready.set()
                if self._ka_timer is not None:  # the handshake deadline: the keepalive starts
                    self._ka_timer.cancel()
                    self._ka_timer = None
                    self._keepalive()
            elif isinstance(e, ev.ConnectionTerminated):
                self._set_reason(
                    e.reason if e.error_kind is None else f"{e.error_kind}: {e.reason}"
                )
                if e.error_kind == "remote":
                    self._close_code = WS_CLOSE_PROTOCOL_ERROR
                    self._log.warning("peer broke the tunnel protocol", reason=e.reason)
                elif e.error_kind == "limit":
                    self._close_code = WS_CLOSE_POLICY_VIOLATION
                    self._bound_exceeded = self._conn.limit_exceeded
                    self._abort_ws = True
                    self._log.warning(
                        "peer exceeded a bound", bound=self._bound_exceeded, reason=e.reason
                    )

    def _cut_off(self, bound: str, reason: str) -> None:
        """The peer exceeded a bound kept in this layer: GOAWAY, then drop the connection."""
        self._bound_exceeded = bound
        self._set_reason(f"limit: {reason}")
        self._close_code = WS_CLOSE_POLICY_VIOLATION
        self._abort_ws = True
        self._log.warning("peer exceeded a bound", bound=bound, reason=reason)
        self._conn.close(reason, GoAwayCode.LIMIT_EXCEEDED)
        self._kick()

    def _incoming(self, stream_id: int, target: str) -> None:
        if self._on_stream is None or self._tg is None or self._closing:
            self._conn.refuse(stream_id, "streams not accepted here")
            return
        incoming = IncomingStream(self, stream_id, target)
        self._tg.create_task(
            self._handle_stream(incoming), name=f"tunnel:{self.name}:stream:{stream_id}"
        )

    async def _handle_stream(self, incoming: IncomingStream) -> None:
        assert self._on_stream is not None
        try:
            await self._on_stream(incoming)
        except asyncio.CancelledError:
            tr = self._transports.get(incoming.stream_id)
            if tr is not None:
                tr.abort()
            raise
        except Exception as exc:
            self._log.error("stream handler failed", stream_id=incoming.stream_id, exc_info=exc)
            if not incoming.answered:
                incoming.answered = True
                self._refuse_incoming(incoming.stream_id, "internal error")
            else:
                tr = self._transports.get(incoming.stream_id)
                if tr is not None:
                    tr.abort()
            return
        if not incoming.answered:
            incoming.answered = True
            self._refuse_incoming(incoming.stream_id, "stream not handled")

    async def _writer(self) -> None:
        """The slow half of the write path: waits while the transport drains, finishes a close."""
        conn, ws, wake = self._conn, self._ws, self._wake
        try:
            while True:
                await wake.wait()
                wake.clear()
                if self._ka_dead:
                    return
                if self._write_error is not None:
                    exc = self._write_error
                    self._set_reason(f"connection lost: {type(exc).__name__}")
                    return
                while True:
                    if ws.needs_drain:
                        self._draining = True
                        await ws.drain()
                    chunk = conn.next_chunk()
                    if chunk is None:
                        break
                    ws.write_chunk(*chunk)
                self._draining = False
                if self._closing:
                    return
        except (ConnectionError, OSError) as exc:
            self._set_reason(f"connection lost: {type(exc).__name__}")
        finally:
            self._draining = False
            self._flushed.set()

    def _keepalive(self) -> None:
        """One keepalive step, on a loop timer: the handshake deadline first, then a ping due,
        a dead peer found; then the timer is set for the next ping or the nearest deadline (not
        a fixed tick: at 10,000 sessions the tick's wake-ups were a third of the idle server's
        CPU; a message that came moves a deadline, a missing one is found at it)."""
        self._ka_timer = None
        loop = self._loop
        if self._closed or self._ka_dead or loop is None:
            return
        if not self._ready.is_set():
            self._keepalive_ends("handshake timed out", WS_CLOSE_PROTOCOL_ERROR)
            return
        interval = self.limits.ping_interval_s
        timeout = self.limits.pong_timeout_s
        rtt_sample = self.limits.rtt_sample_s
        server = self.role is Role.SERVER
        # the agent: a pong within the timeout; the server: any message within it, and a pong
        # within rtt_sample_s more (so a peer that never reads cannot stay)
        pong_timeout = timeout + rtt_sample if server else timeout
        now = time.monotonic()
        if self._silent_for(now, timeout, pong_timeout):
            if not self._ka_grace:
                # the loop may have been busy: let pending input (a pong) be read first
                self._ka_grace = True
                self._ka_timer = loop.call_later(KEEPALIVE_GRACE_S, self._keepalive)
                return
            reason = (f"no pong for {pong_timeout:g} s" if now - self._last_pong > pong_timeout
                      else f"no pong nor any message for {timeout:g} s")
            self._log.warning("peer stopped answering pings", reason=reason)
            self._keepalive_ends(reason, None)
            return
        self._ka_grace = False
        if now >= self._ka_next_ping and not self._conn.closed:
            # heard within 1.5 intervals: the agent's own pings (in phase with ours, or not)
            # keep it in; a silent peer is pinged
            if not server or now - self._last_heard > HEARD_PING_FACTOR * interval \
                    or now - self._ka_last_ping >= rtt_sample:
                self._conn.ping(now)
                self._kick()
                self._ka_last_ping = now
            # the first interval after the handshake is anywhere in (0, 1]: sessions that came
            # up together are spread at once
            spread = 1.0 if self._ka_next_ping == 0.0 else KEEPALIVE_JITTER
            self._ka_next_ping = now + interval * (1.0 - spread * _JITTER.random())
        deadline = min(self._ka_next_ping, self._last_pong + pong_timeout)
        if server:
            deadline = min(deadline, self._last_heard + timeout)
        self._ka_timer = loop.call_later(
            max(KEEPALIVE_MIN_SLEEP_S, deadline + KEEPALIVE_DEADLINE_SLACK_S - now),
            self._keepalive)

    def _keepalive_ends(self, reason: str, code: int | None) -> None:
        """The peer never shook hands (``code``: closed with it) or is dead (``code`` None: the
        connection is dropped at once, a writer waiting for a peer that does not read
        included); the writer task ends the session."""
        self._set_reason(reason)
        self._ka_dead = True
        if code is not None:
            self._close_code = code
        else:
            self._abort_ws = True
            self._ws.abort()
        self._wake.set()

    def _silent_for(self, now: float, timeout: float, pong_timeout: float) -> bool:
        """Whether the peer is dead: no valid pong within ``pong_timeout``, or (the server)
        nothing at all within ``timeout``."""
        if now - self._last_pong > pong_timeout:
            return True
        return self.role is Role.SERVER and now - self._last_heard > timeout


    async def _sync_loop(self) -> None:
        try:
            await self.wait_ready()
        except SessionClosed:
            return  # the keepalive task reports the failed handshake
        while True:  # jittered like the pings, for the same reason
            await asyncio.sleep(self.limits.sync_interval_s
                                * (1.0 - KEEPALIVE_JITTER * _JITTER.random()))
            if self._conn.closed:
                return
            self._conn.sync()
            self._kick()

    async def _hand_over_messages(self) -> None:
        """Hand the received messages to the handler, in order, while there are any."""
        try:
            while self._messages:
                msg, nbytes = self._messages.popleft()
                self._pending_message_bytes -= nbytes
                if self._on_message is None:
                    continue
                try:
                    await self._on_message(msg)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._log.error("message handler failed", kind=msg.KIND, exc_info=exc)
        finally:
            self._message_task = None
            if not self._messages:
                self._messages = None

    # ------------------------------------------------------------------ teardown

    async def _teardown(self) -> None:
        self._closed = True
        self._input_done = True
        reason = self._close_reason or "session closed"
        self._lose_transports()
        if self._abort_ws:
            self._ws.abort()
        else:
            await self._close_ws()
        self._log.info("tunnel session ended", reason=reason)
        self._set_finished()

    async def _close_ws(self) -> None:
        try:
            async with asyncio.timeout(self.limits.close_timeout_s):
                await self._ws.close(self._close_code, self._close_reason or "going away")
        except (TimeoutError, ConnectionError, OSError):
            self._ws.abort()


async def _start_tls(
    transport: TunnelTransport,
    protocol: asyncio.BaseProtocol,
    context: ssl_module.SSLContext,
    server_hostname: str | None,
    handshake_timeout_s: float | None,
) -> asyncio.Transport:
    loop = asyncio.get_running_loop()
    try:
        tls = await loop.start_tls(
            transport,
            protocol,
            context,
            server_hostname=server_hostname,
            ssl_handshake_timeout=handshake_timeout_s,
        )
    except TypeError:
        tls = None  # uvloop's start_tls only takes its own transports
    if tls is None:
        from asyncio import sslproto

        waiter = loop.create_future()
        ssl_protocol = sslproto.SSLProtocol(
            loop,
            protocol,
            context,
            waiter,
            server_side=False,
            server_hostname=server_hostname,
            ssl_handshake_timeout=handshake_timeout_s,  # type: ignore[arg-type]
            call_connection_made=False,
        )
        transport.set_protocol(ssl_protocol)
        ssl_protocol.connection_made(transport)
        transport.resume_reading()
        await waiter
        tls = ssl_protocol._app_transport
    return tls
