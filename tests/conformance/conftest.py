"""Conformance fixtures: one API server per session (the stand-in, or CONFORMANCE_KUBECONFIG),
real kubectl, a kubernetes_asyncio client and a fresh namespace per test."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config

from tests.kubesim_launch import kubesim_argv, start_ready, stop

CONFORMANCE_ENV = "CONFORMANCE_KUBECONFIG"
STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
KUBECTL_TIMEOUT_S = 60.0
WAIT_S = 20.0  # for the cluster to reach a state
POLL_S = 0.2
SIM_NODES = 2

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def kubectl_argv(kubeconfig: str, cache_dir: str, *args: str) -> list[str]:
    """The real kubectl against ``kubeconfig``, with a discovery cache shared by the session."""
    return ["kubectl", "--kubeconfig", kubeconfig, "--cache-dir", cache_dir, *args]


def namespace_manifest(name: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return out


def wait_for(pred: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll ``pred`` until it returns something truthy (returned); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def against_other_server() -> bool:
    return bool(os.environ.get(CONFORMANCE_ENV))


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("simcluster")
    if marker is not None and against_other_server():
        need = str(marker.args[0]) if marker.args else "needs the stand-in's simulated cluster"
        pytest.skip(f"{need}; run against the stand-in")


def _start_kubesim(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    proc, info = start_ready(
        kubesim_argv(
            workdir / "admin.kubeconfig",
            ["--authorization-mode", "RBAC", "--nodes", str(SIM_NODES)],
            cert_dir=workdir / "pki",
        ),
        workdir / "kubesim.log",
        STARTUP_TIMEOUT_S,
    )
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
            stop(proc, STOP_TIMEOUT_S)


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
        cmd = kubectl_argv(kubeconfig, kubectl_cache_dir)
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
    kubectl("apply", "-f", "-", input=namespace_manifest(name))
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
