"""Scenarios about running pods (logs, exec, attach, port-forward, node heartbeats), driven with
real kubectl. Those that need the stand-in's simulated cluster are marked ``simcluster`` with the
reason: skipped, with that reason, when CONFORMANCE_KUBECONFIG names another API server (a
control plane without kubelets); the others run there too. Nodes and pod logs are driven through the
stand-in's admin command line (``python -m kubesim.sim.admin``)."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pty
import select
import selectors
import socket
import ssl
import struct
import subprocess
import sys
import termios
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import POLL_S, WAIT_S, Kubectl, get_json, kubectl_argv, wait_for

pytestmark = pytest.mark.timeout(120)

# What a real API server would need for each ``simcluster`` scenario (the skip reason there)
NEEDS_KUBELET_NODES = "needs Ready nodes with a kubelet that runs pods (the server has none)"
NEEDS_KUBELET_EXEC = "needs a kubelet running the pod to exec into its container"
NEEDS_KUBELET_LOGS = (
    "needs a kubelet running the pod and a way to make its container write log lines "
    "(the stand-in's pod-log admin command)"
)
NEEDS_KUBELET_PORT_FORWARD = "needs a kubelet running the pod to port-forward to it"
NEEDS_STOPPABLE_KUBELET = (
    "needs a node whose kubelet the test can stop and remove (the stand-in's node admin command)"
)
STAND_IN_ONLY = "checks the stand-in's own /_kubesim admin endpoints, which a real server has not"

LINE_TIMEOUT_S = 10.0
HEARTBEAT_WAIT_S = 30.0  # kubelet renews its Lease every 10 s
ADMIN_TIMEOUT_S = 20.0
SOCKET_TIMEOUT_S = 10.0
PROC_STOP_TIMEOUT_S = 5.0
ACCEPT_POLL_S = 0.1
ATTACH_PROBE_S = 1.0


def admin(kubeconfig: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "kubesim.sim.admin", "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=ADMIN_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def deployment(name: str, ns: str, replicas: int, image: str = "nginx:1.27") -> str:
    labels = {"app": name}
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "main", "image": image}]},
                },
            },
        }
    )


def pod(name: str, ns: str, annotations: dict[str, str] | None = None) -> str:
    md: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations:
        md["annotations"] = annotations
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": md,
            "spec": {
                "containers": [
                    {"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}
                ]
            },
        }
    )


def running_pod(kubectl: Kubectl, name: str, ns: str, **kw: Any) -> None:
    kubectl("apply", "-f", "-", input=pod(name, ns, **kw))
    kubectl("wait", "--for=condition=Ready", f"pod/{name}", "-n", ns, "--timeout=20s")


class Lines:
    """Line-by-line reading of a running kubectl's stdout, with a deadline per line (reads the
    pipe itself: a buffered reader would hide lines from select)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self._fd = proc.stdout.fileno()
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._fd, selectors.EVENT_READ)

    def next_or_none(self, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(timeout=left):
                return None
            chunk = os.read(self._fd, 65536)
            if not chunk:
                break
            self._buf += chunk
        line, sep, self._buf = self._buf.partition(b"\n")
        return (line + sep).decode()

    def next(self, timeout_s: float = LINE_TIMEOUT_S) -> str:
        line = self.next_or_none(timeout_s)
        if line is None:
            raise AssertionError(f"no output from {self.proc.args} within {timeout_s}s")
        return line

    def close(self) -> None:
        self._sel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=PROC_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def kubectl_bg(kubeconfig: str, kubectl_cache_dir: str) -> Iterator[Callable[..., Lines]]:
    """Start kubectl in the background (``logs -f``, ``attach``, ``port-forward``)."""
    started: list[Lines] = []

    def start(*args: str) -> Lines:
        proc = subprocess.Popen(
            kubectl_argv(kubeconfig, kubectl_cache_dir, *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # never read: must not fill up and block kubectl
        )
        lines = Lines(proc)
        started.append(lines)
        return lines

    yield start
    for lines in started:
        lines.close()


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A TCP echo server on a loopback port chosen by the OS."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(ACCEPT_POLL_S)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(SOCKET_TIMEOUT_S)
                try:
                    while data := conn.recv(65536):
                        conn.sendall(data)
                except OSError:
                    pass

    t = threading.Thread(target=serve, name="echo-server", daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        srv.close()
        t.join(timeout=SOCKET_TIMEOUT_S + 1)


@pytest.mark.simcluster(NEEDS_KUBELET_NODES)
def test_deployment_runs_pods_and_emits_events(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-f", "-", input=deployment("web", namespace, 3))
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=30s")
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", "app=web")["items"]
    assert len(pods) == 3
    for p in pods:
        assert p["status"]["phase"] == "Running" and p["spec"]["nodeName"]
        assert p["status"]["podIP"] and p["status"]["containerStatuses"][0]["ready"] is True
        assert p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    d = get_json(kubectl, "deployment", "web", "-n", namespace)
    assert d["status"]["readyReplicas"] == 3 and d["status"]["availableReplicas"] == 3
    conds = {c["type"]: c["reason"] for c in d["status"]["conditions"]}
    assert conds == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "NewReplicaSetAvailable",
    }
    events = get_json(kubectl, "events", "-n", namespace)["items"]
    seen = {
        (e["reason"], e.get("reportingComponent") or e["source"].get("component")) for e in events
    }
    for expected in [
        ("ScalingReplicaSet", "deployment-controller"),
        ("SuccessfulCreate", "replicaset-controller"),
        ("Scheduled", "default-scheduler"),
        ("Pulled", "kubelet"),
        ("Created", "kubelet"),
        ("Started", "kubelet"),
    ]:
        assert expected in seen
    # a template change rolls out a second ReplicaSet; scaling down leaves one pod
    kubectl("set", "image", "deployment/web", "main=nginx:1.28", "-n", namespace)
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=30s")
    rss = get_json(kubectl, "replicasets", "-n", namespace)["items"]
    by_rev = {r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r for r in rss}
    assert by_rev["2"]["spec"]["replicas"] == 3 and by_rev["1"]["spec"]["replicas"] == 0
    kubectl("scale", "deployment/web", "--replicas=1", "-n", namespace)
    wait_for(
        lambda: len(get_json(kubectl, "pods", "-n", namespace, "-l", "app=web")["items"]) == 1,
        "scale down to 1",
    )


@pytest.mark.simcluster(NEEDS_KUBELET_EXEC)
def test_exec_reports_exit_code_and_streams(kubectl: Kubectl, namespace: str) -> None:
    running_pod(kubectl, "box", namespace)
    out = kubectl("exec", "box", "-n", namespace, "--", "sh", "-c", "echo hi; exit 3", check=False)
    assert out.returncode == 3 and out.stdout == "hi\n"
    assert "command terminated with exit code 3" in out.stderr
    out = kubectl(
        "exec",
        "-i",
        "box",
        "-n",
        namespace,
        "--",
        "sh",
        "-c",
        "cat; echo done >&2",
        input="through stdin\n",
    )
    assert out.stdout == "through stdin\n" and out.stderr == "done\n"
    # the scratch directory is per pod and survives between execs
    kubectl("exec", "box", "-n", namespace, "--", "sh", "-c", "echo kept > f.txt")
    assert kubectl("exec", "box", "-n", namespace, "--", "cat", "f.txt").stdout == "kept\n"


@pytest.mark.simcluster(NEEDS_KUBELET_LOGS)
def test_logs_and_follow(
    kubectl: Kubectl, kubeconfig: str, namespace: str, kubectl_bg: Callable[..., Lines]
) -> None:
    running_pod(kubectl, "talker", namespace)
    admin(kubeconfig, "pod-log", "append", namespace, "talker", "main", "one\ntwo")
    assert kubectl("logs", "talker", "-n", namespace).stdout == "one\ntwo\n"
    assert kubectl("logs", "talker", "-n", namespace, "--tail=1").stdout == "two\n"
    follow = kubectl_bg("logs", "-f", "talker", "-n", namespace)
    assert follow.next() == "one\n" and follow.next() == "two\n"  # the stream is open
    for i in range(3):
        admin(kubeconfig, "pod-log", "append", namespace, "talker", f"live {i}")
        assert follow.next() == f"live {i}\n"


def test_logs_of_an_unscheduled_pod_is_empty(kubectl: Kubectl, namespace: str) -> None:
    spec = json.loads(pod("lonely", namespace))
    spec["spec"]["schedulerName"] = "no-such-scheduler"
    kubectl("apply", "-f", "-", input=json.dumps(spec))
    out = kubectl("logs", "lonely", "-n", namespace)
    assert out.returncode == 0 and out.stdout == ""
    refused = kubectl("exec", "lonely", "-n", namespace, "--", "echo", "hi", check=False)
    assert refused.returncode == 1
    assert "pod lonely does not have a host assigned" in refused.stderr


@pytest.mark.simcluster(NEEDS_KUBELET_LOGS)
def test_attach_sees_container_output(
    kubectl: Kubectl, kubeconfig: str, namespace: str, kubectl_bg: Callable[..., Lines]
) -> None:
    running_pod(kubectl, "app", namespace)
    attached = kubectl_bg("attach", "app", "-n", namespace)
    # attach shows only new output: append until the first line comes through
    deadline = time.monotonic() + WAIT_S
    line = None
    while line is None and time.monotonic() < deadline:
        admin(kubeconfig, "pod-log", "append", namespace, "app", "hello attach")
        line = attached.next_or_none(ATTACH_PROBE_S)
    assert line == "hello attach\n"
    admin(kubeconfig, "pod-log", "append", namespace, "app", "second")
    while line == "hello attach\n":  # skip probes that were still in flight
        line = attached.next()
    assert line == "second\n"


@pytest.mark.simcluster(NEEDS_KUBELET_PORT_FORWARD)
def test_port_forward_to_local_echo_server(
    kubectl: Kubectl, namespace: str, echo_server: int, kubectl_bg: Callable[..., Lines]
) -> None:
    running_pod(kubectl, "srv", namespace, annotations={"kubesim.io/port-8080": str(echo_server)})
    pf = kubectl_bg("port-forward", "pod/srv", ":8080", "-n", namespace)
    first = pf.next()
    assert first.startswith("Forwarding from 127.0.0.1:") and first.rstrip().endswith("-> 8080")
    local = int(first.split("127.0.0.1:")[1].split()[0])
    for payload in (b"ping\n", b"x" * 100_000):
        with socket.create_connection(("127.0.0.1", local), timeout=SOCKET_TIMEOUT_S) as s:
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = s.recv(65536)
                assert chunk, "connection closed early"
                got += chunk
            assert got == payload


@pytest.mark.simcluster(NEEDS_STOPPABLE_KUBELET)
def test_node_heartbeats_notready_and_removal(kubectl: Kubectl, kubeconfig: str) -> None:
    name = f"conf-node-{uuid.uuid4().hex[:6]}"
    admin(kubeconfig, "node", "add", name)
    try:
        node = get_json(kubectl, "node", name)
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
        assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.32.")
        assert {c["type"]: c["status"] for c in node["status"]["conditions"]} == {
            "MemoryPressure": "False",
            "DiskPressure": "False",
            "PIDPressure": "False",
            "Ready": "True",
        }
        lease = get_json(kubectl, "lease", name, "-n", "kube-node-lease")
        assert lease["spec"]["holderIdentity"] == name
        first = lease["spec"]["renewTime"]
        wait_for(
            lambda: (
                get_json(kubectl, "lease", name, "-n", "kube-node-lease")["spec"]["renewTime"]
                != first
            ),
            "a lease renewal",
            HEARTBEAT_WAIT_S,
        )
        admin(kubeconfig, "node", "notready", name)
        node = get_json(kubectl, "node", name)
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "Unknown" and ready["reason"] == "NodeStatusUnknown"
        admin(kubeconfig, "node", "ready", name)
        node = get_json(kubectl, "node", name)
        assert (
            next(c for c in node["status"]["conditions"] if c["type"] == "Ready")["status"]
            == "True"
        )
    finally:
        admin(kubeconfig, "node", "remove", name)
    gone = kubectl("get", "node", name, check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr


@pytest.mark.simcluster(STAND_IN_ONLY)
def test_admin_endpoints_need_an_admin_client(kubeconfig: str) -> None:
    cfg = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = cfg["clusters"][0]["cluster"]
    ctx = ssl.create_default_context()
    if cluster.get("certificate-authority-data"):
        ctx.load_verify_locations(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    if not str(cluster["server"]).startswith("https://"):
        pytest.skip("plain HTTP stand-in: admin endpoints trust loopback clients")
    url = str(cluster["server"]).rstrip("/") + "/_kubesim/nodes"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=SOCKET_TIMEOUT_S, context=ctx)
    assert err.value.code == 403
    err.value.close()
    nodes = json.loads(admin_get(kubeconfig, "/_kubesim/nodes"))["nodes"]
    assert {"name": "node-0", "ready": True} in nodes


def admin_get(kubeconfig: str, path: str) -> bytes:
    from kubesim.sim.admin import AdminClient

    code, body = AdminClient(kubeconfig).call("GET", path)
    assert code == 200, body
    return body


@pytest.mark.simcluster(NEEDS_KUBELET_NODES)
def test_daemonset_and_service_endpoints(kubectl: Kubectl, namespace: str) -> None:
    labels = {"app": "agent"}
    kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "agent", "namespace": namespace},
                # spelled out: the stand-in does not default updateStrategy (kube-apiserver does)
                "spec": {
                    "updateStrategy": {"type": "RollingUpdate"},
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "a",
                                    "image": "busybox:1.36",
                                    "ports": [{"name": "metrics", "containerPort": 9100}],
                                }
                            ]
                        },
                    },
                },
            }
        ),
    )
    kubectl("rollout", "status", "daemonset/agent", "-n", namespace, "--timeout=30s")
    nodes = {
        n["metadata"]["name"]
        for n in get_json(kubectl, "nodes")["items"]
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    }
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", "app=agent")["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(nodes)
    kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "agent", "namespace": namespace},
                "spec": {
                    "selector": labels,
                    "ports": [{"name": "m", "port": 80, "targetPort": "metrics"}],
                },
            }
        ),
    )

    def endpoint_ips() -> list[str]:
        ep = get_json(kubectl, "endpoints", "agent", "-n", namespace)
        return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])

    wait_for(lambda: endpoint_ips() == sorted(p["status"]["podIP"] for p in pods), "endpoints")
    ep = get_json(kubectl, "endpoints", "agent", "-n", namespace)
    assert ep["subsets"][0]["ports"] == [{"name": "m", "port": 9100, "protocol": "TCP"}]


