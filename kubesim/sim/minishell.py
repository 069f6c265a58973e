"""The stand-in's built-in shell: what ``exec`` runs in a pod unless host execution is turned on.

A container's filesystem and processes do not exist in the stand-in, so exec runs this small
shell instead of a host process: no command ever reaches the machine the stand-in runs on.
It knows ``echo``, ``printf`` (``%s`` and escapes), ``env``/``printenv``, ``cat``, ``ls``,
``pwd``, ``hostname``, ``sleep``, ``exit``, ``true``/``false``, ``read``, ``test``/``[``,
``tty``, ``stty size``, ``rm``, ``touch`` and ``sh``/``bash`` (``-c "<script>"``, or read
commands from stdin with a prompt on a terminal). Scripts take ``;``, ``&&``, ``||``, ``|``,
``> >> < 2> >&2 2>&1`` redirections, quotes, ``$VAR``, ``${VAR}``, ``$?`` and ``NAME=value``.

Files are the pod's own, in memory (``PodFiles``): a few under ``/etc`` (``hostname``,
``hosts``, ``resolv.conf``, ``os-release``) and whatever the commands write, bounded in count
and size. An unknown command inside a script is ``sh: X: not found`` with status 127, as in
a real shell.

Free of sockets: the caller gives the shell its standard streams (``ShellIO``)."""

from __future__ import annotations

import asyncio
import posixpath
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

MAX_FILE_BYTES = 1024 * 1024
MAX_FILES_PER_POD = 256
MAX_PODS_WITH_FILES = 1024
MAX_SCRIPT_BYTES = 64 * 1024
MAX_NESTING = 8
MAX_SLEEP_S = 24 * 3600.0
READ_CHUNK_BYTES = 32 * 1024
STATUS_NOT_FOUND = 127
STATUS_INTERRUPTED = 130
STATUS_USAGE = 2
PROMPT = b"$ "
ROOT_HOME = "/root"
PTS_NAME = "/dev/pts/0"
DEV_NULL = "/dev/null"

OS_RELEASE = (
    'NAME="kubesim"\nID=kubesim\nPRETTY_NAME="kubesim built-in shell (no host commands)"\n'
)


class ShellExit(Exception):
    """``exit N``: ends the shell that runs it."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class PodFiles:
    """The files of every pod's built-in shell, in memory, keyed by the pod's uid (a new pod of
    the same name starts afresh). The oldest pod's files go first past ``MAX_PODS_WITH_FILES``."""

    def __init__(self) -> None:
        self._pods: OrderedDict[str, dict[str, bytes]] = OrderedDict()

    def of(self, uid: str, hostname: str, namespace: str) -> dict[str, bytes]:
        files = self._pods.get(uid)
        if files is None:
            files = {
                "/etc/hostname": f"{hostname}\n".encode(),
                "/etc/hosts": f"127.0.0.1\tlocalhost\n10.0.0.1\t{hostname}\n".encode(),
                "/etc/resolv.conf": (
                    f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
                    "nameserver 10.96.0.10\noptions ndots:5\n"
                ).encode(),
                "/etc/os-release": OS_RELEASE.encode(),
            }
            self._pods[uid] = files
            while len(self._pods) > MAX_PODS_WITH_FILES:
                self._pods.popitem(last=False)
        self._pods.move_to_end(uid)
        return files


class Stdin:
    """A command's standard input: bytes fed by the client, ``b""`` (or ``close()``) at EOF."""

    def __init__(self, data: bytes | None = None) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._buffer = b""
        self._eof = False
        if data is not None:
            self.feed(data)
            self.close()

    def feed(self, data: bytes) -> None:
        if data:
            self._queue.put_nowait(data)

    def close(self) -> None:
        self._queue.put_nowait(b"")

    async def _more(self) -> bool:
        if self._eof:
            return False
        chunk = await self._queue.get()
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    async def read_chunk(self) -> bytes:
        """What is there now (waiting for something), ``b""`` at EOF."""
        if not self._buffer and not await self._more():
            return b""
        data, self._buffer = self._buffer, b""
        return data

    async def readline(self) -> bytes | None:
        """One line with its newline (the rest at EOF); None at EOF with nothing left."""
        while b"\n" not in self._buffer:
            if not await self._more():
                break
        if not self._buffer:
            return None
        line, sep, rest = self._buffer.partition(b"\n")
        self._buffer = rest
        return line + sep


