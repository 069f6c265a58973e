"""Real processes on loopback for end-to-end tests and benchmarks: the server, agents, and helpers
to wait for them. Ports are chosen by the OS."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    pred: Any, timeout_s: float, interval_s: float = 0.05, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def _read_ready_line(proc: subprocess.Popen[str], timeout_s: float) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before it was ready")
            continue
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict) and doc.get("ready"):
                return doc
    raise TimeoutError("process did not print its ready line")


@dataclass
class ServerProc:
    data_dir: Path
    log_path: Path
    port: int = 0
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    _log: IO[str] | None = None

    def start(self) -> ServerProc:
        if not self.port:
            self.port = free_port()
        if self._log is not None:
            self._log.close()
        self._log = open(self.log_path, "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rancher_server",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                f"127.0.0.1:{self.port}",
                *self.extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            # Tests scrape /metrics anonymously unless they set RANCHER_METRICS_ANONYMOUS.
            env={
                **os.environ,
                "LOG_FORMAT": "json",
                "RANCHER_METRICS_ANONYMOUS": "true",
                **self.env,
            },
        )
        self.info = _read_ready_line(self.proc, READY_TIMEOUT_S)
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_checksum(self) -> str:
        return str(self.info["ca_checksum"])

    @property
    def ca_path(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT_S)
        if self.proc.stdout:
            self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None and self.proc.stdout:
                self.proc.stdout.close()
            if self._log:
                self._log.close()
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)
        if self.proc.stdout:
            self.proc.stdout.close()
        if self._log:
            self._log.close()

    def cli(self, *args: str) -> Any:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "rancher_server",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--init",  # tests set up a server's state before its first start
                *args,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return json.loads(out.stdout) if out.stdout.strip() else None

    def create_cluster(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.cli("cluster", "create", name)
        return result


@dataclass
class AgentProc:
    env: dict[str, str]
    log_path: Path
    module: str = "cluster_agent"
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProc:
        self._log = open(self.log_path, "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            stdout=self._log,
            stderr=self._log,
            env={**os.environ, "LOG_FORMAT": "json", **self.env},
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self._log.close()


def agent_env(server: ServerProc, reg: Mapping[str, Any], **extra: str) -> dict[str, str]:
    return {
        "CATTLE_SERVER": server.url,
        "CATTLE_TOKEN": str(reg["registrationToken"]),
        "CATTLE_CA_CHECKSUM": server.ca_checksum,
        **extra,
    }


def metrics(url: str, ca: Path | None = None) -> dict[str, float]:
    """Scrape a Prometheus text endpoint into {name{labels}: value}."""
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(ca)) if ca else None
    with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


@contextlib.contextmanager
def running(*procs: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for p in reversed(procs):
            p.stop()


def upper_echo_server() -> tuple[socket.socket, threading.Thread]:
    """A loopback TCP server answering one connection's bytes upper-cased (port-forward tests)."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = srv.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data.upper())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t
