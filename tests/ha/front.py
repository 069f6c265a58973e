"""HAProxy in TCP mode in front of the replicas (Debian's ``haproxy``): one address for agents and
users, TLS passed through to the replicas, a replica taken out of rotation when its port stops
answering (checks every 300 ms, two failures)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.procs import free_port

HAPROXY_START_TIMEOUT_S = 10.0
CHECK_INTERVAL_MS = 300


class Front:
    def __init__(self, workdir: Path, backends: list[tuple[str, int]]) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            pytest.fail("haproxy is not installed: apt-get install haproxy (scripts/test.sh does)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.backends = backends
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def config(self) -> str:
        servers = "\n".join(
            f"    server {name} 127.0.0.1:{port} check inter {CHECK_INTERVAL_MS}ms fall 2 rise 2"
            for name, port in self.backends)
        return f"""global
    maxconn 4000
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    option redispatch
    retries 2
frontend rancher
    bind 127.0.0.1:{self.port}
    default_backend replicas
backend replicas
    balance roundrobin
{servers}
"""

    def start(self) -> Front:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(self.config())
        log = (self.workdir / "haproxy.log").open("ab")
        self.proc = subprocess.Popen([self.binary, "-db", "-f", str(cfg)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + HAPROXY_START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    tail = (self.workdir / "haproxy.log").read_text()[-2000:]
                    raise RuntimeError(f"haproxy did not start: {tail}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
