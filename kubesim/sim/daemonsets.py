"""daemonset-controller: one pod per eligible node, pinned by node affinity, with the
tolerations the real controller adds; status counters and ``SuccessfulCreate`` events."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from kubesim.sim.events import DAEMONSET_CONTROLLER, EventRecorder
from kubesim.sim.podutil import node_matches, pod_active, pod_ready, untolerated_taint
from kubesim.sim.replicasets import owner_key, pod_from_template
from kubesim.sim.store_api import Obj, Store
from kubesim.sim.util import (
    controller_ref,
    controller_uid,
    name_of,
    namespace_of,
    stable_hash,
    uid_of,
)
from kubesim.sim.workqueue import Key

DAEMON_TOLERATIONS: list[Obj] = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def _with_daemon_tolerations(spec: Obj) -> Obj:
    spec = copy.deepcopy(spec)
    tols = list(spec.get("tolerations") or [])
    for t in DAEMON_TOLERATIONS:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tols):
            tols.append(dict(t))
    spec["tolerations"] = tols
    return spec


def _pinned_node(pod: Obj) -> str:
    terms = ((pod.get("spec", {}).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution", {}
    ).get("nodeSelectorTerms") or []
    for term in terms:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("values"):
                return str(f["values"][0])
    return str(pod.get("spec", {}).get("nodeName") or "")


class DaemonSetController:
    name = "daemonset"

    def __init__(self, store: Store, events: EventRecorder) -> None:
        self._store = store
        self._events = events

    def keys_for(self, event_type: str, group: str, resource: str, obj: Obj) -> Iterable[Key]:
        if group == "apps" and resource == "daemonsets" and event_type != "DELETED":
            return [(namespace_of(obj), name_of(obj))]
        if group == "" and resource == "pods":
            return owner_key(obj, "DaemonSet")
        if group == "" and resource == "nodes":
            return [
                (namespace_of(ds), name_of(ds))
                for ds in self._store.list_items("apps", "daemonsets")
            ]
        return []

    def reconcile(self, key: Key) -> float | None:
        ds = self._store.get_item("apps", "daemonsets", key[0], key[1])
        if ds is None or ds.get("metadata", {}).get("deletionTimestamp"):
            return None
        template = ds.get("spec", {}).get("template") or {}
        pod_spec = _with_daemon_tolerations(template.get("spec") or {})
        uid = uid_of(ds)
        pods = [
            p
            for p in self._store.list_items("", "pods", key[0])
            if controller_uid(p) == uid and pod_active(p)
        ]
        by_node: dict[str, list[Obj]] = {}
        for p in pods:
            by_node.setdefault(_pinned_node(p), []).append(p)
        nodes = self._store.list_items("", "nodes")
        should_run = {
            name_of(n)
            for n in nodes
            if node_matches(pod_spec, n) and untolerated_taint(pod_spec, n) is None
        }
        may_stay = {name_of(n) for n in nodes if node_matches(pod_spec, n)}
        generation = int(ds.get("metadata", {}).get("generation", 1))
        rev_hash = stable_hash(str(template), 10)
        ref = controller_ref(ds, "apps/v1", "DaemonSet")
        for node in sorted(should_run - set(by_node)):
            spec = copy.deepcopy(pod_spec)
            spec["affinity"] = {
                **(spec.get("affinity") or {}),
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": [node]}
                                ]
                            }
                        ]
                    }
                },
            }
            pod = pod_from_template(
                ds,
                {**template, "spec": spec},
                ref,
                {
                    "controller-revision-hash": rev_hash,
                    "pod-template-generation": str(generation),
                },
            )
            created = self._store.create_item("", "pods", pod)
            self._events.legacy(
                ds,
                "apps/v1",
                "DaemonSet",
                "SuccessfulCreate",
                f"Created pod: {name_of(created)}",
                component=DAEMONSET_CONTROLLER,
            )
        for node, node_pods in by_node.items():
            extra = node_pods[1:] if node in may_stay else node_pods
            for p in extra:
                self._store.delete_item("", "pods", key[0], name_of(p))
                self._events.legacy(
                    ds,
                    "apps/v1",
                    "DaemonSet",
                    "SuccessfulDelete",
                    f"Deleted pod: {name_of(p)}",
                    component=DAEMONSET_CONTROLLER,
                )
        self._write_status(ds, should_run)
        return None

    def _write_status(self, ds: Obj, should_run: set[str]) -> None:
        uid = uid_of(ds)
        pods = [
            p
            for p in self._store.list_items("", "pods", namespace_of(ds))
            if controller_uid(p) == uid and pod_active(p)
        ]
        scheduled = {_pinned_node(p) for p in pods}
        ready = sum(1 for p in pods if pod_ready(p) and _pinned_node(p) in should_run)
        current = len(scheduled & should_run)
        status: Obj = {
            "currentNumberScheduled": current,
            "numberMisscheduled": len(scheduled - should_run),
            "desiredNumberScheduled": len(should_run),
            "numberReady": ready,
            "observedGeneration": ds.get("metadata", {}).get("generation", 1),
            "updatedNumberScheduled": current,
        }
        if ready:
            status["numberAvailable"] = ready
        if len(should_run) - ready > 0:
            status["numberUnavailable"] = len(should_run) - ready
        if ds.get("status") == status:
            return
        new = copy.deepcopy(ds)
        new["status"] = status
        self._store.update_item("apps", "daemonsets", new, subresource="status")
