"""Slow and oversized request heads (issue 11, item 5): an unauthenticated client that drips its
headers is disconnected at the head deadline, on the server and on kube-api-auth; an oversized
header gets a 400 with a JSON body that says what was wrong."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path

from rancher_tunnel.httpguard import HEADER_DEADLINE_S, MAX_HEADER_FIELD_BYTES
from tests.kube_api_auth import proc as kaa
from tests.procs import ServerProc, running

DRIP_INTERVAL_S = 0.5
SLACK_S = 3.0


async def drip_until_closed(
    host: str, port: int, ssl_ctx: ssl.SSLContext | None
) -> float:
    """Seconds from connect until the server closes a connection that drips a request head."""
    reader, writer = await asyncio.open_connection(host, port, ssl=ssl_ctx)
    started = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    try:
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(1), DRIP_INTERVAL_S) == b"":
                    break
            except TimeoutError:
                continue
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()
    return time.monotonic() - started


async def raw_request(host: str, port: int, ssl_ctx: ssl.SSLContext | None, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port, ssl=ssl_ctx)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_server_and_webhook_drop_a_dripped_head(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.start()
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({}))
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    with running(server):
        async with kaa.running(["--tokens-file", str(tokens)]) as webhook:
            host, port = webhook.url.split("://")[1].rsplit(":", 1)
            server_s, webhook_s = await asyncio.gather(
                drip_until_closed("127.0.0.1", server.port, ctx),
                drip_until_closed(host, int(port), None),
            )
            # A legitimate request still works on both meanwhile.
            ok = await raw_request("127.0.0.1", server.port, ctx,
                                   b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert ok.startswith(b"HTTP/1.1 200")
    for took in (server_s, webhook_s):
        assert HEADER_DEADLINE_S - 1 <= took <= HEADER_DEADLINE_S + SLACK_S, took


async def test_oversized_header_is_a_json_400(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.start()
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    with running(server):
        for path in ("/v3/clusters", "/k8s/clusters/c-xxxxx/api"):
            answer = await raw_request(
                "127.0.0.1", server.port, ctx,
                f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
                + b"X-Big: " + b"a" * (MAX_HEADER_FIELD_BYTES + 10) + b"\r\n\r\n",
            )
            status_line, _, rest = answer.partition(b"\r\n")
            assert status_line.split()[1] == b"400"
            # The head could not be parsed, so its path is unknown: one JSON error shape.
            body = json.loads(rest.partition(b"\r\n\r\n")[2])
            assert body["type"] == "error" and body["status"] == 400
            assert "8190" in body["message"] or "header" in body["message"].lower(), body
