"""``--audit-log-path``: kube-apiserver's audit log format, one Event per line, read while the
stand-in runs (each line is flushed as written); writes only unless told otherwise."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.kube import KubeSimProc, kubectl


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def parse_time(stamp: str) -> datetime:
    assert stamp.endswith("Z") and len(stamp) == len("2006-01-02T15:04:05.000000Z"), stamp
    return datetime.fromisoformat(stamp)


def test_kubectl_create_and_delete_are_two_lines(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    sim = KubeSimProc(tmp_path / "sim", ["--audit-log-path", str(log)]).start()
    try:
        kubectl(sim.kubeconfig, "create", "configmap", "audited", "-n", "default")
        kubectl(sim.kubeconfig, "get", "configmap", "audited", "-n", "default")  # a read: not kept
        kubectl(sim.kubeconfig, "delete", "configmap", "audited", "-n", "default")
        got = events(log)  # the stand-in still runs
    finally:
        sim.stop()
    assert [e["verb"] for e in got] == ["create", "delete"]
    create, delete = got
    for e in got:
        assert e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1"
        assert e["level"] == "Metadata" and e["stage"] == "ResponseComplete"
        assert e["user"]["username"] == "kube-admin"
        assert "system:masters" in e["user"]["groups"]
        assert "impersonatedUser" not in e
        assert e["userAgent"].startswith("kubectl/")
        assert e["sourceIPs"] == ["127.0.0.1"]
        assert parse_time(e["requestReceivedTimestamp"]) <= parse_time(e["stageTimestamp"])
    # The create's name comes from the created object, as kube-apiserver fills it in.
    ref = {"resource": "configmaps", "namespace": "default", "name": "audited", "apiVersion": "v1"}
    assert create["objectRef"] == ref and delete["objectRef"] == ref
    assert create["responseStatus"]["code"] == 201 and delete["responseStatus"]["code"] == 200
    assert create["requestURI"].startswith("/api/v1/namespaces/default/configmaps?")
    assert delete["requestURI"] == "/api/v1/namespaces/default/configmaps/audited"
    assert create["auditID"] != delete["auditID"]


def test_impersonation_refusals_and_reads_when_asked(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    sim = KubeSimProc(tmp_path / "sim", ["--audit-log-path", str(log),
                                         "--no-audit-log-mutating-only",
                                         "--authorization-mode", "RBAC"]).start()
    try:
        kc = sim.kubeconfig
        kubectl(kc, "create", "namespace", "team")
        out = kubectl(kc, "--as", "bob", "--as-group", "devs", "create", "configmap", "x",
                      "-n", "team", check=False)
        assert out.returncode != 0  # bob may not
        kubectl(kc, "get", "namespace", "team")
    finally:
        sim.stop()
    got = events(log)
    ns = next(e for e in got
              if e["verb"] == "create" and e["objectRef"]["resource"] == "namespaces")
    assert ns["objectRef"] == {"resource": "namespaces", "name": "team", "apiVersion": "v1"}
    refused = next(e for e in got if "impersonatedUser" in e and e["verb"] == "create")
    assert refused["user"]["username"] == "kube-admin"  # who authenticated
    assert refused["impersonatedUser"]["username"] == "bob"
    assert "devs" in refused["impersonatedUser"]["groups"]
    assert refused["responseStatus"]["code"] == 403
    assert refused["objectRef"] == {"resource": "configmaps", "namespace": "team",
                                    "apiVersion": "v1"}
    read = [e for e in got if e["verb"] == "get"
            and e.get("objectRef", {}).get("name") == "team"]
    assert read and read[-1]["responseStatus"]["code"] == 200
