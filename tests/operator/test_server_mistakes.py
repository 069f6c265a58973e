"""Mistakes an operator makes with rancher-server get one line saying what is wrong and what to
do, with a non-zero exit code; tracebacks only with --debug."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.procs import READY_TIMEOUT_S, _read_ready_line, free_port

TIMEOUT_S = 30


def server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rancher_server", *args], check=False,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def last_line(out: subprocess.CompletedProcess[str]) -> str:
    return out.stderr.strip().splitlines()[-1]


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    out = server("--data-dir", str(tmp_path), "--listen", "nonsense")
    assert out.returncode == 2 and "--listen must be HOST:PORT" in last_line(out)
    out = server("--data-dir", str(tmp_path), "serve", "--server-url", "http://rancher.example")
    assert out.returncode == 2 and "https://" in last_line(out)
    assert "Traceback" not in out.stderr


def test_offline_commands_refuse_to_invent_a_server(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    out = server("--data-dir", str(missing), "user", "list")
    assert out.returncode == 1
    assert "no server state" in last_line(out) and "--init" in last_line(out)
    assert not missing.exists()
    out = server("--data-dir", str(missing), "--init", "cluster", "create", "first")
    assert out.returncode == 0, out.stderr
    assert (missing / "rancher.db").exists()
    assert server("--data-dir", str(missing), "cluster", "list").returncode == 0


def test_port_in_use_and_serve_takes_the_server_options(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = server("--data-dir", str(tmp_path), "serve", "--listen", f"127.0.0.1:{port}")
        assert out.returncode == 1
        assert "address is in use" in last_line(out) and "Traceback" not in out.stderr
        debug = server("--data-dir", str(tmp_path), "serve", "--debug", "--listen",
                       f"127.0.0.1:{port}")
        assert debug.returncode != 0 and "Traceback" in debug.stderr
    # `serve --listen` starts the server (it used to be refused after the subcommand).
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rancher_server", "--data-dir", str(tmp_path / "data"), "serve",
         "--listen", f"127.0.0.1:{port}", "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        info = _read_ready_line(proc, READY_TIMEOUT_S)
        assert info["port"] == port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=TIMEOUT_S)


def test_store_check_and_backup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert server("--data-dir", str(data), "--init", "cluster", "create", "c1").returncode == 0
    out = server("--data-dir", str(data), "store", "check")
    assert out.returncode == 0 and '"ok": true' in out.stdout
    copy = tmp_path / "backup.db"
    out = server("--data-dir", str(data), "store", "backup", "--to", str(copy))
    assert out.returncode == 0, out.stdout + out.stderr
    assert copy.stat().st_mode & 0o077 == 0
    # The backup is a whole store: a server state that lists the same cluster.
    restored = tmp_path / "restored"
    restored.mkdir()
    copy.rename(restored / "rancher.db")
    listed = server("--data-dir", str(restored), "cluster", "list")
    assert listed.returncode == 0 and '"c1"' in listed.stdout
    again = server("--data-dir", str(data), "store", "backup", "--to", str(restored / "rancher.db"))
    assert again.returncode == 1 and "exists" in again.stdout
    # A damaged file is reported, not trusted.
    db = data / "rancher.db"
    raw = bytearray(db.read_bytes())
    raw[4096:] = b"\xff" * (len(raw) - 4096)  # every page after the first
    db.write_bytes(bytes(raw))
    out = server("--data-dir", str(data), "store", "check")
    assert out.returncode == 1 and '"ok": false' in out.stdout
