"""Starting the Kubernetes stand-in (``python -m kubesim``) as a subprocess: one command line and
one way to wait for, read and stop a process that prints a JSON ready line, shared by the tests'
launchers and the benchmarks (``tests/kube.py``'s ``KubeSimProc`` builds on it too)."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

QUIET_ENV = {"LOG_LEVEL": "WARNING"}


def kubesim_argv(
    kubeconfig_out: Path, extra: Sequence[str] = (), *, cert_dir: Path | None = None
) -> list[str]:
    """``python -m kubesim`` on a port chosen by the OS, writing its admin kubeconfig to
    ``kubeconfig_out`` (and its certificates to ``cert_dir`` when given)."""
    certs = ["--cert-dir", str(cert_dir)] if cert_dir is not None else []
    return [
        sys.executable,
        "-m",
        "kubesim",
        "--port",
        "0",
        "--kubeconfig-out",
        str(kubeconfig_out),
        *certs,
        *extra,
    ]


def wait_readable(stream: IO[str], timeout_s: float) -> bool:
    """Whether ``stream`` (a pipe) has something to read within ``timeout_s``."""
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    ready = sel.select(timeout=timeout_s)
    sel.close()
    return bool(ready)


def start_ready(
    cmd: list[str], log_path: Path, timeout_s: float
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start a process that prints one JSON ready line (stderr to ``log_path``); the process and
    that line. A process silent for ``timeout_s`` is killed and RuntimeError raised."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None
    if not wait_readable(proc.stdout, timeout_s):
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise RuntimeError(f"{cmd} did not get ready in {timeout_s}s")
    info: dict[str, Any] = json.loads(proc.stdout.readline())
    return proc, info


def stop(proc: subprocess.Popen[str], timeout_s: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; closes the stdout pipe."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
