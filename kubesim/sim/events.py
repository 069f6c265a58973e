"""Events as the real components record them, written to the core v1 ``events`` resource.

Controllers and kubelet use the legacy recorder (``source.component``, ``firstTimestamp``,
``count``); the scheduler uses the events.k8s.io recorder, whose core v1 view carries
``eventTime``, ``action`` and ``reportingComponent`` instead."""

from __future__ import annotations

import time
from typing import Any

from kubesim.sim.store_api import Obj, Store
from kubesim.sim.util import micro_time, name_of, namespace_of, now, rfc3339, uid_of
from rancher_tunnel.logs import get_logger

log = get_logger(component="kubesim.sim.events")

SCHEDULER = "default-scheduler"
KUBELET = "kubelet"
DEPLOYMENT_CONTROLLER = "deployment-controller"
REPLICASET_CONTROLLER = "replicaset-controller"
DAEMONSET_CONTROLLER = "daemonset-controller"
NODE_CONTROLLER = "node-controller"


def involved(obj: Obj, api_version: str, kind: str) -> Obj:
    ref: Obj = {"kind": kind, "namespace": namespace_of(obj), "name": name_of(obj)}
    ref["uid"] = uid_of(obj)
    ref["apiVersion"] = api_version
    ref["resourceVersion"] = str(obj.get("metadata", {}).get("resourceVersion", ""))
    if not ref["namespace"]:
        del ref["namespace"]
    return ref


class EventRecorder:
    """Writes Events; a failure to record is logged, never raised (as client-go's recorder)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._last_nanos = 0

    def _event_name(self, obj: Obj) -> str:
        """kube's recorder names events "<object name>.<unix nanos in hex>", so listing them by
        name lists them in the order they happened (kept strictly increasing here)."""
        self._last_nanos = max(time.time_ns(), self._last_nanos + 1)
        return f"{name_of(obj)}.{self._last_nanos:x}"

    def legacy(
        self,
        obj: Obj,
        api_version: str,
        kind: str,
        reason: str,
        message: str,
        *,
        component: str,
        host: str = "",
        event_type: str = "Normal",
        field_path: str = "",
    ) -> None:
        ts = rfc3339()
        source: dict[str, Any] = {"component": component}
        if host:
            source["host"] = host
        ns = namespace_of(obj) or "default"
        ref = involved(obj, api_version, kind)
        if field_path:
            ref["fieldPath"] = field_path
        event: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": self._event_name(obj), "namespace": ns},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": event_type,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        self._write(event)

    def scheduler(self, pod: Obj, reason: str, message: str, action: str, event_type: str) -> None:
        event: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": self._event_name(pod), "namespace": namespace_of(pod)},
            "involvedObject": involved(pod, "v1", "Pod"),
            "reason": reason,
            "message": message,
            "source": {},
            "firstTimestamp": None,
            "lastTimestamp": None,
            "type": event_type,
            "eventTime": micro_time(now()),
            "action": action,
            "reportingComponent": SCHEDULER,
            "reportingInstance": f"{SCHEDULER}-kubesim",
        }
        self._write(event)

    def _write(self, event: Obj) -> None:
        try:
            self._store.create_item("", "events", event)
        except Exception as exc:  # a lost event must never break a controller
            log.warning("event not recorded", reason=event["reason"], error=str(exc))
