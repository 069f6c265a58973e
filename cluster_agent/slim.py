"""What the agent keeps of each watched object: only the fields the server shows or the stats
need, so thousands of pods and events stay small in memory and on the wire."""

from __future__ import annotations

from typing import Any

from cluster_agent import quantity

MAX_EVENT_MESSAGE_CHARS = 1024
MAX_LABEL_CHARS = 256
MAX_LABELS = 64
MAX_CONDITION_MESSAGE_CHARS = 256
TERMINAL_POD_PHASES = frozenset({"Succeeded", "Failed"})
STAT_RESOURCES = ("cpu", "memory")


def _strs(d: Any, limit: int = MAX_LABELS) -> dict[str, str]:
    if not isinstance(d, dict):
        return {}
    return {str(k)[:MAX_LABEL_CHARS]: str(v)[:MAX_LABEL_CHARS] for k, v in list(d.items())[:limit]}


def node(obj: dict[str, Any]) -> dict[str, Any]:
    """The fields of :class:`rancher_tunnel.messages.NodeInfo`."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    info = status.get("nodeInfo") or {}
    return {
        "name": str(meta.get("name", "")),
        "labels": _strs(meta.get("labels")),
        "capacity": _strs(status.get("capacity")),
        "allocatable": _strs(status.get("allocatable")),
        "conditions": [
            {"type": str(c.get("type", "")), "status": str(c.get("status", "")),
             "reason": str(c.get("reason") or ""),
             "message": str(c.get("message") or "")[:MAX_CONDITION_MESSAGE_CHARS],
             "lastTransitionTime": str(c.get("lastTransitionTime") or "")}
            for c in status.get("conditions") or [] if isinstance(c, dict)
        ],
        "kubelet_version": str(info.get("kubeletVersion", "")),
        "container_runtime_version": str(info.get("containerRuntimeVersion", "")),
        "os_image": str(info.get("osImage", "")),
        "kernel_version": str(info.get("kernelVersion", "")),
        "operating_system": str(info.get("operatingSystem", "")),
        "architecture": str(info.get("architecture", "")),
        "addresses": [
            {"type": str(a.get("type", "")), "address": str(a.get("address", ""))}
            for a in status.get("addresses") or [] if isinstance(a, dict)
        ],
        "taints": [
            {"key": str(t.get("key", "")), "value": str(t.get("value") or ""),
             "effect": str(t.get("effect", ""))}
            for t in spec.get("taints") or [] if isinstance(t, dict)
        ],
        "unschedulable": bool(spec.get("unschedulable", False)),
    }


def _container_sum(containers: Any, which: str) -> dict[str, float]:
    out = dict.fromkeys(STAT_RESOURCES, 0.0)
    for c in containers or []:
        values = ((c or {}).get("resources") or {}).get(which) or {}
        for r in STAT_RESOURCES:
            if r in values:
                out[r] += quantity.parse(values[r])
    return out


def pod(obj: dict[str, Any]) -> dict[str, Any]:
    """Where a pod runs and what it requests and limits (as the scheduler counts: the sum of its
    containers, or its largest init container if larger; terminal pods count nothing)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = str(status.get("phase") or "")
    out: dict[str, Any] = {"node": str(spec.get("nodeName") or ""), "phase": phase}
    for which in ("requests", "limits"):
        total = _container_sum(spec.get("containers"), which)
        for init in spec.get("initContainers") or []:
            one = _container_sum([init], which)
            for r in STAT_RESOURCES:
                total[r] = max(total[r], one[r])
        out[which] = total
    out["active"] = phase not in TERMINAL_POD_PHASES
    return out


def namespace(obj: dict[str, Any]) -> dict[str, Any]:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    return {"name": str(meta.get("name", "")), "phase": str(status.get("phase") or "Active")}


def event(obj: dict[str, Any]) -> dict[str, Any]:
    """The fields of :class:`rancher_tunnel.messages.Event` (both recorders' shapes: the legacy
    one with ``firstTimestamp``/``count``, events.k8s.io's with ``eventTime``/``series``)."""
    meta = obj.get("metadata") or {}
    inv = obj.get("involvedObject") or obj.get("regarding") or {}
    series = obj.get("series") or {}
    event_time = str(obj.get("eventTime") or "")
    first = str(obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp") or event_time)
    last = str(obj.get("lastTimestamp") or obj.get("deprecatedLastTimestamp")
               or series.get("lastObservedTime") or event_time or first)
    count = obj.get("count") or series.get("count") or obj.get("deprecatedCount") or 1
    source = obj.get("source") or {}
    return {
        "namespace": str(meta.get("namespace") or ""),
        "name": str(meta.get("name") or ""),
        "uid": str(meta.get("uid") or ""),
        "type": str(obj.get("type") or "Normal"),
        "reason": str(obj.get("reason") or ""),
        "message": str(obj.get("message") or obj.get("note") or "")[:MAX_EVENT_MESSAGE_CHARS],
        "object": {k: str(inv.get(k) or "") for k in ("kind", "namespace", "name", "uid")},
        "count": int(count) if isinstance(count, int) else 1,
        "first_seen": first,
        "last_seen": last,
        "source": str(source.get("component") or obj.get("reportingComponent")
                      or obj.get("reportingController") or ""),
    }
