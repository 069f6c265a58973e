"""The I/O-free protocol cores: the remotecommand channel framing and the SPDY/3.1 codec,
fed whole and one byte at a time."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesim.sim import channels, spdy

pytestmark = pytest.mark.timeout(30)


def test_channel_frames() -> None:
    assert channels.encode(channels.STDOUT, b"hi") == b"\x01hi"
    assert channels.decode(b"\x00abc", channels.V5) == channels.Data(0, b"abc")
    assert channels.decode(b"\xff\x00", channels.V5) == channels.Close(0)
    assert channels.decode(b"\xff\x00", channels.V4) == channels.Data(
        255, b"\x00"
    )  # no close in v4
    assert channels.decode(b"", channels.V5) is None
    with pytest.raises(channels.ProtocolError):
        channels.decode(b"\xff\x00\x01", channels.V5)
    assert channels.parse_resize(b'{"Width":80,"Height":24}') == (80, 24)
    with pytest.raises(channels.ProtocolError):
        channels.parse_resize(b"{}")
    with pytest.raises(ValueError, match="channel out of range"):
        channels.encode(256, b"")


def test_status_bodies() -> None:
    assert channels.success(channels.V5) == b'{"metadata":{},"status":"Success"}'
    assert channels.success(channels.V2) is None
    body = json.loads(channels.exit_code(channels.V4, ["false"], 1))
    assert body["reason"] == "NonZeroExitCode"
    assert body["details"] == {"causes": [{"reason": "ExitCode", "message": "1"}]}
    assert b"exit code 7" in channels.exit_code(channels.V1, ["x"], 7)
    err = json.loads(channels.internal_error(channels.V5, "boom"))
    assert err["code"] == 500 and err["message"] == "Internal error occurred: boom"


def test_spdy_dictionary_is_the_spec_one() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert b"\x00\x00\x00\x06200 OK\x00\x00\x00\x07version" in spdy.DICTIONARY
    assert spdy.DICTIONARY.endswith(b",utf-,*,enq=0.")


def _client_frames(client: spdy.SpdyCodec) -> bytes:
    h = {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}
    return (
        client.encode_syn_stream(1, h)
        + client.encode_syn_stream(3, {**h, "streamtype": ["data"]})
        + spdy.SpdyCodec.encode_data(3, b"payload", fin=True)
        + client.encode_ping(7)
        + client.encode_rst_stream(3, spdy.RST_CANCEL)
        + client.encode_goaway(3)
    )


def _expected() -> list[spdy.Frame]:
    h = {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}
    return [
        spdy.ControlFrame(spdy.SYN_STREAM, 0, 1, h),
        spdy.ControlFrame(spdy.SYN_STREAM, 0, 3, {**h, "streamtype": ["data"]}),
        spdy.DataFrame(3, spdy.FLAG_FIN, b"payload"),
        spdy.ControlFrame(spdy.PING, 0, value=7),
        spdy.ControlFrame(spdy.RST_STREAM, 0, 3, status=spdy.RST_CANCEL),
        spdy.ControlFrame(spdy.GOAWAY, 0, value=3, status=0),
    ]


def test_spdy_round_trip_whole_and_byte_by_byte() -> None:
    wire = _client_frames(spdy.SpdyCodec())
    assert spdy.SpdyCodec().feed(wire) == _expected()
    server = spdy.SpdyCodec()
    frames: list[spdy.Frame] = []
    for i in range(len(wire)):
        frames += server.feed(wire[i : i + 1])
    assert frames == _expected()


def test_spdy_header_compression_is_one_stream_per_direction() -> None:
    client, server = spdy.SpdyCodec(), spdy.SpdyCodec()
    first = client.encode_syn_reply(1, {"a": ["1"]})
    second = client.encode_syn_reply(3, {"a": ["1"]})
    assert len(second) < len(first)  # the second block refers back into the shared window
    assert [f.headers for f in server.feed(first + second) if isinstance(f, spdy.ControlFrame)] == [
        {"a": ["1"]},
        {"a": ["1"]},
    ]
    # a fresh decoder cannot read the second block alone
    with pytest.raises(spdy.SpdyError):
        spdy.SpdyCodec().feed(second)


def test_spdy_rejects_bad_frames() -> None:
    bad_version = struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\x00\x00\x00\x01"
    with pytest.raises(spdy.SpdyError, match="version"):
        spdy.SpdyCodec().feed(bad_version)
    short = struct.pack(">HHI", 0x8003, spdy.RST_STREAM, 2) + b"\x00\x01"
    with pytest.raises(spdy.SpdyError, match="too short"):
        spdy.SpdyCodec().feed(short)
    garbage = struct.pack(">HHI", 0x8003, spdy.SYN_REPLY, 8) + b"\x00\x00\x00\x01" + b"junk"
    with pytest.raises(spdy.SpdyError):
        spdy.SpdyCodec().feed(garbage)
    unknown = struct.pack(">HHI", 0x8003, 99, 0)
    assert spdy.SpdyCodec().feed(unknown) == []
    # a header block with a truncated pair
    comp = zlib.compressobj(zdict=spdy.DICTIONARY)
    block = comp.compress(b"\x00\x00\x00\x01\x00\x00\x00\x09ab") + comp.flush(zlib.Z_SYNC_FLUSH)
    frame = (
        struct.pack(">HHI", 0x8003, spdy.SYN_REPLY, 4 + len(block)) + b"\x00\x00\x00\x01" + block
    )
    with pytest.raises(spdy.SpdyError, match="truncated"):
        spdy.SpdyCodec().feed(frame)


@given(st.binary(max_size=200_000), st.booleans())
def test_spdy_data_frames_split_and_rejoin(data: bytes, fin: bool) -> None:
    frames = spdy.SpdyCodec().feed(spdy.SpdyCodec.encode_data(5, data, fin))
    assert all(isinstance(f, spdy.DataFrame) and f.stream_id == 5 for f in frames)
    assert b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame)) == data
    assert [f.fin for f in frames] == [False] * (len(frames) - 1) + [fin]
