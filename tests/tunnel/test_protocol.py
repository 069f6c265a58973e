"""The sans-I/O connection: handshake, streams, flow control, ping, sync, messages, errors."""

from __future__ import annotations

import itertools

import pytest

from rancher_tunnel import events as ev
from rancher_tunnel import frames as fr
from rancher_tunnel.constants import PROTOCOL_VERSION, Limits
from rancher_tunnel.errors import LocalProtocolError
from rancher_tunnel.frames import FrameType, Role
from rancher_tunnel.messages import Health, UnknownMessage
from rancher_tunnel.protocol import TRANSITIONS, Connection, StreamInput, StreamState

pytestmark = pytest.mark.timeout(30)

SMALL = Limits(
    min_stream_window_bytes=1024,
    stream_window_bytes=4096,
    shared_window_budget_bytes=8192,
    max_streams=4,
    max_frame_payload_bytes=16 * 1024,
)


def pump(a: Connection, b: Connection) -> None:
    moved = True
    while moved:
        moved = False
        for x, y in ((a, b), (b, a)):
            while data := x.data_to_send():
                y.receive_data(bytes(data))
                moved = True


def pair(limits: Limits = SMALL) -> tuple[Connection, Connection]:
    s, a = Connection(Role.SERVER, limits=limits), Connection(Role.AGENT, limits=limits)
    pump(s, a)
    assert isinstance(s.events()[0], ev.HandshakeCompleted)
    assert isinstance(a.events()[0], ev.HandshakeCompleted)
    return s, a


def accepted_stream(s: Connection, a: Connection) -> int:
    """A stream the server opens and the agent accepts, both sides caught up; its id."""
    sid = s.open_stream("tcp://x:1")
    pump(s, a)
    a.accept(sid)
    pump(s, a)
    return sid


def raw(c: Connection) -> bytes:
    out = b""
    while chunk := c.data_to_send():
        out += chunk
    return out


def frames_of(data: bytes) -> list[fr.Frame]:
    return fr.FrameParser().feed(data)


def hello(role: Role, version: int = PROTOCOL_VERSION) -> bytes:
    return fr.encode_frame(
        0, FrameType.HELLO, fr.hello_payload(fr.Hello(version, role, 4096, 16384, 8))
    )


def test_hello_is_first_and_versioned() -> None:
    c = Connection(Role.SERVER)
    (f,) = frames_of(raw(c))
    assert f.type is FrameType.HELLO
    h = fr.decode_hello(f.payload)
    assert (h.version, h.role) == (PROTOCOL_VERSION, Role.SERVER)


def test_handshake_version_mismatch_is_protocol_error() -> None:
    c = Connection(Role.SERVER)
    raw(c)
    c.receive_data(hello(Role.AGENT, version=PROTOCOL_VERSION + 1))
    (term,) = c.events()
    assert isinstance(term, ev.ConnectionTerminated)
    assert term.error_kind == "remote" and "version" in term.reason
    assert c.closed
    (goaway,) = frames_of(raw(c))
    assert goaway.type is FrameType.GOAWAY
    assert fr.decode_goaway(goaway.payload)[0] == fr.GoAwayCode.PROTOCOL_ERROR


def test_handshake_same_role_and_frames_before_hello_rejected() -> None:
    c = Connection(Role.SERVER)
    c.receive_data(hello(Role.SERVER))
    assert c.events()[0].error_kind == "remote"  # type: ignore[attr-defined]
    c = Connection(Role.SERVER)
    c.receive_data(fr.encode_frame(0, FrameType.PING, b"12345678"))
    (term,) = c.events()
    assert isinstance(term, ev.ConnectionTerminated) and "HELLO" in term.reason
    with pytest.raises(LocalProtocolError, match="handshake"):
        Connection(Role.AGENT).open_stream("tcp://a:1")


def test_stream_ids_split_by_side() -> None:
    s, a = pair()
    assert [s.open_stream("tcp://x:1") for _ in range(3)] == [2, 4, 6]
    assert [a.open_stream("tcp://x:1") for _ in range(3)] == [1, 3, 5]
    pump(s, a)
    opened = [e for e in a.events() if isinstance(e, ev.StreamOpened)]
    assert [e.stream_id for e in opened] == [2, 4, 6]


def test_open_accept_data_half_close_both_ways() -> None:
    s, a = pair()
    sid = s.open_stream("tcp://kubernetes:443")
    pump(s, a)
    assert a.events() == [ev.StreamOpened(sid, "tcp://kubernetes:443")]
    a.accept(sid)
    pump(s, a)
    assert s.events() == [ev.StreamAccepted(sid)]
    assert s.send_data(sid, b"request") == 7
    s.end_stream(sid)
    pump(s, a)
    got = a.events()
    assert [type(e) for e in got] == [ev.DataReceived, ev.StreamEnded]
    assert bytes(got[0].data) == b"request"  # type: ignore[attr-defined]
    assert a.stream_state(sid) is StreamState.HALF_CLOSED_REMOTE
    assert a.send_data(sid, b"response") == 8
    a.end_stream(sid)
    pump(s, a)
    got = s.events()
    assert [type(e) for e in got] == [ev.DataReceived, ev.StreamEnded]
    assert s.stream_ids == [] and a.stream_ids == []
    with pytest.raises(LocalProtocolError):
        s.send_data(sid, b"late")


