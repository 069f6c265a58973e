"""Node heartbeats (Lease renewals, lastHeartbeatTime), and the admin endpoints and command
line that add, stop, restart and remove nodes and append pod logs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from kubesim.sim import SimContext
from kubesim.store import Store

from .conftest import SimServer, running_pod, wait_for

pytestmark = pytest.mark.timeout(30)
CLI_TIMEOUT_S = 20.0


def ready_condition(store: Store, node: str) -> dict[str, str]:
    n = store.get_item("", "nodes", None, node)
    assert n is not None
    return next(c for c in n["status"]["conditions"] if c["type"] == "Ready")


async def test_heartbeats_renew_lease_and_node_status(store: Store, sim: SimContext) -> None:
    node = store.get_item("", "nodes", None, "node-0")
    assert node is not None
    assert node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == ""
    assert (
        "node-role.kubernetes.io/control-plane"
        not in ((store.get_item("", "nodes", None, "node-1") or {})["metadata"]["labels"])
    )
    assert node["status"]["allocatable"]["pods"] == "110"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0"
    lease = store.get_item("coordination.k8s.io", "leases", "kube-node-lease", "node-0")
    assert lease is not None and lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    renew = lease["spec"]["renewTime"]
    rv = node["metadata"]["resourceVersion"]
    await wait_for(
        lambda: (
            store.get_item("coordination.k8s.io", "leases", "kube-node-lease", "node-0")["spec"][
                "renewTime"
            ]
            != renew
        ),
        what="lease renewal",
    )
    await wait_for(
        lambda: (
            (store.get_item("", "nodes", None, "node-0") or {})["metadata"]["resourceVersion"] != rv
        ),
        what="node status heartbeat",
    )
    # a NotReady node stops heartbeating
    sim.nodes.set_ready("node-1", False)
    stopped = store.get_item("coordination.k8s.io", "leases", "kube-node-lease", "node-1")
    assert stopped is not None
    await asyncio.sleep(0.3)
    again = store.get_item("coordination.k8s.io", "leases", "kube-node-lease", "node-1")
    assert again is not None and again["spec"]["renewTime"] == stopped["spec"]["renewTime"]
    assert ready_condition(store, "node-1")["status"] == "Unknown"
    sim.nodes.set_ready("node-1", True)
    assert ready_condition(store, "node-1")["status"] == "True"
    await wait_for(
        lambda: (
            store.get_item("coordination.k8s.io", "leases", "kube-node-lease", "node-1")["spec"][
                "renewTime"
            ]
            != stopped["spec"]["renewTime"]
        ),
        what="renewal resumed",
    )


async def test_admin_endpoints(sim_server: SimServer) -> None:
    srv = sim_server
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{srv.url}/_kubesim/nodes", json={"name": "extra"}) as r:
            assert r.status == 201 and (await r.json())["metadata"]["name"] == "extra"
        async with s.post(f"{srv.url}/_kubesim/nodes", json={"name": "extra"}) as r:
            assert r.status == 409
        async with s.post(f"{srv.url}/_kubesim/nodes", data="nope") as r:
            assert r.status == 400
        async with s.post(f"{srv.url}/_kubesim/nodes/extra/notready") as r:
            assert r.status == 200
        assert ready_condition(srv.store, "extra")["status"] == "Unknown"
        async with s.get(f"{srv.url}/_kubesim/nodes") as r:
            assert {"name": "extra", "ready": False} in (await r.json())["nodes"]
        async with s.post(f"{srv.url}/_kubesim/nodes/extra/ready") as r:
            assert r.status == 200
        assert ready_condition(srv.store, "extra")["status"] == "True"
        async with s.delete(f"{srv.url}/_kubesim/nodes/extra") as r:
            assert r.status == 200
        assert srv.store.get_item("", "nodes", None, "extra") is None
        async with s.delete(f"{srv.url}/_kubesim/nodes/extra") as r:
            assert r.status == 404
        async with s.post(f"{srv.url}/_kubesim/nodes/missing/notready") as r:
            assert r.status == 404


async def test_admin_command_line(sim_server: SimServer, tmp_path: Path) -> None:
    srv = sim_server
    await running_pod(srv.store, "p")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sim",
                "clusters": [{"name": "sim", "cluster": {"server": srv.url}}],
                "users": [{"name": "admin", "user": {}}],
                "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "admin"}}],
            }
        )
    )

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kubesim.sim.admin",
            "--kubeconfig",
            str(kubeconfig),
            *args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT_S)
        assert proc.returncode is not None
        return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())

    assert (await cli("node", "add", "cli-node")).returncode == 0
    assert srv.store.get_item("", "nodes", None, "cli-node") is not None
    assert (await cli("node", "notready", "cli-node")).returncode == 0
    assert ready_condition(srv.store, "cli-node")["status"] == "Unknown"
    assert (await cli("node", "ready", "cli-node")).returncode == 0
    assert (await cli("node", "remove", "cli-node")).returncode == 0
    missing = await cli("node", "remove", "cli-node")
    assert missing.returncode == 1 and json.loads(missing.stderr)["code"] == 404
    assert (await cli("pod-log", "append", "default", "p", "via cli")).returncode == 0
    assert (await cli("pod-log", "append", "default", "p", "main", "again")).returncode == 0
    assert (await cli("pod-log", "append", "default", "p", "nope", "x")).returncode == 1
    assert (await cli("pod-log", "append", "default", "ghost", "x")).returncode == 1
    _, lines = srv.ctx.logs.get("default", "p", "main").snapshot()
    assert [ln.data for ln in lines] == [b"via cli\n", b"again\n"]
    assert (await cli("pod", "exit", "default", "p", "main", "3")).returncode == 0
    pod = srv.store.get_item("", "pods", "default", "p")
    assert pod is not None and pod["status"]["containerStatuses"][0]["restartCount"] == 1


async def test_node_deleted_through_the_api(store: Store, sim: SimContext) -> None:
    await running_pod(store, "doomed")
    pod = store.get_item("", "pods", "default", "doomed")
    assert pod is not None
    node = pod["spec"]["nodeName"]
    store.delete_item("", "nodes", None, node)
    assert node not in sim.nodes.nodes
    assert store.get_item("coordination.k8s.io", "leases", "kube-node-lease", node) is None
    await wait_for(lambda: store.get_item("", "pods", "default", "doomed") is None, what="pod GC")
    sim.nodes.add(node)  # the name can be used again
    assert ready_condition(store, node)["status"] == "True"
