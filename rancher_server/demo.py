"""``rancher-server demo``: everything a newcomer needs in one command.

Starts the Kubernetes stand-in (kubesim) as a downstream cluster with a few nodes, the server on
its embedded defaults in a scratch directory, and a real cluster agent connected to it (imported
from the stand-in's admin kubeconfig, as a user would import an existing cluster). Then it prints
the kubeconfig to use: ``kubectl get nodes`` works through the server's proxy and the tunnel at
once. Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

READY_TIMEOUT_S = 30.0
ACTIVE_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.2
HTTP_TIMEOUT_S = 10.0
DEMO_NODES = 3


def _say(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


class Child:
    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self._log: IO[str] = open(log, "a")  # noqa: SIM115 - lives as long as the child
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "LOG_FORMAT": "json", **env},
        )

    def ready_line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("ready"):
                return doc
        raise TimeoutError(f"{self.name} was not ready within {READY_TIMEOUT_S}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


def _call(url: str, ca: Path, method: str, body: Any = None, token: str = "") -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    ctx = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(req, context=ctx, timeout=HTTP_TIMEOUT_S) as resp:  # noqa: S310
        return json.loads(resp.read() or b"null")


def _wait(pred: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def run_demo(workdir: Path, listen: str) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    password = secrets.token_urlsafe(12)
    children: list[Child] = []
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        _say(f"starting the Kubernetes stand-in with {DEMO_NODES} nodes")
        sim = Child(
            "kubesim",
            [
                py,
                "-m",
                "kubesim",
                "--port",
                "0",
                "--nodes",
                str(DEMO_NODES),
                "--authorization-mode",
                "RBAC",
                "--kubeconfig-out",
                str(workdir / "downstream-admin.kubeconfig"),
            ],
            workdir / "kubesim.log",
            {},
        )
        children.append(sim)
        sim_info = sim.ready_line()
        _say(f"starting the server ({listen}, data in {workdir / 'server'})")
        server = Child(
            "rancher-server",
            [py, "-m", "rancher_server", "--data-dir", str(workdir / "server"), "--listen", listen],
            workdir / "server.log",
            {"CATTLE_BOOTSTRAP_PASSWORD": password},
        )
        children.append(server)
        info = server.ready_line()
        url, port = "https://127.0.0.1:" + str(info["port"]), info["port"]
        ca = workdir / "server" / "tls" / "ca.pem"
        token = _call(
            url + "/v3-public/localProviders/local?action=login",
            ca,
            "POST",
            {"username": "admin", "password": password},
        )["token"]
        reg = _call(url + "/v3/clusters", ca, "POST", {"name": "demo"}, token)
        cluster_id = reg["id"]
        _say(f"importing the stand-in as cluster {cluster_id} with a real cluster agent")
        agent = Child(
            "cluster-agent",
            [py, "-m", "cluster_agent", "import", "--kubeconfig", str(sim_info["kubeconfig"])],
            workdir / "agent.log",
            {
                "CATTLE_SERVER": url,
                "CATTLE_TOKEN": reg["registrationToken"],
                "CATTLE_CA_CHECKSUM": info["ca_checksum"],
            },
        )
        children.append(agent)
        _wait(
            lambda: (
                _call(f"{url}/v3/clusters/{cluster_id}", ca, "GET", token=token)["state"]
                == "active"
            ),
            ACTIVE_TIMEOUT_S,
            "the agent to connect",
        )
        kc = _call(
            f"{url}/v3/clusters/{cluster_id}?action=generateKubeconfig", ca, "POST", token=token
        )["config"]
        kc_path = workdir / "kubeconfig"
        fd = os.open(kc_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(kc)
        print(
            json.dumps(
                {
                    "ready": True,
                    "url": url,
                    "port": port,
                    "cluster": cluster_id,
                    "kubeconfig": str(kc_path),
                    "username": "admin",
                    "password": password,
                }
            ),
            flush=True,
        )
        _say("ready. Try:")
        _say(f"    kubectl --kubeconfig {kc_path} get nodes")
        _say(f"UI/API at {url} (admin / {password}); logs in {workdir}; Ctrl-C stops the demo")
        while not stop and all(c.proc.poll() is None for c in children):
            time.sleep(POLL_S)
        for c in children:
            if c.proc.poll() is not None:
                _say(f"{c.name} exited with {c.proc.returncode}; see its log in {workdir}")
        return 0
    finally:
        for c in reversed(children):
            c.stop()