def test_refuse_with_reason() -> None:
    s, a = pair()
    sid = s.open_stream("tcp://evil:22")
    pump(s, a)
    a.events()
    a.refuse(sid, "target not allowed")
    pump(s, a)
    assert s.events() == [ev.StreamRefused(sid, "target not allowed")]
    assert s.stream_ids == [] and a.stream_ids == []


def test_reset_either_side() -> None:
    s, a = pair()
    sid = accepted_stream(s, a)
    a.events(), s.events()
    a.reset(sid, "client went away")
    pump(s, a)
    assert s.events() == [ev.StreamReset(sid, "client went away")]
    assert s.stream_ids == [] and a.stream_ids == []
    # frames for the forgotten stream that were in flight are ignored
    s.receive_data(fr.encode_frame(sid, FrameType.WINDOW, fr.u32_payload(5)))
    assert s.events() == [] and not s.closed


def test_flow_control_sender_respects_credit() -> None:
    s, a = pair()
    sid = accepted_stream(s, a)
    credit = s.send_credit(sid)
    assert 1024 <= credit <= 4096
    assert s.send_data(sid, b"x" * 100_000) == credit
    assert s.send_data(sid, b"x") == 0
    pump(s, a)
    assert a.buffered_bytes == credit
    a.consumed(sid, credit)
    pump(s, a)
    assert any(isinstance(e, ev.WindowUpdated) for e in s.events())
    assert s.send_credit(sid) == credit


def test_peer_sending_past_credit_is_protocol_error() -> None:
    s = Connection(Role.SERVER, limits=SMALL)
    raw(s)
    s.receive_data(hello(Role.AGENT))
    s.events()
    sid = s.open_stream("tcp://x:1")
    open_frame = frames_of(raw(s))[0]
    credit, _ = fr.decode_open(open_frame.payload)
    s.receive_data(fr.encode_frame(sid, FrameType.ACCEPT, fr.u32_payload(0)))
    s.receive_data(fr.encode_frame(sid, FrameType.DATA, b"x" * credit))
    assert not s.closed
    s.receive_data(fr.encode_frame(sid, FrameType.DATA, b"x"))
    term = s.events()[-1]
    assert isinstance(term, ev.ConnectionTerminated) and "credit" in term.reason
    assert s.closed


def test_stalled_stream_does_not_block_others_and_buffers_are_bounded() -> None:
    s, a = pair()
    ids = [s.open_stream(f"tcp://x:{i}") for i in range(4)]
    pump(s, a)
    for sid in ids:
        a.accept(sid)
    pump(s, a)
    stalled, *others = ids
    # the stalled stream's reader never consumes; the others consume everything
    for _ in range(20):
        for sid in ids:
            s.send_data(sid, b"y" * 3000)
        pump(s, a)
        for e in a.events():
            if isinstance(e, ev.DataReceived) and e.stream_id != stalled:
                a.consumed(e.stream_id, len(e.data))
        pump(s, a)
        assert a.buffered_bytes <= SMALL.max_session_buffer_bytes
        assert a.committed_bytes <= SMALL.max_session_buffer_bytes
    assert s.send_credit(stalled) == 0
    assert 0 < a.stream_buffered(stalled) <= SMALL.stream_window_bytes
    for sid in others:
        assert s.send_credit(sid) > 0


def test_ping_measures_rtt_with_injected_clock() -> None:
    now = [100.0]
    s = Connection(Role.SERVER, clock=lambda: now[0])
    a = Connection(Role.AGENT)
    pump(s, a)
    s.events()
    s.ping()
    assert s.oldest_unanswered_ping() == 100.0
    s_out = raw(s)
    a.receive_data(s_out)
    now[0] = 100.25
    s.receive_data(raw(a))
    (pong,) = s.events()
    assert pong == ev.PongReceived(0.25)
    assert s.oldest_unanswered_ping() is None


def test_control_frames_go_before_queued_data() -> None:
    s, a = pair(Limits())
    sid = accepted_stream(s, a)
    s.send_data(sid, b"z" * 500_000)
    s.ping(1.0)
    first = frames_of(bytes(s.data_to_send()))
    assert [f.type for f in first] == [FrameType.PING]


