"""Hostile agents: raw websocket clients of ``/v3/connect`` over real TLS that authenticate like an
agent and then misbehave (flood pings, forge pongs, open streams they never read the answer of)
without ever reading what the server sends. Used by tests/security and bench/hostile_agents_bench.

Each runs in a thread with blocking sockets; its receive buffer is shrunk before connecting so the
server's writes back up at once."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp._websocket.helpers import websocket_mask  # aiohttp's C masking (>= 3.11)

from rancher_tunnel import frames as fr
from rancher_tunnel import messages
from rancher_tunnel.constants import PING_PAYLOAD_BYTES, PROTOCOL_VERSION
from rancher_tunnel.frames import FrameType, Role
from rancher_tunnel.messages import NodeInfo, PictureBegin

RECV_BUFFER_BYTES = 4096  # the hostile agent's socket receive buffer (it never reads)
HANDSHAKE_TIMEOUT_S = 10.0
MESSAGE_BYTES = 60 * 1024  # one flood websocket message
RECONNECT_PAUSE_S = 0.2
OP_BINARY, OP_PING = 0x2, 0x9
CREDENTIAL_HEADER = "X-API-Tunnel-Agent-Credential"  # issued at first registration
MODES = ("ping", "pong", "open", "report")
REPORT_GENERATION = 1


def ws_frame(opcode: int, payload: bytes, *, mask: bool = True) -> bytes:
    """One websocket frame, masked with a fixed key (or not, to break RFC 6455 on purpose)."""
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes((0x80 | opcode, n | bit))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126 | bit)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127 | bit)) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytearray(payload)
    websocket_mask(key, masked)
    return head + key + bytes(masked)


def hello() -> bytes:
    return fr.encode_frame(
        0,
        FrameType.HELLO,
        fr.hello_payload(fr.Hello(PROTOCOL_VERSION, Role.AGENT, 256 * 1024, 16 * 1024, 1024)),
    )


@dataclass
class Upgraded:
    sock: ssl.SSLSocket
    credential: str  # the agent credential the server issued ("" if none)


def connect(
    port: int,
    ca: Path,
    token: str,
    path: str = "/v3/connect/register",
    *,
    credential: str = "",
    read: bool = False,
) -> Upgraded:
    """An upgraded /v3/connect websocket that has sent the tunnel HELLO."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if not read:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER_BYTES)
    raw.settimeout(HANDSHAKE_TIMEOUT_S)
    raw.connect(("127.0.0.1", port))
    ctx = ssl.create_default_context(cafile=str(ca))
    sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    params = base64.b64encode(json.dumps({"role": "cluster", "cluster": {}}).encode()).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\n"
            "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"X-API-Tunnel-Token: {token}\r\nX-API-Tunnel-Params: {params}\r\n"
            + (f"{CREDENTIAL_HEADER}: {credential}\r\n" if credential else "")
            + "\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("server closed during the upgrade")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"upgrade refused: {head.splitlines()[0]!r}")
    sock.sendall(ws_frame(OP_BINARY, hello()))
    # the server's HELLO: its session (and its own websocket reader) is running from now on
    if not sock.recv(RECV_BUFFER_BYTES):
        raise ConnectionError("server closed after the upgrade")
    issued = ""
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == CREDENTIAL_HEADER.lower():
            issued = value.strip()
    return Upgraded(sock, issued or credential)


def flood_message(mode: str, round_: int) -> bytes:
    """One websocket message full of frames that each make the server owe us an answer."""
    if mode == "ping":
        frame = fr.encode_frame(0, FrameType.PING, bytes(PING_PAYLOAD_BYTES))
        tunnel = frame * (MESSAGE_BYTES // len(frame))
        # websocket-level pings too (answered by the websocket layer, not the tunnel)
        return ws_frame(OP_BINARY, tunnel) + ws_frame(OP_PING, b"p" * 16) * 64
    if mode == "pong":  # pongs for pings never read: guessed payloads
        frame_len = fr.FRAME_HEADER_BYTES + PING_PAYLOAD_BYTES
        n = MESSAGE_BYTES // frame_len
        base = round_ * n
        tunnel = b"".join(
            fr.encode_frame(0, FrameType.PONG, (base + i).to_bytes(PING_PAYLOAD_BYTES, "big"))
            for i in range(n)
        )
        return ws_frame(OP_BINARY, tunnel)
    if mode == "open":  # streams the server refuses; the refusals queue up unread
        n = MESSAGE_BYTES // 40
        first = 1 + 2 * round_ * n
        tunnel = b"".join(
            fr.encode_frame(first + 2 * i, FrameType.OPEN, fr.open_payload(0, "tcp://x:1"))
            for i in range(n)
        )
        return ws_frame(OP_BINARY, tunnel)
    if mode == "report":  # node info of ever new nodes, each as large as a message may be
        labels = {f"l{i}": "v" * 200 for i in range(250)}
        msg = messages.encode(
            NodeInfo(name=f"node-{round_}", labels=labels, generation=REPORT_GENERATION)
        )
        frames = fr.encode_frame(0, FrameType.MESSAGE, msg)
        if round_ == 0:  # a picture generation starts: its snapshot is what the server keeps
            begin = messages.encode(PictureBegin(generation=REPORT_GENERATION))
            frames = fr.encode_frame(0, FrameType.MESSAGE, begin) + frames
        return ws_frame(OP_BINARY, frames)
    raise ValueError(f"unknown mode {mode!r}")


@dataclass
class HostileAgent:
    """Floods the server in ``mode`` until stopped, reconnecting whenever it is cut off."""

    port: int
    ca: Path
    token: str
    mode: str
    sent_bytes: int = 0
    connections: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sock: ssl.SSLSocket | None = None

    def start(self) -> HostileAgent:
        self._thread = threading.Thread(target=self._run, name=f"hostile-{self.mode}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(HANDSHAKE_TIMEOUT_S * 2)

    def _run(self) -> None:
        credential = ""
        while not self._stop.is_set():
            try:
                up = connect(self.port, self.ca, self.token, credential=credential)
            except (OSError, ConnectionError) as e:
                self.errors.append(str(e))
                time.sleep(RECONNECT_PAUSE_S)
                continue
            credential, sock = up.credential, up.sock
            self._sock = sock
            self.connections += 1
            sock.settimeout(None)  # stop() shuts the socket down to end a blocked send
            round_ = 0
            try:
                while not self._stop.is_set():
                    msg = flood_message(self.mode, round_ % 1000)
                    sock.sendall(msg)
                    self.sent_bytes += len(msg)
                    round_ += 1
            except OSError as e:
                self.errors.append(str(e) or type(e).__name__)
            finally:
                with contextlib.suppress(OSError):
                    sock.close()
