"""Every limit and timeout of the tunnel, in one place, with its unit in the name.

`Limits` bundles the ones a session may tune (tests shorten the keepalive timers); the module
constants are the defaults and the hard protocol bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

PROTOCOL_VERSION = 1

# --- framing -------------------------------------------------------------------------------
FRAME_HEADER_BYTES = 10  # u32 payload length, u32 stream id, u8 type, u8 flags
MAX_FRAME_PAYLOAD_BYTES = 128 * 1024  # largest payload we accept in one frame
MIN_FRAME_PAYLOAD_BYTES = 16 * 1024  # a peer may not announce a smaller maximum than this
MAX_BATCH_BYTES = 1024 * 1024  # outgoing data frames are batched into chunks of about this size
# a websocket message carries one batch: both ends must accept messages this large
WS_MAX_MESSAGE_BYTES = MAX_BATCH_BYTES + MAX_FRAME_PAYLOAD_BYTES + 4 * FRAME_HEADER_BYTES

MAX_TARGET_BYTES = 512  # OPEN target, e.g. "tcp://kubernetes.default.svc:443"
MAX_REASON_BYTES = 256  # REFUSE / RESET / GOAWAY reason text
MAX_MESSAGE_BYTES = 64 * 1024  # one msgpack MESSAGE payload
PING_PAYLOAD_BYTES = 8
MAX_OUTSTANDING_PINGS = 16  # older unanswered pings are forgotten

# --- streams and flow control --------------------------------------------------------------
MAX_STREAMS = 1024  # concurrent streams a peer may have open towards us
MAX_WINDOW_BYTES = 2**31 - 1  # largest credit a sender may ever hold on one stream
MIN_STREAM_WINDOW_BYTES = 64 * 1024  # credit every stream is always guaranteed
INITIAL_WINDOW_BYTES = 256 * 1024  # a new stream's window; it doubles (up to the max) each
# time the stream moves a whole window within WINDOW_AUTOTUNE_PERIOD_S
MAX_STREAM_WINDOW_BYTES = 4 * 1024 * 1024
WINDOW_AUTOTUNE_PERIOD_S = 0.05  # a stream that moves its whole window faster than this grows
MAX_STREAM_BUFFER_BYTES = MAX_STREAM_WINDOW_BYTES  # bytes one stream may hold unconsumed
# credit above the guaranteed minimum is borrowed from one shared per-session budget
SHARED_WINDOW_BUDGET_BYTES = 32 * 1024 * 1024
# hard bound on bytes buffered (received, not yet consumed) by one session
MAX_SESSION_BUFFER_BYTES = MAX_STREAMS * MIN_STREAM_WINDOW_BYTES + SHARED_WINDOW_BUDGET_BYTES

# --- per-peer bounds (a peer that exceeds one is disconnected: GOAWAY LIMIT_EXCEEDED, 1008) ----
# control frames queued to a peer that does not read (pongs are coalesced: at most one is owed)
MAX_CONTROL_QUEUE_BYTES = 256 * 1024
# stream data queued to a peer that does not read: a conforming peer never grants more credit
# than its whole receive buffer, so more than this queued means it granted credit it cannot hold
MAX_DATA_QUEUE_BYTES = MAX_SESSION_BUFFER_BYTES + MAX_BATCH_BYTES
MAX_PENDING_OPENS = 256  # our dials waiting for the peer's ACCEPT / REFUSE; more are refused here
# typed messages received and not yet handled (encoded size): a peer that sends them faster than
# the handler takes them is cut off
MAX_PENDING_MESSAGE_BYTES = 2 * 1024 * 1024
MAX_PENDING_MESSAGES = 1024  # received messages waiting for the handler; more are dropped

# --- timers --------------------------------------------------------------------------------
PING_INTERVAL_S = 5.0
PONG_TIMEOUT_S = 15.0  # no pong for this long: the peer is dead, the session is torn down
# The server pings a peer it hears from anyway only this often: the agent pings every interval,
# and any message from it shows it is alive (half the frames of an idle session). A valid pong is
# still owed within this + the pong timeout: a peer that sends but never reads is dropped.
RTT_SAMPLE_S = 30.0
SYNC_INTERVAL_S = 30.0  # agent lists its live stream ids this often
HANDSHAKE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0  # bounded wait for a clean websocket close
STREAM_LINGER_S = 30.0  # after we closed a stream, how long we wait for the peer's END
CONNECT_TIMEOUT_S = 10.0  # agent-side TCP connect to a dial target
OPEN_TIMEOUT_S = 30.0  # open_stream waits this long for ACCEPT / REFUSE

# --- transport buffering (asyncio layer) -----------------------------------------------------
TRANSPORT_HIGH_WATER_BYTES = 256 * 1024  # pause the writing protocol above this
TRANSPORT_LOW_WATER_BYTES = 64 * 1024  # resume it below this
READ_BUFFER_BYTES = 1024 * 1024  # receive buffer shared by a thread's spliced TCP connections

# --- reconnect -----------------------------------------------------------------------------
BACKOFF_INITIAL_S = 0.5
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 30.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Tunable limits of one connection / session (defaults are the module constants)."""

    max_frame_payload_bytes: int = MAX_FRAME_PAYLOAD_BYTES
    max_streams: int = MAX_STREAMS
    min_stream_window_bytes: int = MIN_STREAM_WINDOW_BYTES
    stream_window_bytes: int = MAX_STREAM_WINDOW_BYTES  # largest window (auto-tuned up to)
    initial_stream_window_bytes: int = INITIAL_WINDOW_BYTES  # clamped to stream_window_bytes
    shared_window_budget_bytes: int = SHARED_WINDOW_BUDGET_BYTES
    max_batch_bytes: int = MAX_BATCH_BYTES
    ping_interval_s: float = PING_INTERVAL_S
    pong_timeout_s: float = PONG_TIMEOUT_S
    rtt_sample_s: float = RTT_SAMPLE_S
    sync_interval_s: float = SYNC_INTERVAL_S
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S
    close_timeout_s: float = CLOSE_TIMEOUT_S
    stream_linger_s: float = STREAM_LINGER_S
    open_timeout_s: float = OPEN_TIMEOUT_S
    max_control_queue_bytes: int = MAX_CONTROL_QUEUE_BYTES
    max_data_queue_bytes: int = MAX_DATA_QUEUE_BYTES
    max_pending_opens: int = MAX_PENDING_OPENS
    max_pending_message_bytes: int = MAX_PENDING_MESSAGE_BYTES

    def __post_init__(self) -> None:
        if not MIN_FRAME_PAYLOAD_BYTES <= self.max_frame_payload_bytes <= MAX_FRAME_PAYLOAD_BYTES:
            raise ValueError("max_frame_payload_bytes out of range")
        if not 1 <= self.max_streams <= MAX_STREAMS:
            raise ValueError("max_streams out of range")
        if not 0 < self.min_stream_window_bytes <= self.stream_window_bytes <= MAX_WINDOW_BYTES:
            raise ValueError("need 0 < min_stream_window_bytes <= stream_window_bytes")
        if self.shared_window_budget_bytes < 0:
            raise ValueError("shared_window_budget_bytes must be >= 0")
        if self.max_control_queue_bytes < MIN_FRAME_PAYLOAD_BYTES:
            raise ValueError("max_control_queue_bytes must be >= MIN_FRAME_PAYLOAD_BYTES")
        if self.max_data_queue_bytes < self.max_batch_bytes:
            raise ValueError("max_data_queue_bytes must be >= max_batch_bytes")
        if self.max_pending_message_bytes < MAX_MESSAGE_BYTES:
            raise ValueError("max_pending_message_bytes must be >= MAX_MESSAGE_BYTES")
        if self.max_pending_opens < 1:
            raise ValueError("max_pending_opens must be >= 1")

    @property
    def max_session_buffer_bytes(self) -> int:
        """Hard bound on unconsumed bytes a session holds for its streams."""
        return self.max_streams * self.min_stream_window_bytes + self.shared_window_budget_bytes


DEFAULT_LIMITS = Limits()
