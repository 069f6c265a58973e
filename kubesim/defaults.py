"""Defaults applied on create (what kube-apiserver's defaulting and strategies fill in)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from .resources import ResourceType

NAMESPACE_FINALIZER = "kubernetes"
DEFAULT_TOLERATION_S = 300
DEFAULT_TOLERATION_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
REVISION_HISTORY_LIMIT = 10
PROGRESS_DEADLINE_S = 600


def _apps_defaults(resource: str, obj: dict[str, Any]) -> None:
    """apps/v1 defaulting (SetDefaults_Deployment, _DaemonSet, _ReplicaSet)."""
    spec = obj.setdefault("spec", {})
    if resource in ("deployments", "replicasets"):
        spec.setdefault("replicas", 1)
    if resource == "deployments":
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", REVISION_HISTORY_LIMIT)
        spec.setdefault("progressDeadlineSeconds", PROGRESS_DEADLINE_S)
    elif resource == "daemonsets":
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", REVISION_HISTORY_LIMIT)


def apply_defaults(
    rt: ResourceType, obj: dict[str, Any], next_service_ip: Callable[[], str]
) -> None:
    """The defaulting kube-apiserver applies on create for the core kinds."""
    if rt.group == "apps":
        _apps_defaults(rt.resource, obj)
        return
    if rt.group != "":
        return
    md = obj["metadata"]
    if rt.resource == "namespaces":
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", [NAMESPACE_FINALIZER])
        obj["status"] = {"phase": "Active"}
    elif rt.resource == "secrets":
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
        obj.setdefault("type", "Opaque")
    elif rt.resource == "pods":
        obj.setdefault("status", {}).setdefault("phase", "Pending")
        obj["status"].setdefault("qosClass", "BestEffort")
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        # The DefaultTolerationSeconds admission plugin.
        tolerations = spec.setdefault("tolerations", [])
        for key in DEFAULT_TOLERATION_KEYS:
            if not any(t.get("key") == key for t in tolerations):
                tolerations.append(
                    {
                        "key": key,
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": DEFAULT_TOLERATION_S,
                    }
                )
        for c in spec.get("containers") or []:
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault(
                "imagePullPolicy",
                "Always"
                if str(c.get("image", "")).endswith(":latest") or ":" not in str(c.get("image", ""))
                else "IfNotPresent",
            )
            c.setdefault("resources", {})
    elif rt.resource == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") != "None":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = next_service_ip()
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
