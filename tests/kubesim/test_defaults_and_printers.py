"""Defaulting and table cells that kubectl users see (checked against kube's printers and
SetDefaults_* functions)."""

from __future__ import annotations

from typing import Any

import pytest

from kubesim.defaults import apply_defaults
from kubesim.resources import Registry, ResourceType
from kubesim.tables import _node_status


def node(ready: str | None, unschedulable: bool = False) -> dict[str, Any]:
    conds = [] if ready is None else [{"type": "Ready", "status": ready}]
    return {"spec": {"unschedulable": unschedulable}, "status": {"conditions": conds}}


@pytest.mark.parametrize(
    ("ready", "shown"),
    [
        ("True", "Ready"),
        ("False", "NotReady"),
        ("Unknown", "NotReady"),
        (None, "Unknown"),
    ],
)
def test_node_status_column(ready: str | None, shown: str) -> None:
    assert _node_status(node(ready)) == shown
    assert _node_status(node(ready, unschedulable=True)) == shown + ",SchedulingDisabled"


def _rt(group: str, resource: str) -> ResourceType:
    rt = Registry().by_group_resource(group, resource)
    assert rt is not None
    return rt


def test_apps_defaults() -> None:
    ds: dict[str, Any] = {"metadata": {"name": "d"}, "spec": {}}
    apply_defaults(_rt("apps", "daemonsets"), ds, lambda: "10.0.0.1")
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    dep: dict[str, Any] = {"metadata": {"name": "d"}, "spec": {"strategy": {"type": "Recreate"}}}
    apply_defaults(_rt("apps", "deployments"), dep, lambda: "10.0.0.1")
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["progressDeadlineSeconds"] == 600


def test_pods_get_default_toleration_seconds() -> None:
    pod: dict[str, Any] = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    apply_defaults(_rt("", "pods"), pod, lambda: "10.0.0.1")
    keys = {t["key"]: t["tolerationSeconds"] for t in pod["spec"]["tolerations"]}
    assert keys == {"node.kubernetes.io/not-ready": 300, "node.kubernetes.io/unreachable": 300}
