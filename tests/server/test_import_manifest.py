"""The import manifest the server renders: the node agent sees its host read-only (for its facts
and stats) and nothing more; both agents run as non-root."""

from __future__ import annotations

from typing import Any

import yaml

from rancher_server.clusters.import_manifest import import_manifest


def docs() -> dict[str, dict[str, Any]]:
    text = import_manifest("https://rancher.example.com", "tok", "0" * 64)
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(text) if d}


def test_node_agent_reads_its_host_read_only() -> None:
    ds = docs()["cattle-node-agent"]
    spec = ds["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CATTLE_HOST_ROOT"] == "/host"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(mounts) == {"/host/proc", "/host/sys", "/host/run"}
    assert all(m["readOnly"] for m in mounts.values())
    paths = {v["hostPath"]["path"] for v in spec["volumes"]}
    assert paths == {"/proc", "/sys", "/run"}  # never the host's root filesystem
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["automountServiceAccountToken"] is False
