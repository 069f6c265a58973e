"""The CLI with a real downstream cluster (the stand-in and a cluster agent): --wait until
active, context switch, ``rancher kubectl`` through the server, exec inside the stand-in (its
built-in shell, never the host), kubeconfig written and merged."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.kube import KubeSimProc, kubectl
from tests.procs import AgentProc, ServerProc, wait_until

from .conftest import Cli, one_error_line

pytestmark = pytest.mark.timeout(120)
CONNECT_WITHIN_S = 30.0
POD_RUNNING_WITHIN_S = 20.0


@pytest.fixture(scope="module")
def downstream(tmp_path_factory: pytest.TempPathFactory,
               server: ServerProc) -> Iterator[tuple[KubeSimProc, Cli]]:
    work = tmp_path_factory.mktemp("cli-kube")
    sim = KubeSimProc(work / "sim", ["--nodes", "2"]).start()
    user = Cli(work / "config")
    agent: AgentProc | None = None
    try:
        user.login(server)
        reg = user.json("clusters", "create", "edge")
        out = user("clusters", "create", "never", "--wait", "--timeout", "1")
        assert out.returncode == 6 and "still pending" in out.stderr.strip().splitlines()[-1]
        agent = AgentProc(
            {"CATTLE_SERVER": server.url, "CATTLE_TOKEN": reg["registrationToken"],
             "CATTLE_CA_CHECKSUM": server.ca_checksum},
            work / "agent.log", args=["import", "--kubeconfig", str(sim.kubeconfig)],
        ).start()
        user.ok("clusters", "wait", "edge", "--timeout", str(CONNECT_WITHIN_S))
        yield sim, user
    finally:
        if agent is not None:
            agent.stop()
        sim.stop()


def test_wait_context_and_kubectl_through_the_server(downstream: tuple[KubeSimProc, Cli]) -> None:
    _, user = downstream
    assert [c["state"] for c in user.json("clusters") if c["name"] == "edge"] == ["active"]
    assert user("context").returncode == 2  # none chosen yet
    user.ok("context", "switch", "edge")
    assert user.json("context")["name"] == "edge"
    assert "*" in next(line for line in user.ok("clusters").splitlines() if "edge" in line)
    nodes = json.loads(user.ok("kubectl", "get", "nodes", "-o", "json"))
    assert sorted(n["metadata"]["name"] for n in nodes["items"]) == ["node-0", "node-1"]
    failed = user("kubectl", "get", "pod", "no-such-pod")
    assert failed.returncode == 1 and "NotFound" in failed.stderr  # kubectl's own code


def test_exec_runs_in_the_stand_in_not_on_the_host(downstream: tuple[KubeSimProc, Cli]) -> None:
    sim, user = downstream
    user.ok("context", "switch", "edge")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "box", "namespace": "default"},
           "spec": {"containers": [{"name": "main", "image": "busybox"}]}}
    kubectl(sim.kubeconfig, "apply", "-f", "-", input=json.dumps(pod))
    wait_until(lambda: json.loads(kubectl(sim.kubeconfig, "get", "pod", "box", "-o", "json")
                                  .stdout)["status"].get("phase") == "Running",
               POD_RUNNING_WITHIN_S, 0.2, what="pod running")
    out = user("kubectl", "exec", "box", "--", "cat", "/etc/hostname")
    assert out.returncode == 0 and out.stdout == "box\n"
    assert out.stdout.strip() != socket.gethostname()
    out = user("kubectl", "exec", "box", "--", "cat", "/etc/passwd")
    assert out.returncode == 1 and "No such file" in out.stderr
    out = user("kubectl", "exec", "box", "--", "sh", "-c", "uname -a")
    assert out.returncode == 127 and "uname: not found" in out.stderr
    out = user("kubectl", "exec", "box", "--", "sh", "-c", "echo kept > f; cat f; exit 3")
    assert out.returncode == 3 and out.stdout == "kept\n"


def test_kubeconfig_written_and_merged(downstream: tuple[KubeSimProc, Cli],
                                       tmp_path: Path) -> None:
    _, user = downstream
    printed = yaml.safe_load(user.ok("kubeconfig", "edge"))
    assert printed["current-context"] == "edge"
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    mine = {"apiVersion": "v1", "kind": "Config", "current-context": "mine",
            "clusters": [{"name": "mine", "cluster": {"server": "https://mine:6443"}}],
            "users": [{"name": "me", "user": {"token": "t"}}],
            "contexts": [{"name": "mine", "context": {"cluster": "mine", "user": "me"}}]}
    target.write_text(yaml.safe_dump(mine))
    user.ok("kubeconfig", "edge", "--merge", "--kubeconfig", str(target))
    merged = yaml.safe_load(target.read_text())
    assert {c["name"] for c in merged["contexts"]} == {"mine", "edge"}
    assert merged["current-context"] == "mine"  # kept unless --use-context
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    user.ok("kubeconfig", "edge", "--merge", "--kubeconfig", str(target), "--use-context")
    merged = yaml.safe_load(target.read_text())
    assert merged["current-context"] == "edge" and len(merged["contexts"]) == 2  # replaced
    nodes = kubectl(target, "get", "nodes", "-o", "name").stdout.split()
    assert nodes == ["node/node-0", "node/node-1"]
    written = tmp_path / "edge.yaml"
    user.ok("kubeconfig", "edge", "--file", str(written))
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    out = user("kubeconfig", "nowhere")
    assert out.returncode == 1
    one_error_line(out)