Writer = Callable[[bytes], Awaitable[None]]


@dataclass
class ShellIO:
    stdin: Stdin
    out: Writer
    err: Writer
    tty_size: Callable[[], tuple[int, int] | None] | None = None  # (width, height) on a tty


@dataclass
class Shell:
    """One exec's shell state: the pod's files, variables, working directory."""

    files: dict[str, bytes]
    env: dict[str, str]
    cwd: str = "/"
    status: int = 0
    depth: int = 0
    builtins: dict[str, Callable[[Shell, list[str], ShellIO], Awaitable[int]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.builtins = dict(BUILTINS)

    def knows(self, name: str) -> bool:
        return name in self.builtins

    async def run_argv(self, argv: list[str], io: ShellIO) -> int:
        """Run one command (the exec's ``command``); unknown commands are the caller's to
        refuse (a container runtime refuses them before anything runs)."""
        try:
            return await self.builtins[argv[0]](self, argv, io)
        except ShellExit as done:
            return done.status

    async def interactive(self, io: ShellIO) -> int:
        """Commands from stdin, one line at a time, with a prompt on a terminal."""
        while True:
            if io.tty_size is not None:
                await io.out(PROMPT)
            line = await io.stdin.readline()
            if line is None:
                if io.tty_size is not None:
                    await io.out(b"exit\n")
                return self.status
            await self.run_script(line.decode(errors="replace"), io)

    # -- paths -----------------------------------------------------------------------------
    def path(self, name: str) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, name))

    def dirs(self) -> set[str]:
        found = {"/"}
        for p in self.files:
            d = posixpath.dirname(p)
            while d not in found:
                found.add(d)
                d = posixpath.dirname(d)
        return found

    def write_file(self, path: str, data: bytes, *, append: bool) -> str | None:
        """Store ``data``; an error message when the pod's bounds forbid it."""
        if path == DEV_NULL:
            return None
        if path in self.dirs():
            return f"can't create {path}: Is a directory"
        old = self.files.get(path)
        if old is None and len(self.files) >= MAX_FILES_PER_POD:
            return f"can't create {path}: No space left on device"
        new = (old or b"") + data if append else data
        if len(new) > MAX_FILE_BYTES:
            return f"write error: {path}: File too large"
        self.files[path] = new
        return None

    # -- scripts ---------------------------------------------------------------------------
    async def run_script(self, script: str, io: ShellIO) -> int:
        if len(script.encode()) > MAX_SCRIPT_BYTES:
            await io.err(b"sh: script too long\n")
            return STATUS_USAGE
        try:
            lists = parse(script)
        except SyntaxError as exc:
            await io.err(f"sh: syntax error: {exc}\n".encode())
            self.status = STATUS_USAGE
            return STATUS_USAGE
        for item in lists:
            await self.run_list(item, io)
        return self.status

    async def run_list(self, items: list[tuple[str, Pipeline]], io: ShellIO) -> None:
        for op, pipeline in items:
            if (op == "&&" and self.status != 0) or (op == "||" and self.status == 0):
                continue
            self.status = await self.run_pipeline(pipeline, io)

    async def run_pipeline(self, pipeline: Pipeline, io: ShellIO) -> int:
        if len(pipeline) == 1:
            return await self.run_simple(pipeline[0], io)
        pipes = [Stdin() for _ in pipeline[1:]]
        runs: list[Awaitable[int]] = []
        for i, cmd in enumerate(pipeline):
            stdin = io.stdin if i == 0 else pipes[i - 1]
            out = io.out if i == len(pipeline) - 1 else _feeder(pipes[i])
            runs.append(self._stage(cmd, replace(io, stdin=stdin, out=out), pipes, i))
        codes = await asyncio.gather(*runs)
        return codes[-1]

    async def _stage(self, cmd: Simple, io: ShellIO, pipes: list[Stdin], i: int) -> int:
        try:
            return await self.run_simple(cmd, io)
        finally:
            if i < len(pipes):
                pipes[i].close()

    async def run_simple(self, cmd: Simple, io: ShellIO) -> int:
        words = [self.expand(w) for w in cmd.words]
        assignments: dict[str, str] = {}
        while words and _assignment(words[0]):
            name, _, value = words.pop(0).partition("=")
            assignments[name] = value
        if not words:
            self.env.update(assignments)
            return 0
        try:
            io = await self.redirect(cmd.redirects, io)
        except OSError as exc:
            await io.err(f"sh: {exc}\n".encode())
            return 1
        handler = self.builtins.get(words[0])
        if handler is None:
            await io.err(f"sh: {words[0]}: not found\n".encode())
            return STATUS_NOT_FOUND
        saved = {k: self.env.get(k) for k in assignments}
        self.env.update(assignments)
        try:
            return await handler(self, words, io)
        finally:
            for k, v in saved.items():
                if v is None:
                    self.env.pop(k, None)
                else:
                    self.env[k] = v

    async def redirect(self, redirects: list[tuple[str, Word]], io: ShellIO) -> ShellIO:
        for op, target_word in redirects:
            target = self.expand(target_word)
            if op in (">&", "1>&", "2>&"):
                source = io.err if target == "2" else io.out
                io = replace(io, err=source) if op == "2>&" else replace(io, out=source)
                continue
            path = self.path(target)
            if op == "<":
                if path == DEV_NULL:
                    io = replace(io, stdin=Stdin(b""))
                    continue
                if path not in self.files:
                    raise OSError(f"can't open {target}: no such file")
                io = replace(io, stdin=Stdin(self.files[path]))
                continue
            append = op.endswith(">>")
            problem = self.write_file(path, b"", append=True)
            if problem:
                raise OSError(problem)
            if not append and path != DEV_NULL:
                self.files[path] = b""
            writer = self._file_writer(path)
            io = replace(io, err=writer) if op.startswith("2") else replace(io, out=writer)
        return io

    def _file_writer(self, path: str) -> Writer:
        async def write(data: bytes) -> None:
            problem = self.write_file(path, data, append=True)
            if problem:
                raise OSError(problem)

        return write

    def expand(self, word: Word) -> str:
        out: list[str] = []
        for kind, text in word:
            if kind == "lit":
                out.append(text)
            elif text == "?":
                out.append(str(self.status))
            elif text == "$":
                out.append("1")
            else:
                out.append(self.env.get(text, ""))
        return "".join(out)


