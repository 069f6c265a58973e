"""Frames byte for byte, fed whole and one byte at a time; every malformed field rejected."""

from __future__ import annotations

import pytest

from rancher_tunnel import frames as fr
from rancher_tunnel.constants import MAX_FRAME_PAYLOAD_BYTES, MAX_REASON_BYTES, MAX_TARGET_BYTES
from rancher_tunnel.errors import LocalProtocolError, RemoteProtocolError
from rancher_tunnel.frames import Frame, FrameParser, FrameType, Role

pytestmark = pytest.mark.timeout(30)

# (frame, exact wire bytes)
VECTORS = [
    (
        Frame(
            0, FrameType.HELLO, 0, fr.hello_payload(fr.Hello(1, Role.AGENT, 65536, 131072, 1024))
        ),
        bytes.fromhex("00000010000000000100") + bytes.fromhex("00010100000100000002000000000400"),
    ),
    (
        Frame(3, FrameType.OPEN, 0, fr.open_payload(4096, "tcp://a:1")),
        bytes.fromhex("0000000d00000003020000001000") + b"tcp://a:1",
    ),
    (
        Frame(3, FrameType.ACCEPT, 0, fr.u32_payload(7)),
        bytes.fromhex("0000000400000003030000000007"),
    ),
    (
        Frame(2, FrameType.REFUSE, 0, fr.reason_payload("no")),
        bytes.fromhex("00000002000000020400") + b"no",
    ),
    (Frame(5, FrameType.DATA, 0, b"ab"), bytes.fromhex("00000002000000050500") + b"ab"),
    (Frame(5, FrameType.END, 0, b""), bytes.fromhex("00000000000000050600")),
    (Frame(5, FrameType.RESET, 0, b"x"), bytes.fromhex("00000001000000050700") + b"x"),
    (
        Frame(5, FrameType.WINDOW, 0, fr.u32_payload(65536)),
        bytes.fromhex("0000000400000005080000010000"),
    ),
    (Frame(0, FrameType.PING, 0, b"12345678"), bytes.fromhex("00000008000000000900") + b"12345678"),
    (Frame(0, FrameType.PONG, 0, b"12345678"), bytes.fromhex("00000008000000000a00") + b"12345678"),
    (
        Frame(0, FrameType.SYNC, 0, fr.sync_payload(4, [1, 3])),
        bytes.fromhex("0000000c000000000b00000000040000000100000003"),
    ),
    (
        Frame(0, FrameType.GOAWAY, 0, fr.goaway_payload(fr.GoAwayCode.NORMAL, "bye")),
        bytes.fromhex("00000004000000000d0000") + b"bye",
    ),
]


@pytest.mark.parametrize(("frame", "wire"), VECTORS, ids=[v[0].type.name for v in VECTORS])
def test_encode_byte_for_byte(frame: Frame, wire: bytes) -> None:
    assert fr.encode_frame(frame.stream_id, frame.type, bytes(frame.payload)) == wire


@pytest.mark.parametrize(("frame", "wire"), VECTORS, ids=[v[0].type.name for v in VECTORS])
def test_parse_whole_and_byte_at_a_time(frame: Frame, wire: bytes) -> None:
    whole = FrameParser().feed(wire)
    assert [(f.stream_id, f.type, f.flags, bytes(f.payload)) for f in whole] == [
        (frame.stream_id, frame.type, 0, bytes(frame.payload))
    ]
    parser = FrameParser()
    got: list[Frame] = []
    for i in range(len(wire)):
        got += parser.feed(wire[i : i + 1])
    assert [(f.stream_id, f.type, bytes(f.payload)) for f in got] == [
        (frame.stream_id, frame.type, bytes(frame.payload))
    ]
    assert parser.buffered_bytes == 0


def test_batched_frames_in_any_split() -> None:
    wire = b"".join(w for _, w in VECTORS)
    expected = [(f.stream_id, f.type, bytes(f.payload)) for f, _ in VECTORS]
    for split in range(len(wire) + 1):
        parser = FrameParser()
        got = parser.feed(wire[:split]) + parser.feed(wire[split:])
        assert [(f.stream_id, f.type, bytes(f.payload)) for f in got] == expected, split


