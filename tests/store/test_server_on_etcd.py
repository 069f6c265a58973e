"""The whole server on etcd: two server processes on one etcd share users, tokens, clusters and
bindings; kubectl through a replica reaches a cluster imported through it; a token revoked on one
replica is refused on the other within a second."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.kube import KubeSimProc, kubectl
from tests.procs import AgentProc, ServerProc, free_port, wait_until
from tests.rest import ApiError, Rest
from tests.store.conftest import EtcdMember

ADMIN_PASSWORD = "admin-password-for-etcd-1"
REVOKED_WITHIN_S = 1.0


def replica(tmp_path: Path, name: str, etcd: EtcdMember) -> ServerProc:
    proc = ServerProc(tmp_path / name, tmp_path / f"{name}.log", port=free_port(),
                      env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD})
    proc.extra_args = ["--store", etcd.url]
    return proc.start()


def test_two_replicas_share_one_etcd(tmp_path: Path) -> None:
    # An etcd of its own: the server uses etcd's whole keyspace, and other tests (migration)
    # write servers' states into the shared member.
    etcd_member = EtcdMember(tmp_path / "etcd")
    etcd_member.start()
    sim = KubeSimProc(tmp_path / "sim", ["--nodes", "1", "--authorization-mode", "RBAC"]).start()
    a = replica(tmp_path, "a", etcd_member)
    b = replica(tmp_path, "b", etcd_member)
    agent: AgentProc | None = None
    try:
        on_a = Rest(a.url, a.ca_path)
        on_a.token = on_a.login("admin", ADMIN_PASSWORD)
        reg = on_a.call("POST", "/v3/clusters", {"name": f"etcd-{time.monotonic_ns()}"})
        agent = AgentProc({"CATTLE_SERVER": a.url, "CATTLE_TOKEN": reg["registrationToken"],
                           "CATTLE_CA_CHECKSUM": a.ca_checksum}, tmp_path / "agent.log",
                          args=["import", "--kubeconfig", str(sim.kubeconfig)]).start()
        wait_until(lambda: on_a.call("GET", f"/v3/clusters/{reg['id']}")["state"] == "active",
                   30, 0.2, what="the agent connected to replica a")
        kc = tmp_path / "admin.kubeconfig"
        kc.write_text(on_a.call("POST", f"/v3/clusters/{reg['id']}?action=generateKubeconfig")
                      ["config"])
        wait_until(lambda: kubectl(kc, "get", "nodes", check=False).returncode == 0, 20, 0.5,
                   what="kubectl through replica a")
        # Replica b sees the same state: the same admin, the cluster, a's tokens.
        on_b = Rest(b.url, b.ca_path)
        assert [c["id"] for c in on_b.call("GET", "/v3/clusters", token=on_a.token)["data"]] \
            == [reg["id"]]
        user = on_b.call("POST", "/v3/users", {"username": "shared", "password":
                                                "user-password-for-etcd-1"},
                         token=on_a.token)
        assert any(u["id"] == user["id"] for u in on_a.call("GET", "/v3/users")["data"])
        # A token revoked on b is refused on a within a second.
        tok = on_a.call("POST", "/v3/tokens", {"description": "to revoke"})
        probe = Rest(a.url, a.ca_path, token=tok["token"])
        probe.call("GET", "/v3/clusters")
        on_b.call("DELETE", f"/v3/tokens/{tok['id']}", token=on_a.token)
        t0 = time.monotonic()

        def refused() -> bool:
            try:
                probe.call("GET", "/v3/clusters")
            except ApiError as e:
                return e.status == 401
            return False

        wait_until(refused, REVOKED_WITHIN_S * 5, 0.02, what="revocation on the other replica")
        assert time.monotonic() - t0 < REVOKED_WITHIN_S
    finally:
        if agent is not None:
            agent.stop()
        b.stop()
        a.stop()
        sim.stop()
        etcd_member.stop()


@pytest.mark.parametrize("bad", ["etcd://", "postgres://db"])
def test_bad_store_url_is_one_line(tmp_path: Path, bad: str) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "rancher_server", "--data-dir", str(tmp_path),
                          "--store", bad], check=False, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
