"""``rancher-server demo``: everything a newcomer needs in one command.

Starts the Kubernetes stand-in (kubesim) as a downstream cluster with a few nodes and
kube-api-auth as its token webhook (as the authorized cluster endpoint configures a real
kube-apiserver), the server on its embedded defaults in a scratch directory, and a real cluster
agent connected to it (imported from the stand-in's admin kubeconfig, as a user would import an
existing cluster). Then it prints the kubeconfig to use: ``kubectl get nodes`` works through the
server's proxy and the tunnel, and the ``demo-direct`` context straight to the cluster. Ctrl-C
stops everything.

Run it again with the same ``--dir`` and it reuses the server's state and admin password (kept in
``demo.json``, mode 0600) and imports a fresh stand-in as the ``demo`` cluster again; ``--reset``
starts from nothing."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
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
DEMO_CLUSTER = "demo"
STATE_FILE = "demo.json"
PRIVATE_FILE_MODE = 0o600


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _webhook_config(path: Path, port: int) -> Path:
    """The stand-in's --authentication-token-webhook-config-file: kube-api-auth on loopback."""
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kube-api-auth",
                      "cluster": {"server": f"http://127.0.0.1:{port}/v1/authenticate"}}],
        "users": [{"name": "kube-apiserver", "user": {}}],
        "contexts": [{"name": "webhook",
                      "context": {"cluster": "kube-api-auth", "user": "kube-apiserver"}}],
        "current-context": "webhook",
    }
    path.write_text(json.dumps(doc))
    return path


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


def _previous_password(workdir: Path) -> str | None:
    """The admin password of an earlier run in ``workdir`` (None: a first run)."""
    state = workdir / STATE_FILE
    if state.exists():
        return str(json.loads(state.read_text())["password"])
    if (workdir / "server").exists():
        raise SystemExit(
            f"{workdir} holds a server from an older demo whose admin password is unknown: "
            "run again with --reset (or another --dir)"
        )
    return None


def _fresh_cluster(url: str, ca: Path, token: str) -> dict[str, Any]:
    """The demo cluster, created anew (an earlier run's is deleted: its stand-in is gone)."""
    for c in _call(url + "/v3/clusters", ca, "GET", token=token)["data"]:
        if c["name"] == DEMO_CLUSTER:
            _say(f"removing the previous run's cluster {c['id']}")
            _call(f"{url}/v3/clusters/{c['id']}", ca, "DELETE", token=token)
    reg: dict[str, Any] = _call(url + "/v3/clusters", ca, "POST", {"name": DEMO_CLUSTER}, token)
    return reg


def run_demo(workdir: Path, listen: str, reset: bool = False) -> int:
    if reset and workdir.exists():
        _say(f"--reset: removing {workdir}")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    previous = _previous_password(workdir)
    password = previous or secrets.token_urlsafe(12)
    if previous is None:
        _write_private(workdir / STATE_FILE, json.dumps({"password": password}))
    else:
        _say(f"reusing the server state in {workdir} (--reset starts from nothing)")
    hook_port = _free_port()
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
                "--authentication-token-webhook-config-file",
                str(_webhook_config(workdir / "webhook.json", hook_port)),
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
        reg = _fresh_cluster(url, ca, token)
        cluster_id = reg["id"]
        _call(f"{url}/v3/clusters/{cluster_id}/authorizedendpoint", ca, "PUT",
              {"enabled": True}, token)
        _say("starting kube-api-auth as the stand-in's token webhook (the direct context)")
        children.append(Child(
            "kube-api-auth",
            [py, "-m", "kube_api_auth", "--listen-host", "127.0.0.1", "--listen-port",
             str(hook_port), "--kubeconfig", str(sim_info["kubeconfig"]), "--cluster-name",
             cluster_id],
            workdir / "kube-api-auth.log",
            {},
        ))
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
        _write_private(kc_path, kc)
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
        _say(f"    kubectl --kubeconfig {kc_path} get nodes          # through the server")
        _say(f"    kubectl --kubeconfig {kc_path} --context {DEMO_CLUSTER}-direct get nodes"
             "   # straight to the cluster (works while the server is down)")
        _say(f"    curl --cacert {ca} -H 'Authorization: Bearer <token>' {url}/v3/clusters")
        _say(f"API at {url} (admin / {password}); logs in {workdir}; Ctrl-C stops the demo; "
             "run again to reuse this state, --reset to start over")
        while not stop and all(c.proc.poll() is None for c in children):
            time.sleep(POLL_S)
        for c in children:
            if c.proc.poll() is not None:
                _say(f"{c.name} exited with {c.proc.returncode}; see its log in {workdir}")
        return 0
    finally:
        for c in reversed(children):
            c.stop()
