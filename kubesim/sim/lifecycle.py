"""What kubelet writes when a container's process ends: a restart (``restartPolicy`` Always,
or OnFailure after a failure) or a terminated container, and the pod's phase once every
container has terminated (Succeeded when all exited 0, else Failed)."""

from __future__ import annotations

import copy
import secrets

from kubesim.sim.store_api import Obj, Store
from kubesim.sim.util import rfc3339


class NotRunning(Exception):
    """The container is not running (unknown, not started yet, or already terminated)."""


def _running_status(pod: Obj, container: str) -> Obj:
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if cs.get("name") == container and "running" in (cs.get("state") or {}):
            return cs  # type: ignore[no-any-return]
    raise NotRunning(f"container {container} is not running in pod {pod['metadata']['name']}")


def _terminated(cs: Obj, code: int, ts: str) -> Obj:
    return {
        "terminated": {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": cs["state"]["running"].get("startedAt", ts),
            "finishedAt": ts,
            "containerID": cs.get("containerID", ""),
        }
    }


def _set(status: Obj, ctype: str, value: str, ts: str, reason: str = "") -> None:
    for c in status.get("conditions") or []:
        if c.get("type") == ctype and c.get("status") != value:
            c["status"] = value
            c["lastTransitionTime"] = ts
            if reason:
                c["reason"] = reason
            else:
                c.pop("reason", None)


def container_exited(store: Store, pod: Obj, container: str, code: int) -> bool:
    """Record that ``container`` exited with ``code``; True when kubelet restarts it."""
    new = copy.deepcopy(pod)
    cs = _running_status(new, container)
    ts = rfc3339()
    policy = new.get("spec", {}).get("restartPolicy", "Always")
    restart = policy == "Always" or (policy == "OnFailure" and code != 0)
    if restart:
        cs["lastState"] = _terminated(cs, code, ts)
        cs["state"] = {"running": {"startedAt": ts}}
        cs["containerID"] = "containerd://" + secrets.token_hex(32)
        cs["restartCount"] = int(cs.get("restartCount", 0)) + 1
    else:
        cs["state"] = _terminated(cs, code, ts)
        cs["ready"] = False
        cs["started"] = False
        status = new["status"]
        statuses = status.get("containerStatuses") or []
        done = [s for s in statuses if "terminated" in (s.get("state") or {})]
        if len(done) == len(statuses):
            ok = all(s["state"]["terminated"]["exitCode"] == 0 for s in done)
            status["phase"] = "Succeeded" if ok else "Failed"
            reason = "PodCompleted" if ok else "PodFailed"
            _set(status, "Ready", "False", ts, reason)
            _set(status, "ContainersReady", "False", ts, reason)
            _set(status, "PodReadyToStartContainers", "False", ts)
        else:
            _set(status, "Ready", "False", ts, "ContainersNotReady")
            _set(status, "ContainersReady", "False", ts, "ContainersNotReady")
    store.update_item("", "pods", new, subresource="status")
    return restart