@pytest.mark.simcluster(NEEDS_KUBELET_EXEC)
def test_exec_with_a_terminal(
    kubectl: Kubectl, kubeconfig: str, kubectl_cache_dir: str, namespace: str
) -> None:
    running_pod(kubectl, "tty", namespace)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    script = "stty size; tty; read x; echo got:$x; exit 5"
    proc = subprocess.Popen(
        kubectl_argv(
            kubeconfig,
            kubectl_cache_dir,
            "exec",
            "-it",
            "tty",
            "-n",
            namespace,
            "--",
            "sh",
            "-c",
            script,
        ),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + LINE_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], POLL_S)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: kubectl exited and closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            if b"/dev/pts/" in out and not sent:
                os.write(master, b"hello\r")
                sent = True
        assert proc.wait(timeout=PROC_STOP_TIMEOUT_S) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = out.decode(errors="replace")
    assert "33 111\r\n" in text  # kubectl's terminal size reached the command through resize
    assert "got:hello" in text and "command terminated with exit code 5" in text


@pytest.mark.simcluster(NEEDS_KUBELET_LOGS)
def test_container_restart_keeps_previous_logs(
    kubectl: Kubectl, kubeconfig: str, namespace: str
) -> None:
    running_pod(kubectl, "crashy", namespace)
    admin(kubeconfig, "pod-log", "append", namespace, "crashy", "before the crash")
    admin(kubeconfig, "pod", "exit", namespace, "crashy", "main", "1")
    admin(kubeconfig, "pod-log", "append", namespace, "crashy", "after the restart")
    assert kubectl("logs", "crashy", "-n", namespace).stdout == "after the restart\n"
    previous = kubectl("logs", "crashy", "-n", namespace, "--previous").stdout
    assert previous == "before the crash\n"
    status = get_json(kubectl, "pod", "crashy", "-n", namespace)["status"]
    [cs] = status["containerStatuses"]
    assert cs["restartCount"] == 1 and cs["lastState"]["terminated"]["exitCode"] == 1
