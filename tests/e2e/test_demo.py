"""The newcomer's demo: one command, then kubectl works through the tunnel."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.kube import kubectl, kubectl_json
from tests.procs import _read_ready_line, free_port

DEMO_READY_S = 60.0


def test_demo_one_command_then_kubectl_get_nodes(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rancher_server",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = _read_ready_line(proc, DEMO_READY_S)
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
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "kubectl --kubeconfig" in err
