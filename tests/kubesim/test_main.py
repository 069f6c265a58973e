"""``python -m kubesim`` as a real process: the ready line, the kubeconfig, a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from tests.kubesim_launch import kubesim_argv, wait_readable

READY_WITHIN_S = 5.0
STOP_WITHIN_S = 5.0


def test_plain_http_process_prints_ready_line_and_serves(tmp_path: Path) -> None:
    kc = tmp_path / "admin.kubeconfig"
    started = time.monotonic()
    proc = subprocess.Popen(
        kubesim_argv(kc, ["--plain-http"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert wait_readable(proc.stdout, READY_WITHIN_S), "no ready line"
        line = json.loads(proc.stdout.readline())
        elapsed = time.monotonic() - started
        assert line["ready"] is True and line["kubeconfig"] == str(kc)
        assert line["url"].startswith("http://127.0.0.1:")
        assert elapsed < READY_WITHIN_S
        doc = yaml.safe_load(kc.read_text())
        assert doc["clusters"][0]["cluster"]["server"] == line["url"]
        assert oct(os.stat(kc).st_mode & 0o777) == "0o600"
        with urllib.request.urlopen(line["url"] + "/version", timeout=READY_WITHIN_S) as r:
            assert json.loads(r.read())["minor"] == "32"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_WITHIN_S) == 0
        if proc.stdout is not None:
            proc.stdout.close()