def test_data_payload_is_zero_copy_view_when_whole() -> None:
    wire = fr.encode_frame(1, FrameType.DATA, b"x" * 1000)
    (frame,) = FrameParser().feed(wire)
    assert isinstance(frame.payload, memoryview)
    assert frame.payload.obj is wire


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (bytes.fromhex("00000000000000016300"), "unknown frame type"),
        (bytes.fromhex("00000000000000010601"), "unknown frame flags"),
        (
            (MAX_FRAME_PAYLOAD_BYTES + 1).to_bytes(4, "big") + bytes.fromhex("000000010500"),
            "too large",
        ),
        (bytes.fromhex("00000000000000000500"), "wrong stream id"),  # DATA on stream 0
        (
            bytes.fromhex("00000008000000010900") + b"12345678",
            "wrong stream id",
        ),  # PING on a stream
        (bytes.fromhex("00000001000000010600") + b"x", "END payload too large"),
        (bytes.fromhex("00000009000000000900") + b"123456789", "PING payload too large"),
    ],
)
def test_malformed_header_is_remote_error(wire: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason):
        FrameParser().feed(wire)
    # the same error arrives when fed one byte at a time (before the payload arrives)
    parser = FrameParser()
    with pytest.raises(RemoteProtocolError, match=reason):
        for i in range(len(wire)):
            parser.feed(wire[i : i + 1])


def test_payload_decoders_validate() -> None:
    with pytest.raises(RemoteProtocolError):
        fr.decode_hello(b"\x00" * 3)
    with pytest.raises(RemoteProtocolError, match="role"):
        fr.decode_hello(fr._HELLO.pack(1, 7, 0, 1, 1, 1))
    with pytest.raises(RemoteProtocolError, match="window"):
        fr.decode_hello(fr._HELLO.pack(1, 0, 0, 0, 1, 1))
    with pytest.raises(RemoteProtocolError, match="without target"):
        fr.decode_open(b"\x00\x00\x00\x01")
    with pytest.raises(RemoteProtocolError, match="utf-8"):
        fr.decode_open(b"\x00\x00\x00\x01\xff\xfe")
    with pytest.raises(RemoteProtocolError, match="printable"):
        fr.decode_open(b"\x00\x00\x00\x01a\nb")
    with pytest.raises(RemoteProtocolError, match="size"):
        fr.decode_u32(b"\x00\x01", "WINDOW")
    with pytest.raises(RemoteProtocolError, match="SYNC"):
        fr.decode_sync(b"\x00\x00\x00\x01\x00")
    with pytest.raises(RemoteProtocolError, match="GOAWAY"):
        fr.decode_goaway(b"")
    assert fr.decode_sync(fr.sync_payload(2, [1, 5])) == (2, [1, 5])
    assert fr.decode_open(fr.open_payload(9, "tcp://[::1]:443")) == (9, "tcp://[::1]:443")


def test_local_limits() -> None:
    with pytest.raises(LocalProtocolError):
        fr.open_payload(0, "x" * (MAX_TARGET_BYTES + 1))
    with pytest.raises(LocalProtocolError):
        fr.open_payload(0, "")
    with pytest.raises(LocalProtocolError):
        fr.encode_frame(1, FrameType.DATA, b"x" * (MAX_FRAME_PAYLOAD_BYTES + 1))
    # long local reasons are cut, never an error, and stay valid utf-8
    cut = fr.reason_payload("é" * MAX_REASON_BYTES)
    assert len(cut) <= MAX_REASON_BYTES
    cut.decode("utf-8")


def test_role_parity() -> None:
    assert Role.SERVER.owns(2) and not Role.SERVER.owns(3)
    assert Role.AGENT.owns(3) and not Role.AGENT.owns(2)
    assert not Role.SERVER.owns(0) and not Role.AGENT.owns(0)
    assert Role.SERVER.peer is Role.AGENT
