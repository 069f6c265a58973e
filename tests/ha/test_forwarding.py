"""Replicas on one etcd forward a cluster's requests one hop to the replica that holds its
tunnel: kubectl through a replica without the agent works (get, watch, exec, logs), the answer
says which replica served it, and a request already forwarded is never forwarded again."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.ha.cluster import Deployment, ssl_context
from tests.kube import kubectl
from tests.procs import free_port, upper_echo_server, wait_until


def test_kubectl_through_a_replica_without_the_tunnel(tmp_path: Path) -> None:
    with Deployment(tmp_path, replicas=2) as d:
        a, b = d.replicas
        cluster_id = d.import_cluster(through=a)
        assert d.holder(cluster_id) == a.name
        kc_b = d.kubeconfig(cluster_id, via=b)
        assert f"server: {b.url}/k8s/clusters/{cluster_id}" in kc_b.read_text()
        out = kubectl(kc_b, "get", "nodes", "-o", "name").stdout
        assert out.strip().startswith("node/")
        # The answer was served by the holder, reached through b.
        headers = d.rest(b).raw("GET", f"/k8s/clusters/{cluster_id}/api/v1/namespaces")
        assert headers.status == 200
        assert headers.headers["X-Rancher-Replica"] == a.name
        # b's list shows the cluster as its owner recorded it, and who holds it.
        listed = d.rest(b).call("GET", "/v3/clusters")["data"]
        assert [(c["id"], c["state"], c["heldBy"]) for c in listed] == [
            (cluster_id, "active", a.name)]
        # Writes, then a watch that sees them, through b.
        kubectl(kc_b, "create", "namespace", "via-b")
        watch = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(kc_b), "get", "configmaps", "-n", "via-b", "-w",
             "-o", "name", "--request-timeout=0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.0)
            kubectl(kc_b, "create", "configmap", "seen", "-n", "via-b")
            assert watch.stdout is not None
            seen = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                line = watch.stdout.readline().strip()
                seen.append(line)
                if line == "configmap/seen":
                    break
            assert "configmap/seen" in seen
        finally:
            watch.kill()
            watch.communicate(timeout=10)
        # exec is an upgraded request: spliced through b after the 101.
        kubectl(kc_b, "run", "box", "--image=busybox", "-n", "via-b", "--restart=Never")
        wait_until(lambda: "Running" in kubectl(kc_b, "get", "pod", "box", "-n", "via-b",
                                                "-o", "jsonpath={.status.phase}").stdout,
                   20, 0.3, what="the pod runs")
        out = kubectl(kc_b, "exec", "-n", "via-b", "box", "--", "echo", "hello-through-b").stdout
        assert "hello-through-b" in out
        assert d.peer_tunnels_opened(b) >= 1
        assert d.peer_tunnels_opened(a) == 0  # a forwarded nothing: no connection from it


def test_logs_follow_and_port_forward_through_a_forwarding_replica(tmp_path: Path) -> None:
    with Deployment(tmp_path, replicas=2) as d:
        a, b = d.replicas
        cluster_id = d.import_cluster(through=a)
        kc = d.kubeconfig(cluster_id, via=b)
        echo, echo_thread = upper_echo_server()
        try:
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "streamer", "namespace": "default",
                                "annotations": {"kubesim.io/port-8080":
                                                str(echo.getsockname()[1])}},
                   "spec": {"containers": [{"name": "c", "image": "busybox",
                                            "ports": [{"containerPort": 8080}]}]}}
            kubectl(kc, "apply", "-f", "-", input=json.dumps(pod))
            wait_until(lambda: kubectl(kc, "get", "pod", "streamer", "-o",
                                       "jsonpath={.status.phase}").stdout == "Running",
                       20, 0.3, what="the pod runs")
            follow = subprocess.Popen(
                ["kubectl", "--kubeconfig", str(kc), "logs", "-f", "streamer"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(1)
                for line in ("first line", "second line"):
                    subprocess.run([sys.executable, "-m", "kubesim.sim.admin", "--kubeconfig",
                                    str(d.sim.kubeconfig), "pod-log", "append", "default",
                                    "streamer", line], check=True, capture_output=True,
                                   timeout=30)
                assert follow.stdout is not None
                assert follow.stdout.readline().strip() == "first line"
                assert follow.stdout.readline().strip() == "second line"
            finally:
                follow.terminate()
                follow.communicate(timeout=10)
            local = free_port()
            pf = subprocess.Popen(
                ["kubectl", "--kubeconfig", str(kc), "port-forward", "pod/streamer",
                 f"{local}:8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                assert pf.stdout is not None
                assert "Forwarding from" in pf.stdout.readline()
                with socket.create_connection(("127.0.0.1", local), timeout=10) as c:
                    c.sendall(b"through two replicas")
                    assert c.recv(100) == b"THROUGH TWO REPLICAS"
            finally:
                pf.terminate()
                pf.communicate(timeout=10)
        finally:
            echo.close()
            echo_thread.join(5)
        assert d.metric(b, "rancher_ha_forwarded_requests_total") >= 3
        _one_connection_mixed_and_pipelined(d, cluster_id)


def _one_connection_mixed_and_pipelined(d: Deployment, cluster_id: str) -> None:
    """On one client connection to a forwarding replica: requests for the holder (spliced onto
    one peer stream), one of the forwarder's own (handed back to aiohttp), a HEAD, a POST with
    a body, pipelined; each answered in order, by the right replica, with HSTS."""
    a, b = d.replicas
    host, port = b.url.removeprefix("https://").rsplit(":", 1)
    k8s = f"/k8s/clusters/{cluster_id}"

    def req(method: str, path: str, body: bytes = b"") -> bytes:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {d.token}\r\nAccept: application/json\r\n")
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + body

    cm = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "spliced"},
                     "data": {"x": "y" * 3000}}).encode()
    asks = [("GET", f"{k8s}/version", a), ("GET", "/v3/settings/cacerts", b),
            ("HEAD", f"{k8s}/version", a), ("POST", f"{k8s}/api/v1/namespaces/default/configmaps",
                                              a),
            ("GET", f"{k8s}/api/v1/namespaces/default/configmaps/spliced", a),
            ("GET", "/ping", b), ("GET", f"{k8s}/version", a)]
    ctx = ssl_context(b.ca_path)
    with socket.create_connection((host, int(port)), timeout=20) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as s:
        s.sendall(req("GET", f"{k8s}/version"))  # the connection is spliced from here
        s.sendall(b"".join(req(m, p, cm if m == "POST" else b"") for m, p, _ in asks))
        f = s.makefile("rb")
        for method, path, replica in [("GET", f"{k8s}/version", a), *asks]:
            status = f.readline()
            headers = {}
            while (line := f.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            body = b"" if method == "HEAD" else f.read(int(headers["content-length"]))
            assert status.split()[1] in (b"200", b"201"), (path, status, body)
            assert headers["x-rancher-replica"] == replica.name, path
            assert headers["strict-transport-security"].startswith("max-age="), path
            if path.endswith("/spliced"):
                assert json.loads(body)["data"]["x"] == "y" * 3000
