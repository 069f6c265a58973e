"""Property tests: hostile frame sequences and random state-machine inputs never crash the
connection, never push a buffer past its bound, and every violation is a protocol error."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rancher_tunnel import events as ev
from rancher_tunnel import frames as fr
from rancher_tunnel.constants import PROTOCOL_VERSION, Limits
from rancher_tunnel.errors import LocalProtocolError
from rancher_tunnel.frames import FrameType, Role
from rancher_tunnel.protocol import Connection

pytestmark = pytest.mark.timeout(120)

LIMITS = Limits(
    min_stream_window_bytes=64,
    stream_window_bytes=256,
    shared_window_budget_bytes=512,
    max_streams=4,
    max_frame_payload_bytes=16 * 1024,
)
PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_payload(ftype: int) -> st.SearchStrategy[bytes]:
    if ftype == FrameType.OPEN:
        return st.builds(fr.open_payload, st.integers(0, 512), st.sampled_from(["tcp://a:1", "x"]))
    if ftype in (FrameType.ACCEPT, FrameType.WINDOW):
        return st.builds(fr.u32_payload, st.integers(0, 2**32 - 1))
    if ftype in (FrameType.PING, FrameType.PONG):
        return st.binary(min_size=8, max_size=8)
    if ftype == FrameType.SYNC:
        return st.builds(
            fr.sync_payload, st.integers(0, 8), st.lists(st.integers(0, 9), max_size=5)
        )
    if ftype == FrameType.HELLO:
        return st.just(fr.hello_payload(fr.Hello(PROTOCOL_VERSION, Role.AGENT, 64, 16384, 4)))
    return st.binary(max_size=300)


@st.composite
def hostile_frame(draw: st.DrawFn) -> bytes:
    ftype = draw(st.sampled_from([*list(FrameType), 0, 14, 255]))
    sid = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 7, 99, 2**32 - 1]))
    payload = draw(st.one_of(_valid_payload(int(ftype)), st.binary(max_size=40)))
    flags = draw(st.sampled_from([0, 0, 0, 1]))
    length = draw(st.sampled_from([len(payload)] * 8 + [len(payload) + 1, 2**32 - 1]))
    return struct.pack("!IIBB", length, sid, int(ftype), flags) + payload


def agent_hello() -> bytes:
    return fr.encode_frame(
        0, FrameType.HELLO, fr.hello_payload(fr.Hello(PROTOCOL_VERSION, Role.AGENT, 64, 16384, 4))
    )


@PROFILE
@given(
    frames=st.lists(hostile_frame(), max_size=30),
    cuts=st.lists(st.integers(1, 64), max_size=30),
    with_hello=st.booleans(),
    consume=st.booleans(),
)
def test_hostile_frames_never_crash(
    frames: list[bytes], cuts: list[int], with_hello: bool, consume: bool
) -> None:
    c = Connection(Role.SERVER, limits=LIMITS)
    c.data_to_send()
    all_events: list[ev.Event] = []
    if with_hello:
        c.receive_data(agent_hello())
        all_events += c.events()
        for _ in range(2):
            c.open_stream("tcp://t:1")
    wire = b"".join(frames)
    pos = 0
    chunks = []
    for n in cuts:
        chunks.append(wire[pos : pos + n])
        pos += n
    chunks.append(wire[pos:])
    for chunk in chunks:
        c.receive_data(chunk)  # must never raise
        got = c.events()
        all_events += got
        if consume:
            for e in got:
                if isinstance(e, ev.DataReceived):
                    c.consumed(e.stream_id, len(e.data))
        assert c.buffered_bytes <= LIMITS.max_session_buffer_bytes
        assert c.committed_bytes <= LIMITS.max_session_buffer_bytes
        while c.data_to_send():
            pass
    terminated = [e for e in all_events if isinstance(e, ev.ConnectionTerminated)]
    assert len(terminated) <= 1
    if c.closed:
        assert terminated and terminated[0] is all_events[-1]


# --- two well-behaved peers under random application inputs ----------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["open", "accept", "refuse", "send", "end", "reset", "consume", "pump", "ping", "sync"]
        ),
        st.booleans(),  # which side acts (True: server)
        st.integers(0, 7),  # stream index
        st.integers(0, 700),  # size
    ),
    max_size=60,
)


@PROFILE
@given(ops=OPS)
def test_random_inputs_keep_invariants(ops: list[tuple[str, bool, int, int]]) -> None:
    s, a = Connection(Role.SERVER, limits=LIMITS), Connection(Role.AGENT, limits=LIMITS)
    sent: dict[tuple[bool, int], bytearray] = {}  # (sender is server, stream) -> bytes sent
    got: dict[tuple[bool, int], bytearray] = {}
    unconsumed: dict[tuple[bool, int], int] = {}  # (receiver is server, stream) -> bytes
    counter = [0]

    def deliver(src: Connection, dst: Connection, dst_is_server: bool) -> None:
        while data := src.data_to_send():
            dst.receive_data(bytes(data))
        for e in dst.events():
            assert not isinstance(e, ev.ConnectionTerminated), e
            if isinstance(e, ev.DataReceived):
                got.setdefault((not dst_is_server, e.stream_id), bytearray()).extend(e.data)
                key = (dst_is_server, e.stream_id)
                unconsumed[key] = unconsumed.get(key, 0) + len(e.data)

    def pump() -> None:
        for _ in range(3):
            deliver(s, a, False)
            deliver(a, s, True)

    pump()
    for op, server_side, idx, size in ops:
        me = s if server_side else a
        ids = sorted(set(s.stream_ids) | set(a.stream_ids))
        sid = ids[idx % len(ids)] if ids else 1
        try:
            if op == "open":
                me.open_stream("tcp://t:1")
            elif op == "accept":
                me.accept(sid)
            elif op == "refuse":
                me.refuse(sid, "no")
            elif op == "send":
                counter[0] += 1
                payload = bytes([counter[0] % 256]) * size
                n = me.send_data(sid, payload)
                assert 0 <= n <= size
                sent.setdefault((server_side, sid), bytearray()).extend(payload[:n])
            elif op == "end":
                me.end_stream(sid)
            elif op == "reset":
                me.reset(sid, "r")
            elif op == "consume":
                key = (server_side, sid)
                n = min(size, unconsumed.get(key, 0))
                me.consumed(sid, n)
                unconsumed[key] = unconsumed.get(key, 0) - n
            elif op == "ping":
                me.ping()
            elif op == "sync":
                me.sync()
            else:
                pump()
        except LocalProtocolError:
            pass
        for c in (s, a):
            assert c.buffered_bytes <= LIMITS.max_session_buffer_bytes
            assert c.committed_bytes <= LIMITS.max_session_buffer_bytes
            for i in c.stream_ids:
                assert c.stream_buffered(i) <= LIMITS.stream_window_bytes
    pump()
    assert not s.closed and not a.closed
    # every byte received is a prefix of what was sent on that stream, in order
    for key, data in got.items():
        assert bytes(sent.get(key, b"")).startswith(bytes(data)), key
