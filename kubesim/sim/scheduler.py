"""default-scheduler: binds pending pods to Ready nodes (least loaded first)."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable

from kubesim.sim.events import EventRecorder
from kubesim.sim.nodes import node_is_ready
from kubesim.sim.podutil import node_matches, pod_active, untolerated_taint
from kubesim.sim.store_api import Obj, Store
from kubesim.sim.util import condition, name_of, namespace_of, rfc3339
from kubesim.sim.workqueue import Key

SCHEDULER_NAME = "default-scheduler"


def _wants_us(pod: Obj) -> bool:
    spec = pod.get("spec", {})
    return (
        not spec.get("nodeName")
        and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME
        and pod_active(pod)
    )


class Scheduler:
    name = "scheduler"

    def __init__(self, store: Store, events: EventRecorder) -> None:
        self._store = store
        self._events = events

    def keys_for(self, event_type: str, group: str, resource: str, obj: Obj) -> Iterable[Key]:
        if group != "":
            return []
        if resource == "pods" and event_type != "DELETED" and _wants_us(obj):
            return [(namespace_of(obj), name_of(obj))]
        if resource == "nodes":
            return [
                (namespace_of(p), name_of(p))
                for p in self._store.list_items("", "pods")
                if _wants_us(p)
            ]
        return []

    def reconcile(self, key: Key) -> float | None:
        pod = self._store.get_item("", "pods", key[0], key[1])
        if pod is None or not _wants_us(pod):
            return None
        spec = pod.get("spec", {})
        nodes = self._store.list_items("", "nodes")
        reasons: Counter[str] = Counter()
        fits: list[Obj] = []
        for node in nodes:
            taint = untolerated_taint(spec, node)
            if node.get("spec", {}).get("unschedulable"):
                reasons["node(s) were unschedulable"] += 1
            elif taint is not None:
                value = taint.get("value") or ""
                reasons[f"node(s) had untolerated taint {{{taint.get('key')}: {value}}}"] += 1
            elif not node_is_ready(node):
                reasons["node(s) were not ready"] += 1
            elif not node_matches(spec, node):
                reasons["node(s) didn't match Pod's node affinity/selector"] += 1
            else:
                fits.append(node)
        if not fits:
            self._unschedulable(pod, len(nodes), reasons)
            return None
        load = Counter(
            p.get("spec", {}).get("nodeName")
            for p in self._store.list_items("", "pods")
            if pod_active(p)
        )
        target = min(fits, key=lambda n: (load[name_of(n)], name_of(n)))
        self._bind(pod, name_of(target))
        return None

    def _bind(self, pod: Obj, node: str) -> None:
        """What POST pods/binding does: spec.nodeName, then the PodScheduled condition."""
        new = copy.deepcopy(pod)
        new["spec"]["nodeName"] = node
        bound = self._store.update_item("", "pods", new)
        bound = copy.deepcopy(bound)
        _set_pod_scheduled(bound.setdefault("status", {}), "True")
        bound = self._store.update_item("", "pods", bound, subresource="status")
        self._events.scheduler(
            bound,
            "Scheduled",
            f"Successfully assigned {namespace_of(pod)}/{name_of(pod)} to {node}",
            "Binding",
            "Normal",
        )

    def _unschedulable(self, pod: Obj, total: int, reasons: Counter[str]) -> None:
        if total == 0:
            message = "no nodes available to schedule pods"
        else:
            parts = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
            message = (
                f"0/{total} nodes are available: {parts}. preemption: 0/{total} nodes are "
                f"available: {total} Preemption is not helpful for scheduling."
            )
        old = condition(pod, "PodScheduled")
        if old is not None and old.get("message") == message:
            return
        new = copy.deepcopy(pod)
        _set_pod_scheduled(
            new.setdefault("status", {}), "False", reason="Unschedulable", message=message
        )
        updated = self._store.update_item("", "pods", new, subresource="status")
        self._events.scheduler(updated, "FailedScheduling", message, "Scheduling", "Warning")


def _set_pod_scheduled(status: Obj, value: str, **why: str) -> None:
    """Replace the PodScheduled condition (now last in the list) with one set to ``value``."""
    conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conds.append(
        {
            "type": "PodScheduled",
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339(),
            **why,
        }
    )
    status["conditions"] = conds
