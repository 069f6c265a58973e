"""Per-peer bounds of the sans-I/O core: a peer that does not read cannot make us queue without
limit (pongs coalesced, control and data queues bounded), nor open streams past our maximum."""

from __future__ import annotations

import pytest

from rancher_tunnel import events as ev
from rancher_tunnel import frames as fr
from rancher_tunnel.constants import (
    FRAME_HEADER_BYTES,
    MIN_FRAME_PAYLOAD_BYTES,
    PING_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    Limits,
)
from rancher_tunnel.frames import FrameType, GoAwayCode, Role
from rancher_tunnel.protocol import Connection

pytestmark = pytest.mark.timeout(30)

TIGHT = Limits(
    max_streams=4,
    max_control_queue_bytes=MIN_FRAME_PAYLOAD_BYTES,
    max_batch_bytes=64 * 1024,
    max_data_queue_bytes=64 * 1024,
)
PINGS_PER_MESSAGE = 1000


def agent_hello() -> bytes:
    return fr.encode_frame(
        0,
        FrameType.HELLO,
        fr.hello_payload(fr.Hello(PROTOCOL_VERSION, Role.AGENT, 65536, 16384, 1024)),
    )


def server(limits: Limits = TIGHT) -> Connection:
    s = Connection(Role.SERVER, limits=limits)
    s.receive_data(agent_hello())
    assert any(isinstance(e, ev.HandshakeCompleted) for e in s.events())
    s.data_to_send()  # our HELLO went out; from now on the peer reads nothing
    return s


def pings(n: int, start: int = 0) -> bytes:
    return b"".join(
        fr.encode_frame(0, FrameType.PING, (start + i).to_bytes(PING_PAYLOAD_BYTES, "big"))
        for i in range(n)
    )


def goaway_code(out: bytes) -> int:
    header = fr.HEADER.unpack_from(out, 0)
    assert header[2] == FrameType.GOAWAY
    code, _reason = fr.decode_goaway(out[FRAME_HEADER_BYTES:])
    return code


def test_pongs_to_a_peer_that_does_not_read_are_coalesced() -> None:
    s = server()
    for round_ in range(50):
        s.receive_data(pings(PINGS_PER_MESSAGE, round_ * PINGS_PER_MESSAGE))
    assert not s.closed
    # one pong is owed, for the newest ping: 50,000 pings cost one frame
    assert s.queued_bytes == FRAME_HEADER_BYTES + PING_PAYLOAD_BYTES
    out = bytes(s.data_to_send())
    assert out == fr.encode_frame(0, FrameType.PONG, (49_999).to_bytes(8, "big"))
    assert not s.has_data_to_send


def test_control_frames_owed_to_a_peer_that_does_not_read_are_bounded() -> None:
    limits = Limits(max_control_queue_bytes=MIN_FRAME_PAYLOAD_BYTES)
    s = server(limits)
    sid = 1
    while not s.closed:
        opens = b"".join(
            fr.encode_frame(sid + 2 * i, FrameType.OPEN, fr.open_payload(0, "tcp://x:1"))
            for i in range(50)
        )
        s.receive_data(opens)
        sid += 100
        for e in s.events():
            if isinstance(e, ev.StreamOpened) and not s.closed:  # the server refuses them
                s.refuse(e.stream_id, "streams not accepted here")
        assert s.queued_bytes < 2 * limits.max_control_queue_bytes
    assert s.limit_exceeded == "control_queue"
    assert goaway_code(bytes(s.data_to_send())) == GoAwayCode.LIMIT_EXCEEDED


def test_a_peer_that_keeps_opening_streams_over_the_maximum_is_cut_off() -> None:
    s = server()
    frames = [
        fr.encode_frame(1 + 2 * i, FrameType.OPEN, fr.open_payload(0, "tcp://x:1"))
        for i in range(3 * TIGHT.max_streams)
    ]
    s.receive_data(b"".join(frames[: TIGHT.max_streams]))  # the maximum: all open
    assert len(s.stream_ids) == TIGHT.max_streams
    # a conforming peer may overshoot while its END trails its next OPEN: refused, not cut off
    s.receive_data(b"".join(frames[TIGHT.max_streams : 2 * TIGHT.max_streams]))
    assert not s.closed
    s.receive_data(frames[2 * TIGHT.max_streams])
    assert s.closed and s.limit_exceeded == "streams"
    kinds = [e.error_kind for e in s.events() if isinstance(e, ev.ConnectionTerminated)]
    assert kinds == ["limit"]


def test_stream_data_queued_to_a_peer_that_does_not_read_is_bounded() -> None:
    s = server()
    sid = s.open_stream("tcp://x:1")
    s.data_to_send()
    credit = fr.encode_frame(sid, FrameType.ACCEPT, fr.u32_payload(0))
    s.receive_data(credit)
    # the peer grants far more credit than a conforming receiver could hold, and reads nothing
    s.receive_data(fr.encode_frame(sid, FrameType.WINDOW, fr.u32_payload(1 << 20)))
    assert s.send_data(sid, b"x" * (1 << 20)) == 1 << 20
    assert not s.closed  # checked when the peer's next input arrives
    s.receive_data(pings(1))
    assert s.closed and s.limit_exceeded == "data_queue"


def test_ping_payloads_cannot_be_guessed() -> None:
    a, b = server(Limits()), server(Limits())
    assert a.ping() != b.ping()
    assert a.ping() != a.ping()