def test_sync_drops_streams_the_peer_forgot() -> None:
    s, a = pair()
    sid = accepted_stream(s, a)
    s.events(), a.events()
    # the agent "forgets" the stream without telling the server (a bug, or a lost frame)
    a._forget(a._streams[sid], keep_buffered=False)
    a.sync()
    pump(s, a)
    assert s.events() == [ev.StreamReset(sid, "stream forgotten by peer")]
    assert s.stream_ids == [] and s.stats.streams_synced_away == 1


def test_sync_keeps_streams_opened_after_it_was_sent() -> None:
    s, a = pair()
    a.sync()  # composed before the agent saw the server's OPEN
    sync_bytes = raw(a)
    sid = s.open_stream("tcp://x:1")
    raw(s)
    s.receive_data(sync_bytes)
    assert s.stream_ids == [sid] and s.events() == []


def test_sync_resets_streams_we_forgot() -> None:
    s, a = pair()
    sid = a.open_stream("tcp://x:1")
    pump(s, a)
    s.accept(sid)
    pump(s, a)
    s._forget(s._streams[sid], keep_buffered=False)
    a.sync()
    pump(s, a)
    assert ev.StreamReset(sid, "stream unknown") in a.events()
    assert a.stream_ids == []


def test_invalid_input_in_state_resets_the_stream_only() -> None:
    s, a = pair()
    sid = s.open_stream("tcp://x:1")
    pump(s, a)
    a.events()
    # DATA before ACCEPT is invalid for the opener: the agent resets that stream
    a.receive_data(fr.encode_frame(sid, FrameType.DATA, b"early"))
    (reset,) = a.events()
    assert isinstance(reset, ev.StreamReset) and "DATA" in reset.reason
    assert not a.closed
    pump(s, a)
    assert isinstance(s.events()[0], ev.StreamReset)


def test_frame_for_never_opened_stream_is_protocol_error() -> None:
    s, _ = pair()
    s.receive_data(fr.encode_frame(99, FrameType.DATA, b"x"))
    assert s.closed
    s, _ = pair()
    s.receive_data(fr.encode_frame(2, FrameType.OPEN, fr.open_payload(5, "tcp://a:1")))
    assert s.closed and "wrong side" in s.events()[-1].reason  # type: ignore[attr-defined]


def test_stream_id_reuse_is_protocol_error() -> None:
    s, a = pair()
    sid = a.open_stream("tcp://x:1")
    pump(s, a)
    s.refuse(sid, "no")
    pump(s, a)
    s.receive_data(fr.encode_frame(sid, FrameType.OPEN, fr.open_payload(5, "tcp://a:1")))
    assert s.closed and "reuses" in s.events()[-1].reason  # type: ignore[attr-defined]


def test_too_many_streams_refused_not_fatal() -> None:
    s, a = pair()
    ids = [a.open_stream("tcp://x:1") for _ in range(SMALL.max_streams)]
    with pytest.raises(LocalProtocolError, match="too many"):
        a.open_stream("tcp://x:1")
    pump(s, a)
    assert len([e for e in s.events() if isinstance(e, ev.StreamOpened)]) == len(ids)
    # a peer ignoring our announced limit gets a REFUSE
    s.receive_data(fr.encode_frame(99, FrameType.OPEN, fr.open_payload(5, "tcp://a:1")))
    assert not s.closed
    (refuse,) = frames_of(raw(s))
    assert refuse.type is FrameType.REFUSE and refuse.stream_id == 99


def test_messages_roundtrip_and_unknown_kinds_survive() -> None:
    s, a = pair()
    a.send_message(Health(healthy=True, detail="ok", components={"etcd": True}))
    pump(s, a)
    assert s.events() == [ev.MessageReceived(Health(True, "ok", {"etcd": True}))]
    import msgpack

    s.receive_data(fr.encode_frame(0, FrameType.MESSAGE, msgpack.packb(["future_kind", {"a": 1}])))
    (m,) = s.events()
    assert m == ev.MessageReceived(UnknownMessage("future_kind", {"a": 1}))
    s.receive_data(
        fr.encode_frame(0, FrameType.MESSAGE, msgpack.packb(["health", {"healthy": "yes"}]))
    )
    assert s.closed and "wrong type" in s.events()[-1].reason  # type: ignore[attr-defined]


def test_goaway_clean_close() -> None:
    s, a = pair()
    sid = s.open_stream("tcp://x:1")
    pump(s, a)
    a.events()
    s.close("server shutting down")
    pump(s, a)
    assert a.events() == [ev.ConnectionTerminated("server shutting down", None)]
    assert a.closed and s.closed and sid


# --- the transition table: every (state, input) pair ----------------------------------------

