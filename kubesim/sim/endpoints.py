"""endpoints-controller: an Endpoints object per Service with a selector, listing the pods it
selects (ready ones under ``addresses``, the others under ``notReadyAddresses``)."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from kubesim.sim.podutil import pod_ready
from kubesim.sim.store_api import Obj, Store
from kubesim.sim.util import name_of, namespace_of, rfc3339, uid_of
from kubesim.sim.workqueue import Key

TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


def _selects(selector: dict[str, str], pod: Obj) -> bool:
    labels = pod.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _target_port(port: Obj, pod: Obj | None) -> int:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in (pod or {}).get("spec", {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return int(p.get("containerPort", 0))
    return int(port.get("port", 0))


class EndpointsController:
    name = "endpoints"

    def __init__(self, store: Store) -> None:
        self._store = store

    def keys_for(self, event_type: str, group: str, resource: str, obj: Obj) -> Iterable[Key]:
        if group != "":
            return []
        if resource == "services":
            return [(namespace_of(obj), name_of(obj))]
        if resource == "pods":
            ns = namespace_of(obj)
            return [
                (ns, name_of(svc))
                for svc in self._store.list_items("", "services", ns)
                if svc.get("spec", {}).get("selector")
            ]
        return []

    def reconcile(self, key: Key) -> float | None:
        ns, name = key
        svc = self._store.get_item("", "services", ns, name)
        current = self._store.get_item("", "endpoints", ns, name)
        if svc is None:
            if current is not None:
                self._store.delete_item("", "endpoints", ns, name)
            return None
        selector = svc.get("spec", {}).get("selector")
        if not selector:
            return None  # endpoints of a selector-less service are the user's
        pods = [
            p
            for p in self._store.list_items("", "pods", ns)
            if _selects(selector, p)
            and p.get("status", {}).get("podIP")
            and not p.get("metadata", {}).get("deletionTimestamp")
        ]
        ready: list[Obj] = []
        not_ready: list[Obj] = []
        for p in sorted(pods, key=lambda p: str(p["status"]["podIP"])):
            addr: Obj = {"ip": p["status"]["podIP"]}
            if p.get("spec", {}).get("nodeName"):
                addr["nodeName"] = p["spec"]["nodeName"]
            addr["targetRef"] = {
                "kind": "Pod",
                "namespace": ns,
                "name": name_of(p),
                "uid": uid_of(p),
            }
            (ready if pod_ready(p) else not_ready).append(addr)
        ports = []
        for sp in svc.get("spec", {}).get("ports") or []:
            port: Obj = {}
            if sp.get("name"):
                port["name"] = sp["name"]
            port["port"] = _target_port(sp, pods[0] if pods else None)
            port["protocol"] = sp.get("protocol", "TCP")
            ports.append(port)
        subset: Obj = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if subset and ports:
            subset["ports"] = ports
        subsets = [subset] if subset else None
        if current is not None and current.get("subsets") == subsets:
            return None
        md: Obj = {"name": name, "namespace": ns}
        if svc.get("metadata", {}).get("labels"):
            md["labels"] = dict(svc["metadata"]["labels"])
        md["annotations"] = {TRIGGER_ANNOTATION: rfc3339()}
        ep: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": md}
        if subsets:
            ep["subsets"] = subsets
        if current is None:
            self._store.create_item("", "endpoints", ep)
        else:
            new = copy.deepcopy(current)
            new["metadata"].setdefault("annotations", {}).update(md["annotations"])
            new.pop("subsets", None)
            if subsets:
                new["subsets"] = subsets
            self._store.update_item("", "endpoints", new)
        return None
