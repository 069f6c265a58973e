"""TLS and websocket by the book, against a real server process: TLS 1.3 preferred, TLS 1.2 only
with AEAD suites (a client offering only CBC suites is refused), HSTS on HTTPS answers, and an
unmasked client frame on /v3/connect closes the connection with 1002."""

from __future__ import annotations

import socket
import ssl
import struct
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.procs import ServerProc, free_port, wait_until
from tests.security.hostile import OP_BINARY, connect, hello, ws_frame

pytestmark = pytest.mark.timeout(60)

CBC_ONLY = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256"
READ_TIMEOUT_S = 10.0
OP_CLOSE = 0x8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProc, Any]]:
    d = tmp_path_factory.mktemp("tls")
    srv = ServerProc(d / "data", d / "server.log")
    srv.port = free_port()
    reg = srv.create_cluster("tls")
    srv.start()
    try:
        yield srv, reg
    finally:
        srv.stop()


def handshake(server: ServerProc, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT_S)
    try:
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    except BaseException:
        raw.close()
        raise


def client_context(server: ServerProc) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca_path))


def test_tls13_is_preferred(server: tuple[ServerProc, Any]) -> None:
    with handshake(server[0], client_context(server[0])) as s:
        assert s.version() == "TLSv1.3"


def test_tls12_offers_only_aead_suites(server: tuple[ServerProc, Any]) -> None:
    ctx = client_context(server[0])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with handshake(server[0], ctx) as s:
        cipher = s.cipher()
        assert s.version() == "TLSv1.2" and cipher is not None
        assert "GCM" in cipher[0] or "CHACHA20" in cipher[0]
    cbc = client_context(server[0])
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers(CBC_ONLY)
    with pytest.raises(ssl.SSLError):
        handshake(server[0], cbc).close()


def test_https_answers_carry_hsts(server: tuple[ServerProc, Any]) -> None:
    srv = server[0]
    with urllib.request.urlopen(srv.url + "/ping", context=client_context(srv)) as resp:
        hsts = resp.headers["Strict-Transport-Security"]
    assert hsts and hsts.startswith("max-age=") and int(hsts.split("=")[1]) >= 180 * 86400


def read_close_code(sock: ssl.SSLSocket) -> int:
    """Read server frames until its CLOSE; its status code."""
    buf = b""
    sock.settimeout(READ_TIMEOUT_S)
    while True:
        while len(buf) >= 2:
            length = buf[1] & 0x7F
            hlen = 2 + (2 if length == 126 else 8 if length == 127 else 0)
            if len(buf) < hlen:
                break
            if length == 126:
                length = struct.unpack_from("!H", buf, 2)[0]
            elif length == 127:
                length = struct.unpack_from("!Q", buf, 2)[0]
            if len(buf) < hlen + length:
                break
            if buf[0] & 0x0F == OP_CLOSE:
                return int(struct.unpack_from("!H", buf, hlen)[0])
            buf = buf[hlen + length :]
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection ended without a close frame")
        buf += chunk


def test_unmasked_client_frame_closes_with_1002(server: tuple[ServerProc, Any]) -> None:
    srv, reg = server
    up = connect(srv.port, srv.ca_path, str(reg["registrationToken"]), read=True)
    with up.sock as sock:
        # the session is up (its HELLO came back); now a frame as a server would send it
        sock.sendall(ws_frame(OP_BINARY, hello(), mask=False))
        assert read_close_code(sock) == 1002
    wait_until(
        lambda: "unmasked frame from a client" in Path(srv.log_path).read_text(),
        READ_TIMEOUT_S,
        what="the reason in the server's log",
    )
