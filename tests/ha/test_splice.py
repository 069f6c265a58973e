"""The forwarder's splice (``rancher_server/ha/splice.py``) with stand-in transports: which
requests go on the peer stream and as what, how the holder's answers are followed to their end,
when the connection goes back to aiohttp, and what the client sees when the peer stream is lost.
The same path end to end, through real replicas, is in ``test_forwarding.py``."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp import web

from rancher_server.ha.splice import CLIENT_HIGH_WATER_BYTES, Splice
from rancher_server.proxy.lean import UpstreamConnection

CID = "c-abcde"
PATH = f"/k8s/clusters/{CID}/api/v1/namespaces/default"
HOST = b"Host: r1.example:8443\r\n"


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False
        self.aborted = False
        self.reading = True
        self.protocol: Any = None
        self.buffered = 0

    def write(self, data: bytes) -> None:
        assert not self.closing
        self.written.append(bytes(data))

    def data(self) -> bytes:
        out = b"".join(self.written)
        self.written.clear()
        return out

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_write_buffer_size(self) -> int:
        return self.buffered


class FakeHandler:
    """aiohttp's RequestHandler, as far as the splice touches it."""

    def __init__(self) -> None:
        self._payload_parser: Any = None
        self._data_received_cb: Any = None
        self._waiter: asyncio.Future[None] | None = None
        self._keepalive_handle: asyncio.TimerHandle | None = None
        self.handed: list[bytes] = []

    def set_parser(self, parser: Any) -> None:
        assert self._payload_parser is None
        self._payload_parser = parser

    def data_received(self, data: bytes) -> None:
        self.handed.append(data)

    def close(self) -> None:  # what aiohttp's close() does to a waiter (server shutdown)
        if self._waiter is not None:
            self._waiter.cancel()


class FakeConn:
    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.released = False
        self.closed = False

    def release(self) -> None:
        self.released = True

    def close(self) -> None:
        self.closed = True


class Rig:
    def __init__(self, routes: set[str] | None = None,
                 keepalive: asyncio.TimerHandle | None = None) -> None:
        self.client = FakeTransport()
        self.handler = FakeHandler()
        self.handler._keepalive_handle = keepalive
        self.conn = FakeConn()
        self.peer = self.conn.transport
        self.counted = 0
        self.failed = 0
        routes = {CID} if routes is None else routes
        request = SimpleNamespace(transport=self.client, protocol=self.handler)
        self.splice = Splice(cast(web.Request, request), cast(UpstreamConnection, self.conn),
                             lambda cid: cid in routes, "10.0.0.9", "r2", self._count,
                             self._fail, "r1")
        self.splice.start(b"GET " + PATH.encode() + b" HTTP/1.1\r\n" + HOST + b"\r\n", False)
        assert self.peer.protocol is self.splice
        self.peer.data()

    def _count(self) -> None:
        self.counted += 1

    def _fail(self) -> None:
        self.failed += 1

    def send(self, data: bytes) -> None:
        self.handler._payload_parser.feed_data(data)

    def answer(self, data: bytes) -> None:
        self.splice.data_received(data)


def request(path: str = PATH, method: str = "GET", extra: bytes = b"", body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\n".encode() + HOST + extra
    if body:
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


def answer(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"X-Rancher-Replica: r1\r\n%s\r\n%s" % (len(body), extra, body))


async def test_requests_go_on_the_stream_rewritten_and_answers_come_back_whole() -> None:
    rig = Rig()
    rig.send(request(extra=b"Authorization: Bearer t\r\nX-Rancher-Forwarded-For: 6.6.6.6\r\n"
                           b"Connection: keep-alive\r\nKeep-Alive: 5\r\n"))
    sent = rig.peer.data()
    assert sent.startswith(f"GET {PATH} HTTP/1.1\r\n".encode())
    assert b"Authorization: Bearer t\r\n" in sent and HOST in sent
    assert b"6.6.6.6" not in sent and b"Keep-Alive" not in sent and b"Connection" not in sent
    assert sent.endswith(b"X-Rancher-Forwarded-For: 10.0.0.9\r\nX-Rancher-Forwarded-By: r2\r\n"
                         b"\r\n")
    assert rig.counted == 1
    # both answers (the first request's and this one's), in pieces
    whole = answer(b'{"a": 1}') + answer(b'{"b": 2}')
    for i in range(0, len(whole), 7):
        rig.answer(whole[i:i + 7])
    out = rig.client.data()
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.count(b"Strict-Transport-Security: max-age=") == 2
    assert out.endswith(b'{"b": 2}')
    assert not rig.splice.done.done()


async def test_a_body_goes_with_its_content_length() -> None:
    rig = Rig()
    rig.answer(answer())
    body = json.dumps({"kind": "ConfigMap", "data": {"x": "y" * 3000}}).encode()
    raw = request(method="POST", body=body)
    rig.send(raw[:100])
    rig.send(raw[100:])
    sent = rig.peer.data()
    assert b"Content-Length: %d\r\n" % len(body) in sent and sent.endswith(body)
    rig.send(request())  # the next request after the body
    assert rig.peer.data().startswith(b"GET ")


@pytest.mark.parametrize("raw", [
    request("/v3/settings/cacerts"),  # not a cluster's
    request("/k8s/clusters/c-other/api"),  # another replica's (or this one's) cluster
    request(extra=b"Transfer-Encoding: chunked\r\n"),
    request(extra=b"Connection: Upgrade\r\nUpgrade: websocket\r\n"),
    request(extra=b"Expect: 100-continue\r\n"),
    request(extra=b"Connection: close\r\n"),
    request(extra=b"Content-Length: 1\r\nContent-Length: 2\r\n"),
    request(PATH.replace("default", "%64efault")),
    request(PATH.replace("/api", "/./api")),
    request(extra=b"X-Bad: a\nX-Rancher-Forwarded-For: 6.6.6.6\r\n"),
    request(extra=b" folded\r\n"),
    request().replace(b"HTTP/1.1", b"HTTP/1.0"),
    request().replace(HOST, b""),
])
async def test_what_the_splice_does_not_handle_goes_back_to_aiohttp(raw: bytes) -> None:
    rig = Rig()
    rig.send(raw + request())
    assert rig.peer.data() == b""  # nothing of it went to the holder
    assert not rig.client.reading
    assert not rig.splice.done.done()  # the first answer is still owed
    rig.answer(answer())
    assert rig.splice.done.result() is True
    assert rig.handler.handed == [raw + request()]  # aiohttp parses it from the start
    assert rig.handler._payload_parser is None and rig.client.reading
    assert rig.conn.released and rig.peer.protocol is rig.conn  # the stream is pooled again


async def test_answers_are_followed_through_chunks_head_and_interim_answers() -> None:
    rig = Rig()
    rig.send(request(method="HEAD") + request())
    rig.answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for piece in (b"5\r\nhel", b"lo\r\n", b"6;x=y\r\n world\r", b"\n0\r\n", b"X-T: 1\r\n\r\n"):
        rig.answer(piece)
    rig.answer(answer(b"12345")[:-5])  # the HEAD's: a length, no body
    rig.answer(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"ok"))
    out = rig.client.data()
    assert out.count(b"HTTP/1.1 200 OK") == 3 and b"HTTP/1.1 100 Continue\r\n\r\n" in out
    assert out.endswith(b"ok") and b" world\r\n0\r\nX-T: 1\r\n\r\n" in out
    rig.send(request("/v3/settings/cacerts"))
    assert rig.splice.done.result() is True  # nothing owed: handed back at once


