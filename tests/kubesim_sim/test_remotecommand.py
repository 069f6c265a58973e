"""exec and attach over the websocket channel protocol, with a websocket client speaking
``v5.channel.k8s.io`` / ``v4.channel.k8s.io`` byte for byte."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
from typing import Any

import aiohttp
import pytest

from kubesim.sim import channels

from .conftest import SimServer, running_pod, wait_for

pytestmark = pytest.mark.timeout(30)
RECV_TIMEOUT_S = 5.0


async def collect(
    ws: aiohttp.ClientWebSocketResponse,
) -> tuple[dict[int, bytes], dict[str, Any] | None]:
    """Every channel's bytes until the server closes; the status JSON from channel 3."""
    out: dict[int, bytes] = {}
    while True:
        msg = await asyncio.wait_for(ws.receive(), RECV_TIMEOUT_S)
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
        ):
            break
        assert msg.type == aiohttp.WSMsgType.BINARY
        out[msg.data[0]] = out.get(msg.data[0], b"") + msg.data[1:]
    status = json.loads(out[3]) if out.get(3) else None
    return out, status


def exec_url(srv: SimServer, pod: str, *command: str, **flags: str) -> str:
    q = urllib.parse.urlencode([("command", c) for c in command] + list(flags.items()))
    return f"{srv.url}/api/v1/namespaces/default/pods/{pod}/exec?{q}"


async def test_exec_exit_code_and_output(sim_server: SimServer) -> None:
    srv = sim_server
    await running_pod(srv.store, "box")
    async with aiohttp.ClientSession() as s:
        url = exec_url(
            srv,
            "box",
            "sh",
            "-c",
            "echo hi; echo oops >&2; pwd; exit 3",
            stdout="true",
            stderr="true",
        )
        async with s.ws_connect(url, protocols=(channels.V5,)) as ws:
            assert ws.protocol == channels.V5
            out, status = await collect(ws)
    scratch = srv.ctx.pod_scratch_dir("default", "box")
    assert out[1] == f"hi\n{scratch}\n".encode()
    assert out[2] == b"oops\n"
    assert status == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
        "[sh -c echo hi; echo oops >&2; pwd; exit 3], exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }


async def test_exec_stdin_with_v5_close_and_v4(sim_server: SimServer) -> None:
    srv = sim_server
    await running_pod(srv.store, "cat")
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(
            exec_url(srv, "cat", "cat", stdin="true", stdout="true"),
            protocols=(channels.V5, channels.V4),
        ) as ws:
            await ws.send_bytes(b"\x00hello ")
            await ws.send_bytes(b"\x00world\n")
            await ws.send_bytes(bytes([channels.CLOSE, channels.STDIN]))
            out, status = await collect(ws)
        assert out[1] == b"hello world\n" and status == {"metadata": {}, "status": "Success"}
        async with s.ws_connect(
            exec_url(srv, "cat", "true", stdout="true"), protocols=(channels.V4,)
        ) as ws:
            assert ws.protocol == channels.V4
            _, status = await collect(ws)
        assert status == {"metadata": {}, "status": "Success"}


async def test_exec_tty_and_resize(sim_server: SimServer) -> None:
    srv = sim_server
    await running_pod(srv.store, "term")
    async with aiohttp.ClientSession() as s:
        url = exec_url(
            srv,
            "term",
            "sh",
            "-c",
            "read x; stty size; test -t 0",
            stdin="true",
            stdout="true",
            tty="true",
        )
        async with s.ws_connect(url, protocols=(channels.V5,)) as ws:
            await ws.send_bytes(b"\x04" + json.dumps({"Width": 100, "Height": 42}).encode())
            await ws.send_bytes(b"\x00go\n")
            out, status = await collect(ws)
    assert b"42 100" in out[1] and status == {"metadata": {}, "status": "Success"}


async def test_exec_refusals(sim_server: SimServer) -> None:
    srv = sim_server
    srv.store.create_item(
        "",
        "pods",
        {
            "metadata": {"name": "lonely", "namespace": "default"},
            "spec": {"schedulerName": "none", "containers": [{"name": "main", "image": "busybox"}]},
        },
    )
    await running_pod(srv.store, "ok")
    async with aiohttp.ClientSession() as s:
        async with s.get(
            exec_url(srv, "lonely", "echo", stdout="true"),
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Protocol": channels.V5,
            },
        ) as r:
            body = await r.json()
            assert r.status == 400 and body["message"] == "pod lonely does not have a host assigned"
        async with s.post(exec_url(srv, "ok", "echo", stdout="true")) as r:
            assert r.status == 400 and (await r.json())["message"] == "Upgrade request required"
        async with s.ws_connect(
            exec_url(srv, "ok", "no-such-binary-kubesim", stdout="true"), protocols=(channels.V5,)
        ) as ws:
            _, status = await collect(ws)
    assert status is not None and status["reason"] == "InternalError" and status["code"] == 500
    assert "executable file not found in $PATH" in status["message"]


async def test_attach_follows_container_output_and_echoes_stdin(sim_server: SimServer) -> None:
    srv = sim_server
    await running_pod(srv.store, "app")
    url = (
        f"{srv.url}/api/v1/namespaces/default/pods/app/attach?container=main&stdin=true&stdout=true"
    )
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=(channels.V5,)) as ws:
        first = await asyncio.wait_for(ws.receive_bytes(), RECV_TIMEOUT_S)
        assert first == b"\x01"  # the empty "streams open" frame
        srv.ctx.logs.append("default", "app", "main", b"from the app\n")
        assert await asyncio.wait_for(ws.receive_bytes(), RECV_TIMEOUT_S) == b"\x01from the app\n"
        await ws.send_bytes(b"\x00typed\n")
        assert await asyncio.wait_for(ws.receive_bytes(), RECV_TIMEOUT_S) == b"\x01typed\n"
        srv.store.delete_item("", "pods", "default", "app")
        _, status = await collect(ws)
    assert status == {"metadata": {}, "status": "Success"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _start_sleeper(
    s: aiohttp.ClientSession, srv: SimServer
) -> tuple[aiohttp.ClientWebSocketResponse, int]:
    url = exec_url(srv, "sleepy", "sh", "-c", "echo $$; exec sleep 30", stdout="true")
    ws = await s.ws_connect(url, protocols=(channels.V5,))
    assert await asyncio.wait_for(ws.receive_bytes(), RECV_TIMEOUT_S) == b"\x01"
    pid = int((await asyncio.wait_for(ws.receive_bytes(), RECV_TIMEOUT_S))[1:])
    assert _alive(pid)
    return ws, pid


async def test_exec_process_ends_with_its_client_and_with_the_sim(sim_server: SimServer) -> None:
    srv = sim_server
    await running_pod(srv.store, "sleepy")
    async with aiohttp.ClientSession() as s:
        ws, pid = await _start_sleeper(s, srv)
        await ws.close()  # the client goes away: the command is killed
        await wait_for(lambda: not _alive(pid), what="process killed after client close")
        ws, pid = await _start_sleeper(s, srv)
        assert len(srv.ctx.streams) == 1
        await srv.ctx.streams.close_all()  # stopping the sim ends every session
        await wait_for(lambda: not _alive(pid), what="process killed at stop")
        await ws.close()
