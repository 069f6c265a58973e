"""The proxy's lean HTTP/1.1 client: response framing and the request head it sends."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from rancher_server.auth import Principal
from rancher_server.proxy.headers import (
    HeaderValueError,
    identity_lines,
    request_head,
)
from rancher_server.proxy.lean import LeanPool, UpstreamConnection, UpstreamError

ALICE = Principal(
    user_id="u-alice",
    username="alice",
    display_name="Alice",
    groups=("devs",),
    token_id="token-abcde",
    is_admin=False,
)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False
        self.reading = True

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading


def _conn() -> UpstreamConnection:
    ctx = ssl.create_default_context()
    pool = LeanPool(
        lambda: None,  # type: ignore[arg-type,return-value]
        "kube",
        443,
        ctx,
        connect_timeout_s=1,
        keepalive_s=30,
    )
    conn = UpstreamConnection(pool, ctx, "kube")
    conn.transport = FakeTransport()
    return conn


async def _exchange(
    pieces: list[bytes], head_request: bool = False
) -> tuple[UpstreamConnection, int, list[bytes]]:
    conn = _conn()
    waiter = conn._expect(head_request)
    for piece in pieces:
        conn._feed(piece)
    response = await waiter
    chunks = []
    while chunk := await conn.read():
        chunks.append(chunk)
    return conn, response.status, chunks


async def test_content_length_body_in_pieces() -> None:
    conn, status, chunks = await _exchange(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n", b"\r\nhe", b"llo"]
    )
    assert status == 200
    assert b"".join(chunks) == b"hello"
    assert conn.complete


async def test_chunked_body_split_anywhere() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
    )
    for cut in range(1, len(raw)):
        conn, _, chunks = await _exchange([raw[:cut], raw[cut:]])
        assert b"".join(chunks) == b"hello world", cut
        assert conn.complete


async def test_interim_answer_is_skipped_and_head_has_no_body() -> None:
    conn, status, chunks = await _exchange(
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"],
        head_request=True,
    )
    assert (status, chunks) == (200, [])
    assert conn.complete


async def test_body_until_close_is_not_reusable() -> None:
    conn = _conn()
    waiter = conn._expect(False)
    conn._feed(b"HTTP/1.1 200 OK\r\n\r\nsome")
    await waiter
    conn._feed(b" bytes")
    conn.connection_lost(None)
    assert await conn.read_all() == b"some bytes"
    assert not conn._reusable


async def test_connection_lost_mid_body_is_an_error() -> None:
    conn = _conn()
    waiter = conn._expect(False)
    conn._feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    await waiter
    conn.connection_lost(None)
    assert await conn.read() == b"abc"
    with pytest.raises(UpstreamError):
        await conn.read()


async def test_lost_before_answer_is_retryable() -> None:
    conn = _conn()
    waiter = conn._expect(False)
    conn.connection_lost(ConnectionResetError())
    with pytest.raises(ConnectionResetError):
        await waiter
    assert conn.failed_before_answer


async def test_large_body_pauses_the_stream_until_read() -> None:
    conn = _conn()
    waiter = conn._expect(False)
    size = 3 * 1024 * 1024
    conn._feed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    await waiter
    for _ in range(size // 65536):
        conn._feed(b"x" * 65536)
    assert conn.transport is not None and not conn.transport.is_reading()
    assert len(await conn.read_all()) == size
    assert conn.transport.is_reading()


async def test_garbage_answer_fails_the_request() -> None:
    conn = _conn()
    waiter = conn._expect(False)
    with pytest.raises(UpstreamError):
        conn._feed(b"SSH-2.0-OpenSSH\r\n\r\n")
    waiter.cancel()


def test_request_head_strips_client_identity_and_hop_by_hop() -> None:
    raw = [
        (b"Accept", b"application/json"),
        (b"Authorization", b"Bearer token-abcde:secret"),
        (b"Impersonate-User", b"admin"),
        (b"impersonate-group", b"system:masters"),
        (b"Impersonate-Extra-scopes", b"all"),
        (b"Connection", b"keep-alive, X-Private"),
        (b"X-Private", b"drop me"),
        (b"Host", b"rancher.example"),
        (b"Content-Length", b"3"),
        (b"User-Agent", b"kubectl/v1.32"),
    ]
    identity = identity_lines(ALICE, "sa-token")
    head = request_head("GET", "/api/v1/pods?limit=1", "10.0.0.1:6443", raw, identity)
    text = head.decode()
    assert text.startswith("GET /api/v1/pods?limit=1 HTTP/1.1\r\nHost: 10.0.0.1:6443\r\n")
    assert text.endswith("\r\n\r\n")
    lines = text.split("\r\n")
    assert "Accept: application/json" in lines
    assert "User-Agent: kubectl/v1.32" in lines
    assert "Authorization: Bearer sa-token" in lines
    assert "Impersonate-User: u-alice" in lines
    assert "Impersonate-Group: devs" in lines
    assert "Impersonate-Group: system:authenticated" in lines
    assert "Impersonate-Extra-username: alice" in lines
    assert "Impersonate-Extra-principalid: local://u-alice" in lines
    assert "Impersonate-Extra-requesttokenid: token-abcde" in lines
    lowered = text.lower()
    for gone in ("admin", "system:masters", "scopes", "secret", "x-private", "connection:"):
        assert gone not in lowered, gone
    assert "rancher.example" not in text
    assert "content-length" not in lowered


def test_identity_refuses_line_breaks() -> None:
    evil = Principal("u-x", "x\r\nImpersonate-Group: system:masters", "x", (), "token-x", False)
    with pytest.raises(HeaderValueError):
        identity_lines(evil, "t")


async def test_response_headers_drop_hop_by_hop_and_named_tokens() -> None:
    conn = _conn()
    waiter = conn._expect(False)
    conn._feed(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close, X-Hop\r\n"
        b"X-Hop: 1\r\nTransfer-Encoding: chunked\r\nAudit-Id:  abc \r\n\r\n0\r\n\r\n"
    )
    response = await waiter
    assert response.headers == [("Content-Type", "application/json"), ("Audit-Id", "abc")]
    assert await conn.read() == b""
    assert not conn._reusable


async def test_header_line_without_colon_is_refused() -> None:
    conn = _conn()
    waiter = conn._expect(False)
    with pytest.raises(UpstreamError):
        conn._feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nbogus line\r\n\r\n")
    waiter.cancel()
