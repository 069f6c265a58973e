"""Shared pieces of the benchmarks: nginx as a fast native target, wrk and curl runners, and
process RSS. Every figure is a ratio against a baseline measured in the same run."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

_NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
    }}
}}
"""


@dataclass
class Nginx:
    port: int
    dir: Path
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def start_nginx(port: int, big_mib: int) -> Nginx:
    d = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    d.chmod(0o755)  # nginx's workers run as an unprivileged user
    (d / "www").mkdir()
    (d / "tmp").mkdir()
    (d / "www" / "1k").write_bytes(b"x" * 1024)
    with open(d / "www" / "big", "wb") as f:
        chunk = os.urandom(1024 * 1024)
        for _ in range(big_mib):
            f.write(chunk)
    (d / "nginx.conf").write_text(_NGINX_CONF.format(dir=d, port=port))
    proc = subprocess.Popen(
        [NGINX, "-c", str(d / "nginx.conf"), "-p", str(d)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Nginx(port, d, proc)


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, connections: int, seconds: float, headers: tuple[str, ...] = ()) -> WrkResult:
    """One wrk run (1 thread); ``headers`` are ``"Name: value"`` strings. Non-2xx answers fail."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw error answers from {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))

    def parse(v: str) -> float:
        m = re.match(r"([\d.]+)(\w+)", v)
        assert m
        return _ms(m.group(1), m.group(2))

    return WrkResult(rps, parse(lat["50"]), parse(lat["99"]))


def curl_mbps(url: str) -> float:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return float(out) / 1e6


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def cpu_s(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def machine() -> dict[str, object]:
    """What the figures were measured on: cores, CPU model, load just before the run."""
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    return {"cpus": os.cpu_count(), "cpu_model": model,
            "load_1m_before": round(os.getloadavg()[0], 2)}
