"""The kubelets of the simulated nodes, plus what the node lifecycle and pod GC controllers do
to their pods.

A pod bound to a node with a running simulated kubelet is started at once: image events, then
status Running with a pod IP and ready containers. When the node stops heartbeating its pods'
Ready condition turns False (as ``MarkPodsNotReady`` does) and comes back when it recovers. A
pod whose node no longer exists is deleted (pod GC). Pods on a Node object that no simulated
kubelet serves stay Pending, as they would on a real cluster."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterable

from kubesim.sim.events import KUBELET, EventRecorder
from kubesim.sim.logbuf import LogBuffers
from kubesim.sim.nodes import UNREACHABLE_TAINT, NodeSim
from kubesim.sim.podutil import pod_active, pod_ready
from kubesim.sim.store_api import Obj, Store
from kubesim.sim.util import name_of, namespace_of, rfc3339
from kubesim.sim.workqueue import Key

DEFAULT_TOLERATION_S = 300.0  # DefaultTolerationSeconds for not-ready/unreachable
TAINT_EVICTION_CONTROLLER = "taint-eviction-controller"
CONDITION_ORDER = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


def full_image(image: str) -> str:
    """``busybox:1.36`` -> ``docker.io/library/busybox:1.36`` (as containerd reports it)."""
    name = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else image + ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def toleration_seconds(pod: Obj, default_s: float) -> float | None:
    """How long ``pod`` stays on an unreachable node: its toleration of
    ``node.kubernetes.io/unreachable:NoExecute`` (None = forever), else ``default_s`` (what the
    DefaultTolerationSeconds admission plugin adds)."""
    for t in pod.get("spec", {}).get("tolerations") or []:
        key_ok = t.get("key") in (UNREACHABLE_TAINT, None, "") and (
            t.get("key") or t.get("operator") == "Exists"
        )
        if key_ok and t.get("effect") in ("NoExecute", None, ""):
            seconds = t.get("tolerationSeconds")
            return None if seconds is None else float(seconds)
    return default_s


def _set_condition(status: Obj, ctype: str, value: str, ts: str) -> None:
    conds = {c["type"]: c for c in status.get("conditions") or []}
    old = conds.get(ctype)
    if old is not None and old.get("status") == value:
        return
    conds[ctype] = {"type": ctype, "status": value, "lastProbeTime": None, "lastTransitionTime": ts}
    status["conditions"] = [conds[t] for t in CONDITION_ORDER if t in conds] + [
        c for t, c in conds.items() if t not in CONDITION_ORDER
    ]


class Kubelet:
    name = "kubelet"

    def __init__(
        self,
        store: Store,
        nodes: NodeSim,
        events: EventRecorder,
        logs: LogBuffers,
        default_toleration_s: float = DEFAULT_TOLERATION_S,
    ) -> None:
        self._default_toleration_s = default_toleration_s
        self._store = store
        self._nodes = nodes
        self._events = events
        self._logs = logs

    def keys_for(self, event_type: str, group: str, resource: str, obj: Obj) -> Iterable[Key]:
        if group != "":
            return []
        if resource == "pods":
            if event_type == "DELETED":
                self._logs.drop_pod(namespace_of(obj), name_of(obj))
                return []
            if obj.get("spec", {}).get("nodeName"):
                return [(namespace_of(obj), name_of(obj))]
            return []
        if resource == "nodes":
            node = name_of(obj)
            return [
                (namespace_of(p), name_of(p))
                for p in self._store.list_items("", "pods")
                if p.get("spec", {}).get("nodeName") == node
            ]
        return []

    def reconcile(self, key: Key) -> float | None:
        pod = self._store.get_item("", "pods", key[0], key[1])
        if pod is None or not pod_active(pod):
            return None
        node_name = pod.get("spec", {}).get("nodeName")
        if not node_name:
            return None
        if self._store.get_item("", "nodes", None, node_name) is None:
            # pod GC: a pod bound to a node that no longer exists is deleted
            self._store.delete_item("", "pods", key[0], key[1])
            return None
        if node_name not in self._nodes.nodes:
            return None  # a hand-made Node: no kubelet behind it
        if not self._nodes.kubelet_running(node_name):
            if pod_ready(pod):
                self._mark_ready(pod, False)
            return self._maybe_evict(pod, node_name)
        phase = pod.get("status", {}).get("phase", "Pending")
        if phase == "Pending":
            self._start(pod, node_name)
        elif phase == "Running" and not pod_ready(pod):
            self._mark_ready(pod, True)
        return None

    def _maybe_evict(self, pod: Obj, node_name: str) -> float | None:
        """Taint-based eviction: a pod leaves an unreachable node once its toleration of the
        ``unreachable:NoExecute`` taint runs out (300 s unless the pod says otherwise)."""
        limit = toleration_seconds(pod, self._default_toleration_s)
        if limit is None:
            return None
        left = limit - self._nodes.not_ready_for_s(node_name)
        if left > 0:
            return left
        self._events.legacy(
            pod,
            "v1",
            "Pod",
            "TaintManagerEviction",
            f"Marking for deletion Pod {namespace_of(pod)}/{name_of(pod)}",
            component=TAINT_EVICTION_CONTROLLER,
        )
        self._store.delete_item("", "pods", namespace_of(pod), name_of(pod))
        return None

    def _mark_ready(self, pod: Obj, ready: bool) -> None:
        new = copy.deepcopy(pod)
        status = new.setdefault("status", {})
        ts = rfc3339()
        value = "True" if ready else "False"
        _set_condition(status, "Ready", value, ts)
        if ready:
            _set_condition(status, "ContainersReady", value, ts)
        for cs in status.get("containerStatuses") or []:
            cs["ready"] = ready
        self._store.update_item("", "pods", new, subresource="status")

    def _start(self, pod: Obj, node_name: str) -> None:
        spec = pod.get("spec", {})
        host_ip = self._nodes.nodes[node_name].internal_ip
        pod_ip = host_ip if spec.get("hostNetwork") else self._nodes.allocate_pod_ip(node_name)
        ts = rfc3339()
        for c in spec.get("initContainers") or []:
            self._container_events(pod, c, node_name)
        for c in spec.get("containers") or []:
            self._container_events(pod, c, node_name)
        new = copy.deepcopy(pod)
        status = new.setdefault("status", {})
        for ctype in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"):
            _set_condition(status, ctype, "True", ts)
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
        status["phase"] = "Running"
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
        status["startTime"] = ts
        if spec.get("initContainers"):
            status["initContainerStatuses"] = [
                self._container_status(c, ts, running=False) for c in spec["initContainers"]
            ]
        status["containerStatuses"] = [
            self._container_status(c, ts, running=True) for c in spec.get("containers") or []
        ]
        status.setdefault("qosClass", "BestEffort")
        self._store.update_item("", "pods", new, subresource="status")

    @staticmethod
    def _container_status(c: Obj, ts: str, running: bool) -> Obj:
        image = full_image(str(c.get("image", "")))
        state: Obj = (
            {"running": {"startedAt": ts}}
            if running
            else {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": ts,
                    "finishedAt": ts,
                    "containerID": "",
                }
            }
        )
        cid = "containerd://" + secrets.token_hex(32)
        if not running:
            state["terminated"]["containerID"] = cid
        return {
            "name": c.get("name", ""),
            "state": state,
            "lastState": {},
            "ready": running,
            "restartCount": 0,
            "image": image,
            "imageID": image.rsplit(":", 1)[0] + "@sha256:" + secrets.token_hex(32),
            "containerID": cid,
            "started": running,
        }

    def _container_events(self, pod: Obj, c: Obj, node: str) -> None:
        image = str(c.get("image", ""))
        name = str(c.get("name", ""))
        if c.get("imagePullPolicy") == "Always":
            self._event(pod, "Pulling", f'Pulling image "{image}"', node, name)
            self._event(
                pod,
                "Pulled",
                f'Successfully pulled image "{image}" in 0s (0s including waiting). '
                "Image size: 0 bytes.",
                node,
                name,
            )
        else:
            self._event(
                pod, "Pulled", f'Container image "{image}" already present on machine', node, name
            )
        self._event(pod, "Created", f"Created container: {name}", node, name)
        self._event(pod, "Started", f"Started container {name}", node, name)

    def _event(self, pod: Obj, reason: str, message: str, node: str, container: str) -> None:
        self._events.legacy(
            pod,
            "v1",
            "Pod",
            reason,
            message,
            component=KUBELET,
            host=node,
            field_path=f"spec.containers{{{container}}}",
        )
