"""RFC 6455 5.1: a server fails the connection (1002) on an unmasked client frame, a client on a
masked server frame."""

from __future__ import annotations

import struct

import pytest

from rancher_tunnel.wsreader import OP_BINARY, WebSocketProtocolError, WsReaderProtocol

pytestmark = pytest.mark.timeout(10)


def frame(payload: bytes, key: bytes | None) -> bytes:
    head = bytes((0x80 | OP_BINARY, len(payload) | (0x80 if key else 0)))
    if key is None:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def feed(reader: WsReaderProtocol, data: bytes) -> None:
    buf = reader.get_buffer(len(data))
    buf[: len(data)] = data
    reader.buffer_updated(len(data))


def reader(masked: bool | None) -> tuple[WsReaderProtocol, list[bytes], list[int]]:
    got: list[bytes] = []
    errors: list[int] = []

    def on_error(exc: WebSocketProtocolError) -> None:
        errors.append(exc.close_code)

    r = WsReaderProtocol(
        max_message_bytes=1024,
        on_message=lambda p: got.append(bytes(p)),
        on_ping=lambda _: None,
        on_close=lambda c, r: None,
        on_error=on_error,
        on_lost=lambda _: None,
        masked=masked,
    )
    return r, got, errors


@pytest.mark.parametrize(
    ("masked", "key", "ok"),
    [
        (True, struct.pack("!I", 0x01020304), True),
        (True, None, False),  # server side, unmasked client frame
        (False, None, True),
        (False, struct.pack("!I", 0x01020304), False),  # client side, masked server frame
        (None, None, True),
    ],
)
def test_masking_is_checked_by_side(masked: bool | None, key: bytes | None, ok: bool) -> None:
    r, got, errors = reader(masked)
    feed(r, frame(b"hello", key))
    if ok:
        assert got == [b"hello"] and not errors
    else:
        assert got == [] and errors == [1002] and r.done
