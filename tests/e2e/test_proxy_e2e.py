"""kubectl through the server's authentication proxy and the agent's tunnel, with the Kubernetes
stand-in as the downstream cluster (RBAC on), all as real processes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube import KubeSimProc, kubectl, kubectl_json
from tests.procs import AgentProc, ServerProc, free_port, upper_echo_server, wait_until
from tests.rest import ApiError, Rest

ADMIN_PASSWORD = "admin-password-for-tests-1"
USER_PASSWORD = "user-password-for-tests-1"
CONNECT_WITHIN_S = 20.0


@dataclass
class Stack:
    work: Path
    sim: KubeSimProc
    server: ServerProc
    agent: AgentProc
    admin: Rest
    cluster_id: str

    def kubeconfig_for(self, rest: Rest, name: str) -> Path:
        out = rest.call("POST", f"/v3/clusters/{self.cluster_id}?action=generateKubeconfig")
        path = self.work / f"{name}.kubeconfig"
        path.write_text(out["config"])
        return path

    def user(self, username: str, role: str | None, groups: list[str] | None = None) -> Rest:
        body = {"username": username, "password": USER_PASSWORD, "groups": groups or []}
        user = self.admin.call("POST", "/v3/users", body)
        if role is not None:
            self.admin.call(
                "POST",
                "/v3/clusterroletemplatebindings",
                {"clusterId": self.cluster_id, "roleTemplateId": role, "userId": user["id"]},
            )
        rest = Rest(self.server.url, self.server.ca_path)
        rest.token = rest.login(username, USER_PASSWORD)
        return rest


def cluster_state(rest: Rest, cluster_id: str) -> str:
    return str(rest.call("GET", f"/v3/clusters/{cluster_id}")["state"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("proxy")
    sim = KubeSimProc(work / "sim", ["--authorization-mode", "RBAC", "--nodes", "2"]).start()
    server = ServerProc(
        work / "data",
        work / "server.log",
        port=free_port(),
        env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD},
    )
    agent: AgentProc | None = None
    try:
        server.start()
        admin = Rest(server.url, server.ca_path)
        admin.token = admin.login("admin", ADMIN_PASSWORD)
        reg = admin.call("POST", "/v3/clusters", {"name": "downstream"})
        cluster_id = reg["id"]
        token = reg["registrationToken"]
        agent = AgentProc(
            {
                "CATTLE_SERVER": server.url,
                "CATTLE_TOKEN": token,
                "CATTLE_CA_CHECKSUM": server.ca_checksum,
                "CATTLE_HEALTH_INTERVAL_S": "0.5",
            },
            work / "agent.log",
            module="cluster_agent",
        )
        agent.args = ["import", "--kubeconfig", str(sim.kubeconfig)]
        agent.start()
        wait_until(
            lambda: cluster_state(admin, cluster_id) == "active",
            CONNECT_WITHIN_S,
            what="cluster active",
        )
        yield Stack(work, sim, server, agent, admin, cluster_id)
    finally:
        if agent is not None and agent.proc is not None:
            agent.stop()
        server.stop()
        sim.stop()


def test_admin_kubectl_through_the_tunnel(stack: Stack) -> None:
    kc = stack.kubeconfig_for(stack.admin, "admin")
    cfg = yaml.safe_load(kc.read_text())
    assert cfg["clusters"][0]["cluster"]["server"].endswith(f"/k8s/clusters/{stack.cluster_id}")
    nodes = kubectl_json(kc, "get", "nodes")
    assert len(nodes["items"]) == 2
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "via-proxy", "namespace": "default"},
        "data": {"k": "v"},
    }
    kubectl(kc, "apply", "-f", "-", input=json.dumps(manifest))
    got = kubectl_json(kc, "get", "configmap", "via-proxy", "-n", "default")
    assert got["data"] == {"k": "v"}
    listed = kubectl(kc, "get", "configmaps", "-n", "default").stdout
    assert "via-proxy" in listed
    kubectl(kc, "delete", "configmap", "via-proxy", "-n", "default")
    gone = kubectl(kc, "get", "configmap", "via-proxy", "-n", "default", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_whoami_is_the_impersonated_user_and_spoofing_has_no_effect(stack: Stack) -> None:
    me = stack.admin.call("GET", "/v3/users?me=true")
    my_id = me["data"][0]["id"] if "data" in me else me["id"]
    kc = stack.kubeconfig_for(stack.admin, "admin-whoami")
    who = kubectl_json(kc, "auth", "whoami")
    assert who["status"]["userInfo"]["username"] == my_id
    assert "system:authenticated" in who["status"]["userInfo"]["groups"]
    # kubectl --as sends Impersonate-User; the proxy must drop it.
    spoofed = kubectl_json(
        kc, "auth", "whoami", "--as", "system:admin", "--as-group", "system:masters"
    )
    assert spoofed["status"]["userInfo"]["username"] == my_id
    assert "system:masters" not in spoofed["status"]["userInfo"]["groups"]
    can = kubectl(kc, "auth", "can-i", "create", "pods", check=False)
    assert can.stdout.strip() == "yes"


def test_non_member_gets_403_from_the_server(stack: Stack) -> None:
    bob = stack.user("bob", None)
    kc_path = stack.work / "bob.kubeconfig"
    admin_kc = yaml.safe_load(stack.kubeconfig_for(stack.admin, "tmp").read_text())
    admin_kc["users"][0]["user"]["token"] = bob.token
    kc_path.write_text(yaml.safe_dump(admin_kc))
    out = kubectl(kc_path, "get", "namespaces", check=False)
    assert out.returncode != 0
    assert "may not access cluster" in out.stderr, out.stderr


def test_member_without_downstream_rbac_gets_downstream_403(stack: Stack) -> None:
    carol = stack.user("carol", "read-only")
    kc = stack.kubeconfig_for(carol, "carol")
    assert "NAME" in kubectl(kc, "get", "configmaps", "-n", "default").stdout
    out = kubectl(kc, "create", "configmap", "nope", "-n", "default", check=False)
    assert out.returncode != 0
    carol_id = carol.call("GET", "/v3/users?me=true")
    carol_id = carol_id["data"][0]["id"] if "data" in carol_id else carol_id["id"]
    assert "forbidden" in out.stderr.lower() and carol_id in out.stderr, out.stderr


def test_revoked_token_gets_401_on_next_request(stack: Stack) -> None:
    dave = stack.user("dave", "cluster-member")
    out = dave.call("POST", f"/v3/clusters/{stack.cluster_id}?action=generateKubeconfig")
    kc = stack.work / "dave.kubeconfig"
    kc.write_text(out["config"])
    assert kubectl(kc, "get", "configmaps", "-n", "default").returncode == 0
    token_id = (
        out.get("tokenId")
        or yaml.safe_load(out["config"])["users"][0]["user"]["token"].split(":")[0]
    )
    dave.call("DELETE", f"/v3/tokens/{token_id}")
    denied = kubectl(kc, "get", "configmaps", "-n", "default", check=False)
    assert denied.returncode != 0
    assert "Unauthorized" in denied.stderr or "logged in" in denied.stderr, denied.stderr


def test_watch_with_request_timeout_streams_events(stack: Stack) -> None:
    kc = stack.kubeconfig_for(stack.admin, "admin-watch")
    proc = subprocess.Popen(
        [
            "kubectl",
            "--kubeconfig",
            str(kc),
            "get",
            "configmaps",
            "-n",
            "default",
            "-w",
            "--request-timeout=4s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    kubectl(kc, "create", "configmap", "watched", "-n", "default")
    out, err = proc.communicate(timeout=30)
    assert "watched" in out, (out, err)
    kubectl(kc, "delete", "configmap", "watched", "-n", "default")


def test_unknown_cluster_and_bad_token(stack: Stack) -> None:
    with pytest.raises(ApiError) as e:
        stack.admin.call("GET", "/k8s/clusters/c-nosuch/api/v1/namespaces")
    assert e.value.status in (403, 404)
    with pytest.raises(ApiError) as e:
        stack.admin.call("GET", f"/k8s/clusters/{stack.cluster_id}/api", token="token-x:bad")
    assert e.value.status == 401
    assert e.value.body["kind"] == "Status" and e.value.body["reason"] == "Unauthorized"


def _wait_running(kc: Path, pod: str) -> None:
    wait_until(
        lambda: (
            kubectl_json(kc, "get", "pod", pod, "-n", "default")["status"].get("phase") == "Running"
        ),
        20,
        what=f"pod {pod} running",
    )


def test_logs_follow_exec_and_port_forward_through_the_proxy(stack: Stack) -> None:
    kc = stack.kubeconfig_for(stack.admin, "admin-stream")
    echo, echo_thread = upper_echo_server()
    try:
        port = echo.getsockname()[1]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "streamer",
                "namespace": "default",
                "annotations": {"kubesim.io/port-8080": str(port)},
            },
            "spec": {
                "containers": [
                    {"name": "c", "image": "busybox", "ports": [{"containerPort": 8080}]}
                ]
            },
        }
        kubectl(kc, "apply", "-f", "-", input=json.dumps(pod))
        _wait_running(kc, "streamer")
        # logs -f streams lines as they are written, without buffering.
        follow = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(kc), "logs", "-f", "streamer", "-n", "default"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(1)
            for line in ("first line", "second line"):
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "kubesim.sim.admin",
                        "--kubeconfig",
                        str(stack.sim.kubeconfig),
                        "pod-log",
                        "append",
                        "default",
                        "streamer",
                        line,
                    ],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
            assert follow.stdout is not None
            assert follow.stdout.readline().strip() == "first line"
            assert follow.stdout.readline().strip() == "second line"
        finally:
            follow.terminate()
            follow.communicate(timeout=10)
        # exec over the websocket upgrade, with the exit code carried back.
        ex = kubectl(
            kc,
            "exec",
            "streamer",
            "-n",
            "default",
            "--",
            "sh",
            "-c",
            "echo from-exec; exit 3",
            check=False,
        )
        assert ex.stdout.strip() == "from-exec"
        assert ex.returncode == 3, ex.stderr
        # port-forward to the pod's declared port.
        local = free_port()
        pf = subprocess.Popen(
            [
                "kubectl",
                "--kubeconfig",
                str(kc),
                "port-forward",
                "pod/streamer",
                f"{local}:8080",
                "-n",
                "default",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert pf.stdout is not None
            assert "Forwarding from" in pf.stdout.readline()
            with socket.create_connection(("127.0.0.1", local), timeout=10) as c:
                c.sendall(b"through the tunnel")
                assert c.recv(100) == b"THROUGH THE TUNNEL"
        finally:
            pf.terminate()
            pf.communicate(timeout=10)
    finally:
        echo.close()
        echo_thread.join(5)
        kubectl(kc, "delete", "pod", "streamer", "-n", "default", "--wait=false", check=False)


def test_agent_reports_health_nodes_and_stats(stack: Stack) -> None:
    def report() -> dict[str, Any]:
        got: dict[str, Any] = stack.admin.call("GET", f"/v3/clusters/{stack.cluster_id}")
        return got.get("agentReport") or {}

    wait_until(
        lambda: report().get("healthy") is True and report()["stats"].get("nodes") == 2,
        15,
        what="first health report",
    )
    r = report()
    assert r["stats"]["nodes_ready"] == 2 and r["stats"]["cpu_capacity"] > 0
    assert {n["name"] for n in r["nodes"]} == {"node-0", "node-1"}
    assert all(n["kubeletVersion"].startswith("v1.") for n in r["nodes"])
    admin = [sys.executable, "-m", "kubesim.sim.admin", "--kubeconfig", str(stack.sim.kubeconfig)]
    subprocess.run(
        [*admin, "node", "notready", "node-1"], check=True, capture_output=True, timeout=30
    )
    try:
        wait_until(
            lambda: report()["stats"].get("nodes_ready") == 1, 15, what="NotReady node reported"
        )
    finally:
        subprocess.run(
            [*admin, "node", "ready", "node-1"], check=True, capture_output=True, timeout=30
        )
    wait_until(lambda: report()["stats"].get("nodes_ready") == 2, 15, what="node ready again")


def test_oversized_body_is_refused_before_forwarding(stack: Stack) -> None:
    big = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "huge", "namespace": "default"},
        "data": {"x": "a" * (33 * 1024 * 1024)},
    }
    with pytest.raises(ApiError) as e:
        stack.admin.call(
            "POST", f"/k8s/clusters/{stack.cluster_id}/api/v1/namespaces/default/configmaps", big
        )
    assert e.value.status == 413


def test_restart_keeps_state_and_kubectl_works_when_agent_is_back(stack: Stack) -> None:
    """Run last in this module: kill -9 the server, start it again on the same data."""
    kc = stack.kubeconfig_for(stack.admin, "admin-restart")
    erin = stack.user("erin", "read-only")
    erin_kc = stack.kubeconfig_for(erin, "erin")
    stack.server.kill9()
    down = kubectl(kc, "get", "namespaces", check=False, timeout=20)
    assert down.returncode != 0
    stack.server.start()
    wait_until(
        lambda: cluster_state(stack.admin, stack.cluster_id) == "active",
        CONNECT_WITHIN_S,
        what="agent back after restart",
    )
    # The same token (users and tokens survived) works through the proxy again.
    assert "default" in kubectl(kc, "get", "namespaces").stdout
    assert kubectl(erin_kc, "get", "configmaps", "-n", "default").returncode == 0
    users = stack.admin.call("GET", "/v3/users")
    assert {"admin", "erin"} <= {u["username"] for u in users["data"]}


def test_agent_gone_gives_503_status(stack: Stack) -> None:
    stack.agent.stop()
    wait_until(
        lambda: cluster_state(stack.admin, stack.cluster_id) != "active",
        15,
        what="cluster disconnected",
    )
    with pytest.raises(ApiError) as e:
        stack.admin.call("GET", f"/k8s/clusters/{stack.cluster_id}/api/v1/namespaces")
    assert e.value.status == 503
    assert e.value.body["kind"] == "Status" and e.value.body["code"] == 503


def test_import_manifest_applies_and_runs_the_agents(stack: Stack) -> None:
    """``kubectl apply -f <manifestUrl>``: valid against the cluster's OpenAPI, and the stand-in
    schedules the cluster agent and one node agent per node."""
    reg = stack.admin.call("POST", "/v3/clusters", {"name": "by-manifest"})
    assert reg["importCommand"] == f"kubectl apply -f {reg['manifestUrl']}"
    path = reg["manifestUrl"].split("://", 1)[1].split("/", 1)[1]
    manifest = stack.admin.call_text("GET", "/" + path)
    assert reg["registrationToken"] in manifest
    kubectl(stack.sim.kubeconfig, "apply", "-f", "-", input=manifest)
    wait_until(
        lambda: (
            kubectl_json(
                stack.sim.kubeconfig,
                "get",
                "deployment",
                "cattle-cluster-agent",
                "-n",
                "cattle-system",
            )
            .get("status", {})
            .get("readyReplicas")
            == 1
        ),
        20,
        what="cluster agent deployment ready",
    )
    ds = kubectl_json(
        stack.sim.kubeconfig, "get", "daemonset", "cattle-node-agent", "-n", "cattle-system"
    )
    wait_until(
        lambda: (
            kubectl_json(
                stack.sim.kubeconfig, "get", "daemonset", "cattle-node-agent", "-n", "cattle-system"
            )["status"].get("numberReady")
            == 2
        ),
        20,
        what="a node agent per node",
    )
    assert ds["spec"]["template"]["spec"]["serviceAccountName"] == "cattle-node"
    with pytest.raises(ApiError) as e:
        stack.admin.call_text("GET", "/v3/import/not-a-token.yaml")
    assert e.value.status == 404