def _assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.isidentifier()


def _feeder(pipe: Stdin) -> Writer:
    async def write(data: bytes) -> None:
        pipe.feed(data)

    return write


# -- parsing -----------------------------------------------------------------------------------
Word = list[tuple[str, str]]  # ("lit", text) or ("var", name)


@dataclass
class Simple:
    words: list[Word] = field(default_factory=list)
    redirects: list[tuple[str, Word]] = field(default_factory=list)


Pipeline = list[Simple]
OPERATORS = ("&&", "||", ";", "|", "\n")
REDIRECTS = ("2>>", "2>&", "1>&", ">>", "2>", ">&", ">", "<")


def parse(script: str) -> list[list[tuple[str, Pipeline]]]:
    """``a && b | c; d`` -> one list of (operator before it, pipeline) per ``;``/newline."""
    result: list[list[tuple[str, Pipeline]]] = []
    current: list[tuple[str, Pipeline]] = []
    pipeline: Pipeline = [Simple()]
    pending_op = ""
    pending_redirect: str | None = None

    def finish_pipeline() -> None:
        nonlocal pipeline
        if not pipeline[-1].words and not pipeline[-1].redirects:
            if len(pipeline) > 1 or pending_op in ("&&", "||"):
                raise SyntaxError("missing command")
            pipeline = [Simple()]
            return
        current.append((pending_op, pipeline))
        pipeline = [Simple()]

    for kind, value in _tokens(script):
        if pending_redirect is not None:
            if kind != "word":
                raise SyntaxError(f"redirection {pending_redirect} without a target")
            pipeline[-1].redirects.append((pending_redirect, value))  # type: ignore[arg-type]
            pending_redirect = None
        elif kind == "word":
            pipeline[-1].words.append(value)  # type: ignore[arg-type]
        elif kind == "redirect":
            pending_redirect = str(value)
        elif value == "|":
            if not pipeline[-1].words:
                raise SyntaxError("unexpected |")
            pipeline.append(Simple())
        elif value in ("&&", "||"):
            if not pipeline[-1].words:
                raise SyntaxError(f"unexpected {value}")
            finish_pipeline()
            pending_op = str(value)
        else:  # ; or newline
            finish_pipeline()
            if current:
                result.append(current)
            current, pending_op = [], ""
    if pending_redirect is not None:
        raise SyntaxError(f"redirection {pending_redirect} without a target")
    finish_pipeline()
    if current:
        result.append(current)
    return result


