"""exec into the built-in shell (``minishell``): the default, so no exec reaches the host.

The client's channels drive the shell: stdin feeds it (with a terminal, through a small line
discipline: echo, erase, ``^C``, ``^D``, CR to LF, LF to CRLF on output), resize messages set
the size ``stty size`` reports, the exit status goes back on the error channel as
kube-apiserver sends it. A command the shell does not know is refused as a container runtime
refuses an executable it cannot find (an ``InternalError``; inside ``sh -c`` it is status 127)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from kubesim.sim import channels
from kubesim.sim.minishell import (
    ROOT_HOME,
    STATUS_INTERRUPTED,
    Shell,
    ShellIO,
    Stdin,
)
from kubesim.sim.util import name_of, namespace_of

CTRL_C = 0x03
CTRL_D = 0x04
ERASE = (0x7F, 0x08)
INTERRUPT_ECHO = b"^C\r\n"
INITIAL_RESIZE_WAIT_S = 0.5  # how long a tty exec waits for the client's terminal size


class Terminal:
    """The pseudo terminal's line discipline in canonical mode, on bytes."""

    def __init__(self, stdin: Stdin, echo: Callable[[bytes], None]) -> None:
        self.stdin = stdin
        self.echo = echo
        self.size: tuple[int, int] | None = None
        self.line = bytearray()
        self.interrupted = asyncio.Event()

    def feed(self, data: bytes) -> None:
        for byte in data:
            if byte == CTRL_C:
                self.line.clear()
                self.echo(INTERRUPT_ECHO)
                self.interrupted.set()
            elif byte == CTRL_D:
                if self.line:
                    self.stdin.feed(bytes(self.line))
                    self.line.clear()
                else:
                    self.stdin.close()
            elif byte in ERASE:
                if self.line:
                    self.line.pop()
                    self.echo(b"\b \b")
            elif byte in (0x0D, 0x0A):
                self.echo(b"\r\n")
                self.stdin.feed(bytes(self.line) + b"\n")
                self.line.clear()
            else:
                self.line.append(byte)
                self.echo(bytes([byte]))

    def eof(self) -> None:
        self.feed(bytes([CTRL_D]))


def shell_env(pod: dict[str, Any], container: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOSTNAME": name_of(pod),
        "HOME": ROOT_HOME,
    }
    for c in pod.get("spec", {}).get("containers") or []:
        if c.get("name") == container:
            for e in c.get("env") or []:
                if "value" in e:
                    env[str(e["name"])] = str(e["value"])
    return env


async def exec_builtin(
    ws: web.WebSocketResponse,
    protocol: str,
    request_flags: dict[str, bool],
    command: list[str],
    pod: dict[str, Any],
    container: str,
    files: dict[str, bytes],
) -> None:
    """Run ``command`` in the built-in shell over the upgraded websocket ``ws``."""
    tty, want_in = request_flags["tty"], request_flags["stdin"]
    want_out, want_err = request_flags["stdout"], request_flags["stderr"]
    shell = Shell(files=files, env=shell_env(pod, container))
    if not shell.knows(command[0]):
        await _send(ws, channels.ERROR, channels.internal_error(protocol, _not_found(command)))
        return
    stdin = Stdin()
    if not want_in:
        stdin.close()
    sending: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

    def emit(channel: int, data: bytes) -> None:
        if data:
            sending.put_nowait((channel, data))

    term: Terminal | None = None
    if tty:
        term = Terminal(stdin, lambda b: emit(channels.STDOUT, b))

    async def out(data: bytes) -> None:
        if term is not None:
            emit(channels.STDOUT, data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        elif want_out:
            emit(channels.STDOUT, data)
        await asyncio.sleep(0)

    async def err(data: bytes) -> None:
        if term is not None:
            await out(data)
        elif want_err:
            emit(channels.STDERR, data)
            await asyncio.sleep(0)

    io = ShellIO(
        stdin=stdin,
        out=out,
        err=err,
        tty_size=(lambda: term.size if term is not None else None) if tty else None,
    )
    if term is not None:
        await _first_resize(ws, protocol, term)
    sender = asyncio.create_task(_send_all(ws, sending), name="exec-builtin-send")
    reader = asyncio.create_task(_read_client(ws, protocol, stdin, term), name="exec-client")
    runner = asyncio.create_task(shell.run_argv(command, io), name="exec-builtin-shell")
    waiters: set[asyncio.Future[Any]] = {reader, runner}
    interrupted: asyncio.Task[bool] | None = None
    if term is not None:
        interrupted = asyncio.create_task(term.interrupted.wait(), name="exec-interrupt")
        waiters.add(interrupted)
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        code: int | None = None
        if runner in done:
            code = runner.result()
        elif interrupted is not None and interrupted in done:
            code = STATUS_INTERRUPTED
        if code is not None:
            sending.put_nowait(None)
            await sender
            body = (
                channels.success(protocol)
                if code == 0
                else channels.exit_code(protocol, command, code)
            )
            await _send(ws, channels.ERROR, body)
    finally:
        tasks = [t for t in (runner, reader, sender, interrupted) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _not_found(command: list[str]) -> str:
    return (
        "error executing command in container: failed to exec in container: failed to start exec: "
        "OCI runtime exec failed: exec failed: unable to start container process: "
        f'exec: "{command[0]}": executable file not found in $PATH: unknown'
    )


async def _send(ws: web.WebSocketResponse, channel: int, body: bytes | None) -> None:
    if body is not None and not ws.closed:
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(channels.encode(channel, body))


async def _send_all(
    ws: web.WebSocketResponse, sending: asyncio.Queue[tuple[int, bytes] | None]
) -> None:
    while (item := await sending.get()) is not None:
        await _send(ws, *item)


def _decode(data: Any, protocol: str) -> channels.Data | channels.Close | None:
    try:
        return channels.decode(data, protocol)
    except channels.ProtocolError:
        return None


async def _first_resize(ws: web.WebSocketResponse, protocol: str, term: Terminal) -> None:
    """kubectl sends the terminal's size right after the streams open: take it (briefly
    waiting) so the first command sees it; stdin that came first is kept."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + INITIAL_RESIZE_WAIT_S
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            return
        if msg.type != WSMsgType.BINARY:
            return
        frame = _decode(msg.data, protocol)
        _apply(frame, term.stdin, term)
        if isinstance(frame, channels.Data) and frame.channel == channels.RESIZE:
            return


def _apply(
    frame: channels.Data | channels.Close | None, stdin: Stdin, term: Terminal | None
) -> None:
    if isinstance(frame, channels.Close):
        if frame.channel == channels.STDIN:
            if term is not None:
                term.eof()
            else:
                stdin.close()
    elif frame is None:
        return
    elif frame.channel == channels.STDIN:
        if term is not None:
            term.feed(frame.data)
        else:
            stdin.feed(frame.data)
    elif frame.channel == channels.RESIZE and term is not None:
        with contextlib.suppress(channels.ProtocolError):
            term.size = channels.parse_resize(frame.data)


async def _read_client(
    ws: web.WebSocketResponse, protocol: str, stdin: Stdin, term: Terminal | None
) -> None:
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            _apply(_decode(msg.data, protocol), stdin, term)


def pod_key(pod: dict[str, Any]) -> tuple[str, str, str]:
    meta = pod.get("metadata", {})
    return str(meta.get("uid") or f"{namespace_of(pod)}/{name_of(pod)}"), name_of(
        pod
    ), namespace_of(pod)