LOCAL = {
    StreamInput.SEND_ACCEPT: lambda c, i: c.accept(i),
    StreamInput.SEND_REFUSE: lambda c, i: c.refuse(i, "r"),
    StreamInput.SEND_DATA: lambda c, i: c.send_data(i, b"d"),
    StreamInput.SEND_END: lambda c, i: c.end_stream(i),
    StreamInput.SEND_RESET: lambda c, i: c.reset(i, "r"),
}
REMOTE = {
    StreamInput.RECV_ACCEPT: (FrameType.ACCEPT, fr.u32_payload(100)),
    StreamInput.RECV_REFUSE: (FrameType.REFUSE, b"r"),
    StreamInput.RECV_DATA: (FrameType.DATA, b"d"),
    StreamInput.RECV_END: (FrameType.END, b""),
    StreamInput.RECV_RESET: (FrameType.RESET, b"r"),
    StreamInput.RECV_WINDOW: (FrameType.WINDOW, fr.u32_payload(10)),
}


def _stream_in_state(state: StreamState) -> tuple[Connection, int]:
    """A server-side connection holding one stream in ``state`` (fed by raw agent frames)."""
    c = Connection(Role.SERVER, limits=SMALL)
    raw(c)
    c.receive_data(hello(Role.AGENT))
    c.events()
    if state in (StreamState.OPEN_RECEIVED,) or state is StreamState.HALF_CLOSED_REMOTE:
        sid = 1
        c.receive_data(fr.encode_frame(1, FrameType.OPEN, fr.open_payload(100, "tcp://a:1")))
        if state is StreamState.HALF_CLOSED_REMOTE:
            c.accept(1)
            c.receive_data(fr.encode_frame(1, FrameType.END))
    else:
        sid = c.open_stream("tcp://a:1")
        if state is not StreamState.OPEN_SENT:
            c.receive_data(fr.encode_frame(sid, FrameType.ACCEPT, fr.u32_payload(100)))
        if state is StreamState.HALF_CLOSED_LOCAL:
            c.end_stream(sid)
    c.events()
    raw(c)
    assert c.stream_state(sid) is state
    return c, sid


LIVE_STATES = [
    StreamState.OPEN_SENT,
    StreamState.OPEN_RECEIVED,
    StreamState.OPEN,
    StreamState.HALF_CLOSED_LOCAL,
    StreamState.HALF_CLOSED_REMOTE,
]


@pytest.mark.parametrize(
    ("state", "inp"),
    list(itertools.product(LIVE_STATES, [*LOCAL, *REMOTE])),
    ids=lambda v: v.value,
)
def test_every_state_input_pair(state: StreamState, inp: StreamInput) -> None:
    c, sid = _stream_in_state(state)
    expected = TRANSITIONS.get((state, inp))
    if inp in LOCAL:
        if expected is None:
            with pytest.raises(LocalProtocolError):
                LOCAL[inp](c, sid)
            assert c.stream_state(sid) is state  # a refused local action changes nothing
        else:
            LOCAL[inp](c, sid)
            assert c.stream_state(sid) is expected
        assert not c.closed
        return
    ftype, payload = REMOTE[inp]
    c.receive_data(fr.encode_frame(sid, ftype, payload))
    evs = c.events()
    if inp is StreamInput.RECV_ACCEPT and not Role.SERVER.owns(sid):
        # the peer accepting a stream it opened itself confuses stream ownership: fatal
        assert c.closed and isinstance(evs[-1], ev.ConnectionTerminated)
        return
    assert not c.closed, evs
    if expected is None:
        assert isinstance(evs[-1], ev.StreamReset) and "protocol error" in evs[-1].reason
        assert c.stream_state(sid) is StreamState.CLOSED
        assert any(f.type is FrameType.RESET for f in frames_of(raw(c)))
    else:
        assert c.stream_state(sid) is expected


def test_idle_streams_keep_small_windows_and_a_busy_one_grows() -> None:
    now = [0.0]
    lim = Limits()
    s = Connection(Role.SERVER, limits=lim, clock=lambda: now[0])
    a = Connection(Role.AGENT, limits=lim, clock=lambda: now[0])
    pump(s, a)
    idle = [a.open_stream("tcp://watch:443") for _ in range(60)]
    busy = a.open_stream("tcp://bulk:443")
    pump(s, a)
    for sid in [*idle, busy]:
        s.accept(sid)
    pump(s, a)
    # every stream got the initial window, none more (idle watches do not hog the budget)
    assert {s.send_credit(sid) for sid in [*idle, busy]} == {lim.initial_stream_window_bytes}
    for _ in range(40):  # the busy stream moves its window every millisecond
        now[0] += 0.001
        s.send_data(busy, b"z" * s.send_credit(busy))
        pump(s, a)
        for e in a.events():
            if isinstance(e, ev.DataReceived):
                a.consumed(e.stream_id, len(e.data))
        pump(s, a)
    assert s.send_credit(busy) == lim.stream_window_bytes
    assert a.committed_bytes <= lim.max_session_buffer_bytes
