"""``pods/<p>/exec`` and ``pods/<p>/attach`` over websocket (``v5.channel.k8s.io`` ...
``channel.k8s.io``).

exec runs the requested command in the stand-in's built-in shell (``minishell``,
``builtin_exec``): echo, env, cat of the pod's own in-memory files, ls, sleep, exit codes,
``sh -c`` scripts; never a host process. Only with host execution turned on explicitly
(``kubesim --exec-host``, ``SimConfig.exec_host``) does it run the command as a local
subprocess whose working directory is the pod's scratch directory
(``SimContext.pod_scratch_dir``); with ``tty=true`` it gets a pseudo terminal and resize
messages apply to it. The exit is reported on the error channel as
kube-apiserver does (``Success``, or ``Failure``/``NonZeroExitCode`` with an ``ExitCode``
cause). attach connects to the container's simulated main process: its output is the
container's log (what is appended from now on) and what is written to its stdin is echoed
into that log, as a ``cat`` would.

Security: with ``--exec-host``, exec runs the command on the stand-in's host, as the
stand-in's user, with only its working directory confined to the scratch directory
(absolute paths reach the host's files; ``kubectl cp`` therefore writes on the host):
whoever may ``create pods/exec`` in the stand-in may run local commands. Keep that flag for
tests that need a real process. attach never runs anything.

Requests that are not websocket upgrades (kubectl's SPDY fallback) get the validation answers
kube-apiserver gives, and otherwise 400 "Upgrade request required": SPDY is not served."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMessage, WSMsgType, web

from kubesim.errors import StatusError
from kubesim.sim import channels
from kubesim.sim.builtin_exec import exec_builtin, pod_key
from kubesim.sim.context import SimContext
from kubesim.sim.podcheck import container_running, kubelet_unreachable, pick_container
from kubesim.sim.store_api import Obj
from kubesim.sim.streaming_util import status_response
from kubesim.sim.util import name_of, namespace_of
from rancher_tunnel.logs import get_logger

log = get_logger(component="kubesim.sim.remotecommand")

READ_CHUNK_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
KILL_GRACE_S = 1.0
INITIAL_RESIZE_WAIT_S = 0.5  # how long a tty exec waits for the client's terminal size
CLOSE_TIMEOUT_S = 2.0


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


def _validate(kind: str, request: web.Request, pod: Obj) -> str:
    """The checks kube-apiserver makes before upgrading; returns the container."""
    name = name_of(pod)
    if kind == "exec" and not request.query.getall("command", []):
        raise StatusError(400, "BadRequest", "you must specify at least 1 command")
    if not any(_flag(request, s) for s in ("stdin", "stdout", "stderr")):
        raise StatusError(400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr")
    container = pick_container(pod, request.query.get("container", ""))
    phase = pod.get("status", {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        verb = "exec into" if kind == "exec" else "attach to"
        raise StatusError(
            400,
            "BadRequest",
            f"cannot {verb} a container in a completed pod; current phase is {phase}",
        )
    if not pod.get("spec", {}).get("nodeName"):
        raise StatusError(400, "BadRequest", f"pod {name} does not have a host assigned")
    return container


async def serve_remotecommand(
    kind: str, request: web.Request, pod: Obj, ctx: SimContext
) -> web.StreamResponse:
    try:
        container = _validate(kind, request, pod)
    except StatusError as err:
        return status_response(err)
    ws = web.WebSocketResponse(protocols=channels.PROTOCOLS, max_msg_size=MAX_MESSAGE_BYTES)
    ready = ws.can_prepare(request)
    if not ready.ok or ready.protocol is None:
        return status_response(StatusError(400, "BadRequest", "Upgrade request required"))
    await ws.prepare(request)
    protocol = ready.protocol
    with ctx.streams.track():
        try:
            st = _Stream(request, ws, protocol, ctx, namespace_of(pod), name_of(pod), container)
            await _session(kind, st, pod)
        finally:
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT_S)
    return ws


async def _send_status(ws: web.WebSocketResponse, body: bytes | None) -> None:
    if body is not None and not ws.closed:
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(channels.encode(channels.ERROR, body))


@dataclass
class _Stream:
    """One upgraded exec/attach request."""

    request: web.Request
    ws: web.WebSocketResponse
    protocol: str
    ctx: SimContext
    namespace: str
    pod: str
    container: str


async def _session(kind: str, st: _Stream, pod: Obj) -> None:
    query = st.request.query_string
    path = f"/{kind}/{st.namespace}/{st.pod}/{st.container}?{query}"
    unreachable = kubelet_unreachable(st.ctx, pod, path, verb="Post")
    if unreachable is not None:
        await _send_status(
            st.ws,
            channels.internal_error(st.protocol, f"error sending request: {unreachable.message}"),
        )
        return
    current = st.ctx.store.get_item("", "pods", st.namespace, st.pod) or pod
    waiting = container_running(current, st.container)
    if waiting is not None:
        await _send_status(st.ws, channels.internal_error(st.protocol, waiting.message))
        return
    stdout, stderr = _flag(st.request, "stdout"), _flag(st.request, "stderr")
    first = channels.STDOUT if stdout else channels.STDERR if stderr else channels.ERROR
    await st.ws.send_bytes(channels.encode(first, b""))  # "the streams are open", as kubelet does
    if kind == "exec" and st.ctx.config.exec_host:
        await _exec(st)
    elif kind == "exec":
        flags = {f: _flag(st.request, f) for f in ("stdin", "stdout", "stderr", "tty")}
        uid, hostname, namespace = pod_key(current)
        files = st.ctx.files.of(uid, hostname, namespace)
        command = st.request.query.getall("command")
        await exec_builtin(st.ws, st.protocol, flags, command, current, st.container, files)
    else:
        await _attach(st)


# -- exec --------------------------------------------------------------------------------------
def _env(ctx: SimContext, pod: Obj, container: str, cwd: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": cwd,
        "HOSTNAME": name_of(pod),
        "TERM": "xterm",
    }
    for c in pod.get("spec", {}).get("containers") or []:
        if c.get("name") == container:
            for e in c.get("env") or []:
                if "value" in e:
                    env[str(e["name"])] = str(e["value"])
    return env


async def _pump(
    read: Callable[[], Awaitable[bytes]], ws: web.WebSocketResponse, channel: int
) -> None:
    while True:
        chunk = await read()
        if not chunk:
            return
        if ws.closed:
            continue  # keep draining so the process is not blocked on a full pipe
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(channels.encode(channel, chunk))


class _Pty:
    """The master side of a pseudo terminal, read without blocking the loop."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)
        self._open = True

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError:  # EIO once the slave side is closed
            data = b""
        if not data:
            self._stop_reading()
        self._queue.put_nowait(data)

    def _stop_reading(self) -> None:
        if self._open:
            asyncio.get_running_loop().remove_reader(self.fd)
            self._open = False

    async def read(self) -> bytes:
        return await self._queue.get()

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def resize(self, width: int, height: int) -> None:
        with contextlib.suppress(OSError):
            fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def close(self) -> None:
        self._stop_reading()
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _exec_failed_message(command: list[str], exc: OSError) -> str:
    why = (
        "executable file not found in $PATH"
        if isinstance(exc, FileNotFoundError)
        else "permission denied"
    )
    return (
        "error executing command in container: failed to exec in container: failed to start exec: "
        "OCI runtime exec failed: exec failed: unable to start container process: "
        f'exec: "{command[0]}": '
        f"{why}: unknown"
    )


