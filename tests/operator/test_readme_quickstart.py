"""The README's quick start works as written: its commands are read from the README itself and
run in an empty folder (``pip install .`` is what the test command already did)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from tests.procs import READY_TIMEOUT_S, _read_ready_line

ROOT = Path(__file__).resolve().parents[2]
DEMO_READY_S = max(READY_TIMEOUT_S, 60.0)
TIMEOUT_S = 60
DEMO_PORT = 8443  # what the README's `rancher-server demo` listens on


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the quick start has no sh block"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_quickstart_as_written(tmp_path: Path) -> None:
    commands = quickstart_commands()
    assert commands[0] == "pip install ."
    demo, kubectl_line = commands[1], commands[2]
    assert demo == "rancher-server demo"
    if not _port_free(DEMO_PORT):
        pytest.skip(f"port {DEMO_PORT}, which the README's demo uses, is taken on this machine")
    proc = subprocess.Popen(shlex.split(demo), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        info = _read_ready_line(proc, DEMO_READY_S)
        assert Path(info["kubeconfig"]) == tmp_path / "rancher-demo" / "kubeconfig"
        out = subprocess.run([*shlex.split(kubectl_line), "-o", "json"], cwd=tmp_path,
                             check=True, capture_output=True, text=True, timeout=TIMEOUT_S)
        assert len(json.loads(out.stdout)["items"]) == 3
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, err
