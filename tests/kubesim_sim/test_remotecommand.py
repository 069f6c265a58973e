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
    srv.ctx.config.exec_host = True  # a host process: its working directory is the scratch one
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
    srv.ctx.config.exec_host = True  # the host process's pid is what is checked
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


# -- the built-in shell (the default): nothing reaches the host ----------------------------------
async def run(srv: SimServer, pod: str, *command: str, stdin: bytes | None = None,
              **flags: str) -> tuple[dict[int, bytes], dict[str, Any] | None]:
    wanted = {"stdout": "true", "stderr": "true", **flags}
    if stdin is not None:
        wanted["stdin"] = "true"
    async with aiohttp.ClientSession() as s, s.ws_connect(
        exec_url(srv, pod, *command, **wanted), protocols=(channels.V5,)
    ) as ws:
        if stdin is not None:
            await ws.send_bytes(b"\x00" + stdin)
            await ws.send_bytes(bytes([channels.CLOSE, channels.STDIN]))
        return await collect(ws)


def exit_of(status: dict[str, Any] | None) -> int:
    assert status is not None
    if status["status"] == "Success":
        return 0
    return int(status["details"]["causes"][0]["message"])


async def test_builtin_shell_never_reaches_the_host(sim_server: SimServer) -> None:
    srv = sim_server
    assert srv.ctx.config.exec_host is False
    await running_pod(srv.store, "safe")
    out, status = await run(srv, "safe", "cat", "/etc/hostname")
    assert out[1] == b"safe\n" and exit_of(status) == 0  # the pod's name, not the machine's
    out, status = await run(srv, "safe", "cat", "/etc/passwd")
    assert out[2] == b"cat: can't open '/etc/passwd': No such file or directory\n"
    assert exit_of(status) == 1
    out, status = await run(srv, "safe", "sh", "-c", "id; echo after")
    assert out[2] == b"sh: id: not found\n" and out[1] == b"after\n" and exit_of(status) == 0
    out, status = await run(srv, "safe", "sh", "-c", "no-such-command")
    assert exit_of(status) == 127
    _, status = await run(srv, "safe", "python3", "-c", "print(1)")
    assert status is not None and status["reason"] == "InternalError"
    assert not (srv.ctx.scratch_root / "default" / "safe").exists()


async def test_builtin_shell_scripts_files_and_variables(sim_server: SimServer) -> None:
    srv = sim_server
    await running_pod(srv.store, "shell")
    script = (
        "echo one > /tmp/f; echo two >> /tmp/f; cat /tmp/f; echo oops >&2; "
        "X=41; echo \"$X\" '$X'; false || echo fell-back; true && echo chained; "
        "echo piped | cat; ls /tmp; exit 7"
    )
    out, status = await run(srv, "shell", "sh", "-c", script)
    assert out[1] == b"one\ntwo\n41 $X\nfell-back\nchained\npiped\nf\n"
    assert out[2] == b"oops\n" and exit_of(status) == 7
    out, status = await run(srv, "shell", "cat", "/tmp/f")  # the pod keeps its files
    assert out[1] == b"one\ntwo\n" and exit_of(status) == 0
    out, _ = await run(srv, "shell", "sh", "-c", "read a b; echo $b-$a; cat", stdin=b"x y\nrest\n")
    assert out[1] == b"y-x\nrest\n"
    out, _ = await run(srv, "shell", "env")
    assert b"HOSTNAME=shell\n" in out[1] and b"PATH=" in out[1]
    _, status = await run(srv, "shell", "sleep", "0.01")
    assert exit_of(status) == 0


async def test_builtin_shell_on_a_terminal(sim_server: SimServer) -> None:
    srv = sim_server
    await running_pod(srv.store, "tty")
    url = exec_url(srv, "tty", "sh", stdin="true", stdout="true", tty="true")
    async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=(channels.V5,)) as ws:
        await ws.send_bytes(b"\x04" + json.dumps({"Width": 80, "Height": 20}).encode())
        await ws.send_bytes(b"\x00stty size; tty\r")
        await ws.send_bytes(b"\x00exit 4\r")
        out, status = await collect(ws)
    assert b"20 80\r\n/dev/pts/0\r\n" in out[1] and b"$ " in out[1]
    assert exit_of(status) == 4