async def _exec(st: _Stream) -> None:
    request, ws, protocol, ctx = st.request, st.ws, st.protocol, st.ctx
    ns, name, container = st.namespace, st.pod, st.container
    command = request.query.getall("command")
    tty = _flag(request, "tty")
    want_in, want_out, want_err = (
        _flag(request, "stdin"),
        _flag(request, "stdout"),
        _flag(request, "stderr"),
    )
    pod = ctx.store.get_item("", "pods", ns, name) or {}
    cwd = str(ctx.pod_scratch_dir(ns, name))
    env = _env(ctx, pod, container, cwd)
    term: _Pty | None = None
    early: list[channels.Data | channels.Close | None] = []
    slave = -1
    try:
        if tty:
            master, slave = pty.openpty()
            term = _Pty(master)
            early = await _until_first_resize(ws, protocol, term)
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
            os.close(slave)
            slave = -1
        else:
            pipe, devnull = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=pipe if want_in else devnull,
                stdout=pipe if want_out else devnull,
                stderr=pipe if want_err else devnull,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
    except OSError as exc:
        if slave >= 0:
            os.close(slave)
        if term is not None:
            term.close()
        await _send_status(
            ws, channels.internal_error(protocol, _exec_failed_message(command, exc))
        )
        return
    log.info("exec started", namespace=ns, pod=name, container=container, pid=proc.pid)
    pumps: list[asyncio.Task[None]] = []
    if term is not None:
        pumps.append(
            asyncio.create_task(_pump(term.read, ws, channels.STDOUT), name="exec-pty-out")
        )
    else:
        if proc.stdout is not None:
            out = proc.stdout
            pumps.append(
                asyncio.create_task(
                    _pump(lambda: out.read(READ_CHUNK_BYTES), ws, channels.STDOUT),
                    name="exec-stdout",
                )
            )
        if proc.stderr is not None:
            err = proc.stderr
            pumps.append(
                asyncio.create_task(
                    _pump(lambda: err.read(READ_CHUNK_BYTES), ws, channels.STDERR),
                    name="exec-stderr",
                )
            )
    for frame in early:
        await _apply(frame, proc, term)
    reader = asyncio.create_task(_read_client(ws, protocol, proc, term), name="exec-client")
    try:
        done_outputs: asyncio.Future[Any] = asyncio.gather(proc.wait(), *pumps)
        waiters: set[asyncio.Future[Any]] = {reader, done_outputs}
        finished, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if done_outputs in finished:
            code = proc.returncode or 0
            await _send_status(
                ws,
                channels.success(protocol)
                if code == 0
                else channels.exit_code(protocol, command, code),
            )
        else:  # the client went away first
            done_outputs.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await done_outputs
    finally:
        await _kill(proc)
        for t in [*pumps, reader]:
            t.cancel()
        await asyncio.gather(*pumps, reader, return_exceptions=True)
        if term is not None:
            term.close()


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), KILL_GRACE_S)


