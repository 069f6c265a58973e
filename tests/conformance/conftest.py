"""Conformance fixtures: one API server per session (the stand-in, or CONFORMANCE_KUBECONFIG),
real kubectl, a kubernetes_asyncio client and a fresh namespace per test."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config

CONFORMANCE_ENV = "CONFORMANCE_KUBECONFIG"
STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
KUBECTL_TIMEOUT_S = 60.0
SIM_NODES = 2

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def against_other_server() -> bool:
    return bool(os.environ.get(CONFORMANCE_ENV))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("simcluster") and against_other_server():
        pytest.skip("needs the stand-in's simulated cluster")


def _start_kubesim(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    log = (workdir / "kubesim.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubesim",
            "--port",
            "0",
            "--cert-dir",
            str(workdir / "pki"),
            "--kubeconfig-out",
            str(workdir / "admin.kubeconfig"),
            "--authorization-mode",
            "RBAC",
            "--nodes",
            str(SIM_NODES),
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    log.close()
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    ready = sel.select(timeout=STARTUP_TIMEOUT_S)
    sel.close()
    if not ready:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"kubesim did not get ready in {STARTUP_TIMEOUT_S}s")
    line = proc.stdout.readline()
    info = json.loads(line)
    assert info["ready"] is True
    return proc, str(info["kubeconfig"])


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    """Path of an admin kubeconfig for the server under test."""
    env = os.environ.get(CONFORMANCE_ENV)
    if env:
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        proc, path = _start_kubesim(Path(tmp))
        try:
            yield path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture(scope="session")
def kubectl_cache_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="kubectl-cache-") as tmp:
        yield tmp


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str, kubectl_cache_dir: str) -> Kubectl:
    """``kubectl(*args, user=None, check=True, input=None)`` runs the real kubectl."""

    def run(
        *args: str,
        user: str | None = None,
        groups: tuple[str, ...] = (),
        check: bool = True,
        input: str | None = None,
        timeout: float = KUBECTL_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "--kubeconfig", kubeconfig, "--cache-dir", kubectl_cache_dir]
        if user:
            cmd += ["--as", user]
        for g in groups:
            cmd += ["--as-group", g]
        cmd += list(args)
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


@pytest.fixture
async def api_client(kubeconfig: str) -> AsyncIterator[client.ApiClient]:
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    async with client.ApiClient(cfg) as api:
        yield api


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace, deleted (without waiting) after the test."""
    name = f"conf-{uuid.uuid4().hex[:8]}"
    kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