def _tokens(script: str) -> list[tuple[str, Word | str]]:
    tokens: list[tuple[str, Word | str]] = []
    word: Word = []
    started = False
    i, n = 0, len(script)

    def flush() -> None:
        nonlocal word, started
        if started:
            tokens.append(("word", word))
        word, started = [], False

    def lit(text: str) -> None:
        nonlocal started
        started = True
        if word and word[-1][0] == "lit":
            word[-1] = ("lit", word[-1][1] + text)
        else:
            word.append(("lit", text))

    def variable(at: int) -> int:
        """``$...`` at ``at`` (the ``$``): appends the reference, returns the next index."""
        nonlocal started
        j = at + 1
        if j < n and script[j] in "?$":
            word.append(("var", script[j]))
            started = True
            return j + 1
        if j < n and script[j] == "{":
            end = script.find("}", j)
            if end < 0:
                raise SyntaxError("missing }")
            word.append(("var", script[j + 1 : end]))
            started = True
            return end + 1
        k = j
        while k < n and (script[k].isalnum() or script[k] == "_"):
            k += 1
        if k == j:
            lit("$")
            return j
        word.append(("var", script[j:k]))
        started = True
        return k

    while i < n:
        c = script[i]
        if c in " \t":
            flush()
            i += 1
        elif c == "#" and not started:
            while i < n and script[i] != "\n":
                i += 1
        elif c == "\\" and i + 1 < n:
            if script[i + 1] != "\n":
                lit(script[i + 1])
            i += 2
        elif c == "'":
            end = script.find("'", i + 1)
            if end < 0:
                raise SyntaxError("unterminated quoted string")
            lit(script[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            lit("")
            while True:
                if i >= n:
                    raise SyntaxError("unterminated quoted string")
                c = script[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and script[i + 1] in '"\\$`':
                    lit(script[i + 1])
                    i += 2
                elif c == "$":
                    i = variable(i)
                else:
                    lit(c)
                    i += 1
        elif c == "$":
            i = variable(i)
        else:
            op = next((o for o in OPERATORS if script.startswith(o, i)), None)
            redirect = next((r for r in REDIRECTS if script.startswith(r, i)), None)
            if redirect and redirect[0].isdigit() and started:
                redirect = None  # "a2>b" is a word then a redirection of stdout
            if op is not None and (redirect is None or len(op) >= len(redirect)):
                flush()
                tokens.append(("op", op))
                i += len(op)
            elif redirect is not None:
                flush()
                tokens.append(("redirect", redirect))
                i += len(redirect)
            elif c == "&":
                raise SyntaxError("background jobs (&) are not supported")
            else:
                lit(c)
                i += 1
    flush()
    return tokens


# -- the commands ------------------------------------------------------------------------------
async def _echo(sh: Shell, argv: list[str], io: ShellIO) -> int:
    args = argv[1:]
    newline = True
    if args and args[0] == "-n":
        newline, args = False, args[1:]
    await io.out((" ".join(args) + ("\n" if newline else "")).encode())
    return 0


def _unescape(text: str) -> str:
    return (
        text.replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")
    )


async def _printf(sh: Shell, argv: list[str], io: ShellIO) -> int:
    if len(argv) < 2:
        await io.err(b"printf: usage: printf format [arguments]\n")
        return STATUS_USAGE
    fmt, args = _unescape(argv[1]), list(argv[2:])
    while True:
        out, rest = [], list(args)
        parts = fmt.split("%s")
        for k, part in enumerate(parts):
            out.append(part.replace("%%", "%"))
            if k < len(parts) - 1:
                out.append(rest.pop(0) if rest else "")
        await io.out("".join(out).encode())
        consumed = len(args) - len(rest)
        args = rest
        if not args or consumed == 0:
            return 0


async def _env(sh: Shell, argv: list[str], io: ShellIO) -> int:
    names = argv[1:]
    if argv[0] == "printenv" and names:
        values = [sh.env[n] for n in names if n in sh.env]
        await io.out("".join(f"{v}\n" for v in values).encode())
        return 0 if len(values) == len(names) else 1
    await io.out("".join(f"{k}={v}\n" for k, v in sh.env.items()).encode())
    return 0


async def _cat(sh: Shell, argv: list[str], io: ShellIO) -> int:
    status = 0
    for name in argv[1:] or ["-"]:
        if name == "-":
            while chunk := await io.stdin.read_chunk():
                await io.out(chunk)
            continue
        path = sh.path(name)
        if path in sh.files:
            await io.out(sh.files[path])
        elif path == DEV_NULL:
            continue
        else:
            why = "Is a directory" if path in sh.dirs() else "No such file or directory"
            await io.err(f"cat: can't open '{name}': {why}\n".encode())
            status = 1
    return status


async def _ls(sh: Shell, argv: list[str], io: ShellIO) -> int:
    flags = [a for a in argv[1:] if a.startswith("-")]
    names = [a for a in argv[1:] if not a.startswith("-")] or ["."]
    long = any("l" in f for f in flags)
    dirs, status = sh.dirs(), 0
    for name in names:
        path = sh.path(name)
        if path in sh.files:
            entries = [posixpath.basename(path)]
            base = posixpath.dirname(path)
        elif path in dirs:
            base = path
            entries = sorted(
                {
                    p[len(path) :].lstrip("/").split("/")[0]
                    for p in [*sh.files, *dirs]
                    if p != path and p.startswith(path.rstrip("/") + "/")
                }
            )
        else:
            await io.err(f"ls: {name}: No such file or directory\n".encode())
            status = 1
            continue
        if len(names) > 1:
            await io.out(f"{name}:\n".encode())
        for e in entries:
            full = posixpath.join(base, e)
            if long:
                kind = "d" if full in dirs else "-"
                size = len(sh.files.get(full, b""))
                await io.out(f"{kind}rw-r--r--    1 root     root {size:>10} {e}\n".encode())
            else:
                await io.out(f"{e}\n".encode())
    return status


async def _pwd(sh: Shell, argv: list[str], io: ShellIO) -> int:
    await io.out(f"{sh.cwd}\n".encode())
    return 0


async def _cd(sh: Shell, argv: list[str], io: ShellIO) -> int:
    target = sh.path(argv[1] if len(argv) > 1 else sh.env.get("HOME", "/"))
    if target not in sh.dirs():
        await io.err(f"sh: cd: can't cd to {argv[1]}: No such file or directory\n".encode())
        return 2
    sh.cwd = target
    return 0


async def _hostname(sh: Shell, argv: list[str], io: ShellIO) -> int:
    await io.out(sh.files.get("/etc/hostname", b"localhost\n"))
    return 0


async def _sleep(sh: Shell, argv: list[str], io: ShellIO) -> int:
    try:
        seconds = sum(float(a) for a in argv[1:])
    except ValueError:
        await io.err(f"sleep: invalid number '{' '.join(argv[1:])}'\n".encode())
        return 1
    await asyncio.sleep(min(max(seconds, 0.0), MAX_SLEEP_S))
    return 0


async def _exit(sh: Shell, argv: list[str], io: ShellIO) -> int:
    try:
        code = int(argv[1]) if len(argv) > 1 else sh.status
    except ValueError:
        await io.err(f"sh: exit: Illegal number: {argv[1]}\n".encode())
        code = STATUS_USAGE
    raise ShellExit(code & 0xFF)


async def _true(sh: Shell, argv: list[str], io: ShellIO) -> int:
    return 0


async def _false(sh: Shell, argv: list[str], io: ShellIO) -> int:
    return 1


async def _read(sh: Shell, argv: list[str], io: ShellIO) -> int:
    names = [a for a in argv[1:] if not a.startswith("-")] or ["REPLY"]
    line = await io.stdin.readline()
    if line is None:
        return 1
    text = line.decode(errors="replace").rstrip("\n")
    parts = text.split(maxsplit=len(names) - 1)
    for k, name in enumerate(names):
        sh.env[name] = parts[k] if k < len(parts) else ""
    return 0


async def _test(sh: Shell, argv: list[str], io: ShellIO) -> int:
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            await io.err(b"[: missing ]\n")
            return STATUS_USAGE
        args = args[:-1]
    negate = bool(args) and args[0] == "!"
    if negate:
        args = args[1:]
    result: bool
    if not args:
        result = False
    elif len(args) == 1:
        result = args[0] != ""
    elif len(args) == 2 and args[0] == "-t":
        result = io.tty_size is not None and args[1] in ("0", "1", "2")
    elif len(args) == 2 and args[0] in ("-e", "-f", "-d", "-s"):
        path = sh.path(args[1])
        result = {
            "-e": path in sh.files or path in sh.dirs(),
            "-f": path in sh.files,
            "-d": path in sh.dirs(),
            "-s": bool(sh.files.get(path)),
        }[args[0]]
    elif len(args) == 2 and args[0] in ("-z", "-n"):
        result = (args[1] == "") == (args[0] == "-z")
    elif len(args) == 3 and args[1] in ("=", "==", "!="):
        result = (args[0] == args[2]) == (args[1] != "!=")
    elif len(args) == 3 and args[1] in ("-eq", "-ne", "-lt", "-gt", "-le", "-ge"):
        try:
            a, b = int(args[0]), int(args[2])
        except ValueError:
            await io.err(b"test: integer expression expected\n")
            return STATUS_USAGE
        result = {
            "-eq": a == b, "-ne": a != b, "-lt": a < b,
            "-gt": a > b, "-le": a <= b, "-ge": a >= b,
        }[args[1]]
    else:
        await io.err(b"test: unsupported expression\n")
        return STATUS_USAGE
    return 0 if result != negate else 1


async def _tty(sh: Shell, argv: list[str], io: ShellIO) -> int:
    if io.tty_size is None:
        await io.out(b"not a tty\n")
        return 1
    await io.out(f"{PTS_NAME}\n".encode())
    return 0


async def _stty(sh: Shell, argv: list[str], io: ShellIO) -> int:
    size = io.tty_size() if io.tty_size is not None else None
    if io.tty_size is None:
        await io.err(b"stty: standard input: Not a tty\n")
        return 1
    if argv[1:] == ["size"]:
        width, height = size or (0, 0)
        await io.out(f"{height} {width}\n".encode())
    return 0


async def _rm(sh: Shell, argv: list[str], io: ShellIO) -> int:
    force = any(a.startswith("-") and "f" in a for a in argv[1:])
    status = 0
    for name in (a for a in argv[1:] if not a.startswith("-")):
        path = sh.path(name)
        if sh.files.pop(path, None) is None and not force:
            await io.err(f"rm: can't remove '{name}': No such file or directory\n".encode())
            status = 1
    return status


async def _touch(sh: Shell, argv: list[str], io: ShellIO) -> int:
    for name in argv[1:]:
        problem = sh.write_file(sh.path(name), b"", append=True)
        if problem:
            await io.err(f"touch: {problem}\n".encode())
            return 1
    return 0


async def _exec(sh: Shell, argv: list[str], io: ShellIO) -> int:
    if len(argv) < 2:
        return 0
    handler = sh.builtins.get(argv[1])
    if handler is None:
        await io.err(f"sh: exec: {argv[1]}: not found\n".encode())
        raise ShellExit(STATUS_NOT_FOUND)
    raise ShellExit(await handler(sh, argv[1:], io))


async def _sh(sh: Shell, argv: list[str], io: ShellIO) -> int:
    if sh.depth >= MAX_NESTING:
        await io.err(b"sh: too many nested shells\n")
        return STATUS_USAGE
    child = Shell(files=sh.files, env=dict(sh.env), cwd=sh.cwd, depth=sh.depth + 1)
    args = argv[1:]
    try:
        if args and args[0] == "-c":
            if len(args) < 2:
                await io.err(b"sh: -c requires an argument\n")
                return STATUS_USAGE
            return await child.run_script(args[1], io)
        if args and args[0] not in ("-i", "-s", "-l", "-"):
            await io.err(f"sh: can't open '{args[0]}': No such file or directory\n".encode())
            return STATUS_NOT_FOUND
        return await child.interactive(io)
    except ShellExit as done:
        return done.status


BUILTINS: dict[str, Callable[[Shell, list[str], ShellIO], Awaitable[int]]] = {
    "echo": _echo,
    "printf": _printf,
    "env": _env,
    "printenv": _env,
    "cat": _cat,
    "ls": _ls,
    "pwd": _pwd,
    "cd": _cd,
    "hostname": _hostname,
    "sleep": _sleep,
    "exit": _exit,
    "true": _true,
    "false": _false,
    ":": _true,
    "read": _read,
    "test": _test,
    "[": _test,
    "tty": _tty,
    "stty": _stty,
    "rm": _rm,
    "touch": _touch,
    "exec": _exec,
    "sh": _sh,
    "bash": _sh,
    "/bin/sh": _sh,
    "/bin/bash": _sh,
}