async def test_client_gone_at_an_answer_boundary_pools_the_stream() -> None:
    rig = Rig()
    rig.answer(answer())
    rig.handler._payload_parser.feed_eof()
    assert rig.splice.done.result() is False and rig.conn.released


async def test_client_gone_mid_answer_drops_the_stream() -> None:
    rig = Rig()
    rig.answer(answer(b"x" * 10)[:-3])
    rig.handler._payload_parser.feed_eof()
    assert rig.splice.done.result() is False and rig.conn.closed and not rig.conn.released


async def test_peer_lost_before_the_answer_is_a_503() -> None:
    rig = Rig()
    rig.splice.connection_lost(ConnectionResetError("gone"))
    out = rig.client.data()
    assert out.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Connection: close\r\n" in out
    body = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert body["code"] == 503 and "(r1) is unreachable" in body["message"]
    assert rig.client.closing and rig.failed == 1 and rig.splice.done.result() is False


async def test_peer_lost_mid_answer_closes_the_client_after_what_it_got() -> None:
    rig = Rig()
    rig.answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    rig.splice.connection_lost(None)
    assert rig.client.data().endswith(b"hello\r\n")
    assert rig.client.closing and not rig.client.aborted and rig.failed == 0


async def test_connection_close_from_the_holder_ends_the_client_connection() -> None:
    rig = Rig()
    rig.answer(answer(extra=b"Connection: close\r\n"))
    assert b"Connection: close" in rig.client.data()
    assert rig.client.closing and rig.splice.done.result() is False


async def test_an_answer_nobody_asked_for_aborts() -> None:
    rig = Rig()
    rig.answer(answer() + answer())
    assert rig.client.aborted and rig.conn.closed


async def test_server_shutdown_closes_an_idle_spliced_connection() -> None:
    rig = Rig()
    rig.handler.close()  # aiohttp's pre-shutdown close() of every connection
    await asyncio.sleep(0)
    assert not rig.client.closing  # an answer is still owed
    rig.answer(answer())
    assert rig.client.closing and rig.splice.done.result() is False and rig.conn.released


async def test_a_slow_client_pauses_the_peer_stream() -> None:
    rig = Rig()
    rig.client.buffered = CLIENT_HIGH_WATER_BYTES + 1
    rig.answer(answer())
    assert not rig.peer.reading
    rig.client.buffered = 0
    await asyncio.sleep(0.05)
    assert rig.peer.reading


async def test_aiohttp_keepalive_timer_does_not_close_a_spliced_connection() -> None:
    # armed by an answer aiohttp gave earlier on this connection: firing while the splice's
    # waiter is pending would close the connection mid-answer
    closed: list[bool] = []
    timer = asyncio.get_running_loop().call_later(0.01, lambda: closed.append(True))
    rig = Rig(keepalive=timer)
    assert rig.handler._keepalive_handle is None
    await asyncio.sleep(0.03)
    assert not closed


async def test_requests_after_the_stream_began_closing_are_not_written() -> None:
    rig = Rig()
    rig.peer.closing = True  # the pool closes it (replica stopping); its connection_lost follows
    rig.send(request())
    assert rig.peer.data() == b""
    rig.splice.connection_lost(None)
    assert rig.client.data().startswith(b"HTTP/1.1 503 ") and rig.client.closing
