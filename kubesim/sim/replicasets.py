"""replicaset-controller: keeps ``spec.replicas`` pods per ReplicaSet and reports its status."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from kubesim.sim.events import REPLICASET_CONTROLLER, EventRecorder
from kubesim.sim.podutil import pod_active, pod_ready
from kubesim.sim.store_api import Obj, Store
from kubesim.sim.util import controller_ref, controller_uid, name_of, namespace_of, uid_of
from kubesim.sim.workqueue import Key


def owner_key(obj: Obj, kind: str) -> list[Key]:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return [(namespace_of(obj), str(ref.get("name")))]
    return []


def pod_from_template(
    owner: Obj, template: Obj, owner_ref: Obj, extra_labels: dict[str, str]
) -> Obj:
    tmeta = template.get("metadata") or {}
    md: Obj = {"generateName": f"{name_of(owner)}-", "namespace": namespace_of(owner)}
    labels = dict(tmeta.get("labels") or {})
    labels.update(extra_labels)
    if labels:
        md["labels"] = labels
    if tmeta.get("annotations"):
        md["annotations"] = dict(tmeta["annotations"])
    md["ownerReferences"] = [owner_ref]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": md,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def _deletion_rank(pod: Obj) -> tuple[int, int, str]:
    """Delete unscheduled, then not ready, then newest first (as the controller ranks)."""
    scheduled = 1 if pod.get("spec", {}).get("nodeName") else 0
    ready = 1 if pod_ready(pod) else 0
    created = str(pod.get("metadata", {}).get("creationTimestamp", ""))
    return (scheduled, ready, "".join(chr(0x10FFFF - ord(ch)) for ch in created))


class ReplicaSetController:
    name = "replicaset"

    def __init__(self, store: Store, events: EventRecorder) -> None:
        self._store = store
        self._events = events

    def keys_for(self, event_type: str, group: str, resource: str, obj: Obj) -> Iterable[Key]:
        if group == "apps" and resource == "replicasets" and event_type != "DELETED":
            return [(namespace_of(obj), name_of(obj))]
        if group == "" and resource == "pods":
            return owner_key(obj, "ReplicaSet")
        return []

    def owned_pods(self, rs: Obj) -> list[Obj]:
        uid = uid_of(rs)
        return [
            p
            for p in self._store.list_items("", "pods", namespace_of(rs))
            if controller_uid(p) == uid and pod_active(p)
        ]

    def reconcile(self, key: Key) -> float | None:
        rs = self._store.get_item("apps", "replicasets", key[0], key[1])
        if rs is None or rs.get("metadata", {}).get("deletionTimestamp"):
            return None
        want = int(rs.get("spec", {}).get("replicas", 1))
        pods = self.owned_pods(rs)
        if len(pods) < want:
            ref = controller_ref(rs, "apps/v1", "ReplicaSet")
            for _ in range(want - len(pods)):
                pod = self._store.create_item(
                    "", "pods", pod_from_template(rs, rs["spec"].get("template") or {}, ref, {})
                )
                pods.append(pod)
                self._events.legacy(
                    rs,
                    "apps/v1",
                    "ReplicaSet",
                    "SuccessfulCreate",
                    f"Created pod: {name_of(pod)}",
                    component=REPLICASET_CONTROLLER,
                )
        elif len(pods) > want:
            doomed = sorted(pods, key=_deletion_rank)[: len(pods) - want]
            for pod in doomed:
                self._store.delete_item("", "pods", key[0], name_of(pod))
                self._events.legacy(
                    rs,
                    "apps/v1",
                    "ReplicaSet",
                    "SuccessfulDelete",
                    f"Deleted pod: {name_of(pod)}",
                    component=REPLICASET_CONTROLLER,
                )
            gone = {name_of(p) for p in doomed}
            pods = [p for p in pods if name_of(p) not in gone]
        self._update_status(rs)
        return None

    def _update_status(self, rs: Obj) -> None:
        rs = self._store.get_item("apps", "replicasets", namespace_of(rs), name_of(rs)) or rs
        pods = self.owned_pods(rs)
        template_labels = (rs.get("spec", {}).get("template", {}).get("metadata") or {}).get(
            "labels"
        ) or {}
        ready = sum(1 for p in pods if pod_ready(p))
        fully = sum(
            1
            for p in pods
            if all(
                (p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items()
            )
        )
        status: Obj = {"replicas": len(pods)}
        if fully:
            status["fullyLabeledReplicas"] = fully
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        status["observedGeneration"] = rs.get("metadata", {}).get("generation", 1)
        if rs.get("status") == status:
            return
        new = copy.deepcopy(rs)
        new["status"] = status
        self._store.update_item("apps", "replicasets", new, subresource="status")
