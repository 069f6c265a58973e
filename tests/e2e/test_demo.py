"""The newcomer's demo: one command, then kubectl works through the tunnel and straight to the
cluster; run again, it reuses its state; --reset starts over."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.kube import kubectl, kubectl_json
from tests.procs import _read_ready_line, free_port, wait_until

DEMO_READY_S = 60.0
DIRECT_READY_S = 20.0


def _run_demo(workdir: Path, *extra: str) -> tuple[dict[str, Any], subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rancher_server", "demo", "--dir", str(workdir),
         "--listen", f"127.0.0.1:{free_port()}", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return _read_ready_line(proc, DEMO_READY_S), proc


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def test_demo_runs_twice_with_proxy_and_direct_contexts(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    info, proc = _run_demo(workdir)
    try:
        kc = Path(info["kubeconfig"])
        nodes = kubectl_json(kc, "get", "nodes")
        assert len(nodes["items"]) == 3
        assert all(
            c["status"] == "True"
            for n in nodes["items"]
            for c in n["status"]["conditions"]
            if c["type"] == "Ready"
        )
        assert "kube-system" in kubectl(kc, "get", "namespaces").stdout
        # The direct context goes to the stand-in through kube-api-auth.
        wait_until(lambda: kubectl(kc, "--context", "demo-direct", "get", "nodes",
                                   check=False).returncode == 0, DIRECT_READY_S, 0.5,
                   what="the direct context")
    finally:
        err = _stop(proc)
    assert "kubectl --kubeconfig" in err and "demo-direct" in err
    state = workdir / "demo.json"
    assert state.stat().st_mode & 0o077 == 0
    # Again in the same folder: the same admin password, a working kubeconfig.
    again, proc = _run_demo(workdir)
    try:
        assert again["password"] == info["password"] == json.loads(state.read_text())["password"]
        assert len(kubectl_json(Path(again["kubeconfig"]), "get", "nodes")["items"]) == 3
    finally:
        err = _stop(proc)
    assert "reusing the server state" in err
    # --reset: a new admin password.
    fresh, proc = _run_demo(workdir, "--reset")
    try:
        assert fresh["password"] != info["password"]
    finally:
        _stop(proc)
