"""kill -9 of the replica that holds a cluster's tunnel, behind HAProxy: the agent reconnects
through the front to another replica, ownership moves, kubectl through the front works again
within 15 s, nothing written before is lost, and a watch forwarded through a live replica to
the dead one ends (kubectl's next call succeeds)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.ha.cluster import Deployment
from tests.kube import kubectl
from tests.procs import wait_until

RECOVERED_WITHIN_S = 15.0


def _kubectl_ok(kc: Path) -> bool:
    try:
        return kubectl(kc, "get", "nodes", "-o", "name", "--request-timeout=4s", check=False,
                       timeout=6).returncode == 0
    except subprocess.TimeoutExpired:  # a connection the dead replica had accepted
        return False


def test_kill_9_of_the_holder(tmp_path: Path) -> None:
    with Deployment(tmp_path, replicas=3, front=True) as d:
        api = d.front_rest()
        cluster_id = d.import_cluster()
        holder_name = d.holder(cluster_id)
        holder = next(r for r in d.replicas if r.name == holder_name)
        d.wait_owner(cluster_id, holder)
        others = [r for r in d.replicas if r is not holder]
        kc = d.kubeconfig(cluster_id, via=others[0])  # a replica that forwards to the holder
        kc_front = tmp_path / "front.kubeconfig"
        kc_front.write_text(kc.read_text().replace(others[0].url, api.url))
        for _ in range(6):  # round robin over the three replicas: local and forwarded
            assert _kubectl_ok(kc_front)
        user = api.call("POST", "/v3/users", {"username": "survivor",
                                              "password": "survivor-password-1"})
        kubectl(kc_front, "create", "namespace", "before-the-kill")
        watch = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(kc), "get", "namespaces", "-w", "-o", "name",
             "--request-timeout=0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        t0 = time.monotonic()
        holder.proc.kill9()
        try:
            watch.wait(10)  # the forwarding replica ends the watch when its holder dies
        finally:
            if watch.poll() is None:
                watch.kill()
            watch.communicate(timeout=10)
        assert watch.returncode is not None
        wait_until(lambda: _kubectl_ok(kc_front), RECOVERED_WITHIN_S * 2, 0.2,
                   what="kubectl through the front after the kill")
        recovered_s = time.monotonic() - t0
        new_holder = d.holder(cluster_id)
        assert new_holder in {r.name for r in others}
        assert d.owner(cluster_id) == new_holder
        assert recovered_s < RECOVERED_WITHIN_S, recovered_s
        print(f"recovered in {recovered_s:.1f} s; holder {holder.name} -> {new_holder}")
        # Nothing lost: the user and the namespace made before the kill are there.
        assert any(u["id"] == user["id"] for u in api.call("GET", "/v3/users")["data"])
        assert "before-the-kill" in kubectl(kc_front, "get", "namespaces", "-o", "name").stdout
        for _ in range(6):
            assert _kubectl_ok(kc_front)
