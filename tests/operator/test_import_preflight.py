"""``cluster-agent import`` checks its settings, the kubeconfig and the server before it changes
anything in the cluster: a mistake leaves the cluster untouched, with one message and an exit
code (2 settings, 1 server unreachable, 3 CA checksum mismatch)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube import KubeSimProc, kubectl
from tests.procs import ServerProc, free_port

TIMEOUT_S = 60


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProc]:
    proc = KubeSimProc(tmp_path_factory.mktemp("preflight"), ["--nodes", "1"]).start()
    try:
        yield proc
    finally:
        proc.stop()


def run_import(sim: KubeSimProc, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CATTLE_")}
    return subprocess.run(
        [sys.executable, "-m", "cluster_agent", "import", "--kubeconfig", str(sim.kubeconfig)],
        check=False, capture_output=True, text=True, timeout=TIMEOUT_S, env={**clean, **env})


def untouched(sim: KubeSimProc) -> bool:
    out = kubectl(sim.kubeconfig, "get", "serviceaccount", "cattle", "-n", "cattle-system",
                  check=False)
    return out.returncode != 0 and "NotFound" in out.stderr


def test_bad_settings_change_nothing(sim: KubeSimProc) -> None:
    out = run_import(sim, {"CATTLE_SERVER": "http://server"})
    assert out.returncode == 2
    assert "CATTLE_SERVER" in out.stderr and "CATTLE_TOKEN" in out.stderr
    assert "nothing was changed" in out.stderr and "Traceback" not in out.stderr
    assert untouched(sim)


def test_unreachable_server_changes_nothing(sim: KubeSimProc) -> None:
    out = run_import(sim, {"CATTLE_SERVER": f"https://127.0.0.1:{free_port()}",
                           "CATTLE_TOKEN": "t", "CATTLE_CA_CHECKSUM": "0" * 64})
    assert out.returncode == 1 and "cannot be reached" in out.stderr
    assert untouched(sim)


def test_ca_mismatch_changes_nothing(sim: KubeSimProc, tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log", port=free_port())
    server.start()
    try:
        out = run_import(sim, {"CATTLE_SERVER": server.url, "CATTLE_TOKEN": "t",
                               "CATTLE_CA_CHECKSUM": "0" * 64})
    finally:
        server.stop()
    assert out.returncode == 3 and "does not match" in out.stderr
    assert untouched(sim)