async def _apply(
    frame: channels.Data | channels.Close | None,
    proc: asyncio.subprocess.Process,
    term: _Pty | None,
) -> None:
    """One client frame: stdin data, stdin close, or a terminal resize."""
    if isinstance(frame, channels.Close):
        if frame.channel == channels.STDIN:
            if term is not None:
                term.write(b"\x04")  # EOF for the terminal's line discipline
            elif proc.stdin is not None:
                proc.stdin.close()
        return
    if frame is None:
        return
    if frame.channel == channels.STDIN:
        if term is not None:
            term.write(frame.data)
        elif proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(frame.data)
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
    elif frame.channel == channels.RESIZE and term is not None:
        with contextlib.suppress(channels.ProtocolError):
            term.resize(*channels.parse_resize(frame.data))


def _decode(msg: WSMessage, protocol: str) -> channels.Data | channels.Close | None:
    if msg.type != WSMsgType.BINARY:
        return None
    try:
        return channels.decode(msg.data, protocol)
    except channels.ProtocolError as exc:
        log.warning("bad client frame", error=str(exc))
        return None


async def _until_first_resize(
    ws: web.WebSocketResponse, protocol: str, term: _Pty
) -> list[channels.Data | channels.Close | None]:
    """With a terminal, kubectl sends its size right after the streams open: wait (briefly)
    for it and apply it before the command starts, so the command sees its real size.
    Returns the frames that came before it, to apply once the command runs."""
    early: list[channels.Data | channels.Close | None] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + INITIAL_RESIZE_WAIT_S
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            break
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            break
        frame = _decode(msg, protocol)
        if isinstance(frame, channels.Data) and frame.channel == channels.RESIZE:
            with contextlib.suppress(channels.ProtocolError):
                term.resize(*channels.parse_resize(frame.data))
            break
        early.append(frame)
    return early


async def _read_client(
    ws: web.WebSocketResponse, protocol: str, proc: asyncio.subprocess.Process, term: _Pty | None
) -> None:
    """Client messages until the websocket closes: stdin data, stdin close, resize."""
    async for msg in ws:
        await _apply(_decode(msg, protocol), proc, term)


# -- attach ------------------------------------------------------------------------------------
async def _attach(st: _Stream) -> None:
    request, ws, protocol, ctx = st.request, st.ws, st.protocol, st.ctx
    ns, name, container = st.namespace, st.pod, st.container
    buf = ctx.logs.get(ns, name, container)
    start, _ = buf.snapshot()
    want_out = _flag(request, "stdout") or _flag(request, "tty")

    async def output() -> None:
        async for line in buf.follow(start, lambda: not ws.closed):
            if want_out:
                with contextlib.suppress(ConnectionError):
                    await ws.send_bytes(channels.encode(channels.STDOUT, line.data))

    async def stdin() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            with contextlib.suppress(channels.ProtocolError):
                frame = channels.decode(msg.data, protocol)
                if (
                    isinstance(frame, channels.Data)
                    and frame.channel == channels.STDIN
                    and frame.data
                ):
                    buf.append(frame.data)

    out_task = asyncio.create_task(output(), name="attach-output")
    in_task = asyncio.create_task(stdin(), name="attach-input")
    try:
        done, _ = await asyncio.wait({out_task, in_task}, return_when=asyncio.FIRST_COMPLETED)
        if out_task in done:  # the container's process ended (pod deleted or restarted)
            await _send_status(ws, channels.success(protocol))
    finally:
        for t in (out_task, in_task):
            t.cancel()
        await asyncio.gather(out_task, in_task, return_exceptions=True)
