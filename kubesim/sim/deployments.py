"""deployment-controller: one ReplicaSet per pod template (``pod-template-hash``), rolling
updates within maxSurge/maxUnavailable (or Recreate), revision annotations, status and the
Available/Progressing conditions, and ``ScalingReplicaSet`` events."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable
from typing import Any

from kubesim.sim.events import DEPLOYMENT_CONTROLLER, EventRecorder
from kubesim.sim.replicasets import owner_key
from kubesim.sim.store_api import Obj, Store
from kubesim.sim.util import (
    controller_ref,
    controller_uid,
    name_of,
    namespace_of,
    rfc3339,
    stable_hash,
    uid_of,
)
from kubesim.sim.workqueue import Key

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
DEFAULT_SURGE = "25%"
DEFAULT_UNAVAILABLE = "25%"


def _resolve(value: object, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        frac = int(text[:-1]) * total / 100
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(text)


def _normalized(value: Any) -> Any:
    """Drop nulls and empty maps/lists, so that templates equal up to zero values (what
    apiserver defaulting makes of ``resources: {}`` or ``creationTimestamp: null``) compare
    equal."""
    if isinstance(value, dict):
        out = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def template_hash(template: Obj, collision_count: int) -> str:
    """The pod-template-hash of a Deployment's template (ignoring that label itself)."""
    t = copy.deepcopy(template)
    (t.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return stable_hash(json.dumps(_normalized(t), sort_keys=True) + str(collision_count))


def _revision(rs: Obj) -> int:
    try:
        return int((rs.get("metadata", {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _spec_replicas(rs: Obj) -> int:
    return int(rs.get("spec", {}).get("replicas", 0))


def _status(rs: Obj, field: str) -> int:
    return int(rs.get("status", {}).get(field, 0))


class DeploymentController:
    name = "deployment"

    def __init__(self, store: Store, events: EventRecorder) -> None:
        self._store = store
        self._events = events

    def keys_for(self, event_type: str, group: str, resource: str, obj: Obj) -> Iterable[Key]:
        if group == "apps" and resource == "deployments" and event_type != "DELETED":
            return [(namespace_of(obj), name_of(obj))]
        if group == "apps" and resource == "replicasets":
            return owner_key(obj, "Deployment")
        return []

    def reconcile(self, key: Key) -> float | None:
        d = self._store.get_item("apps", "deployments", key[0], key[1])
        if d is None or d.get("metadata", {}).get("deletionTimestamp"):
            return None
        spec = d.get("spec", {})
        desired = int(spec.get("replicas", 1))
        uid = uid_of(d)
        rss = [
            rs
            for rs in self._store.list_items("apps", "replicasets", key[0])
            if controller_uid(rs) == uid
        ]
        h = template_hash(
            spec.get("template") or {}, int(d.get("status", {}).get("collisionCount", 0))
        )
        # the ReplicaSet whose template equals ours, ignoring its pod-template-hash label
        same = template_hash(spec.get("template") or {}, 0)
        new_rs = next(
            (rs for rs in rss if template_hash(rs["spec"].get("template") or {}, 0) == same), None
        )
        olds = sorted((rs for rs in rss if rs is not new_rs), key=_revision)
        max_rev = max((_revision(rs) for rs in rss), default=0)
        created = False
        if spec.get("paused"):
            self._write_status(d, new_rs, rss, False)
            return None
        if new_rs is None:
            new_rs = self._create_rs(d, h, max_rev + 1, desired, olds)
            rss.append(new_rs)
            created = True
        elif _revision(new_rs) < max_rev:  # a rollback to an older template
            new_rs = self._annotate(new_rs, max_rev + 1, desired, d)
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            self._recreate(d, new_rs, olds, desired)
        else:
            self._rolling(d, new_rs, olds, desired, strategy.get("rollingUpdate") or {})
        self._sync_revision(d, new_rs)
        d = self._store.get_item("apps", "deployments", key[0], key[1]) or d
        rss = [
            rs
            for rs in self._store.list_items("apps", "replicasets", key[0])
            if controller_uid(rs) == uid
        ]
        new_rs = next((rs for rs in rss if name_of(rs) == name_of(new_rs)), new_rs)
        self._write_status(d, new_rs, rss, created)
        return None

    # -- replica sets ----------------------------------------------------------------------
    def _create_rs(self, d: Obj, h: str, revision: int, desired: int, olds: list[Obj]) -> Obj:
        spec = d["spec"]
        template = copy.deepcopy(spec.get("template") or {})
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: h}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: h}
        surge = _resolve(
            (spec.get("strategy") or {}).get("rollingUpdate", {}).get("maxSurge", DEFAULT_SURGE),
            desired,
            True,
        )
        annotations = {
            **(d.get("metadata", {}).get("annotations") or {}),
            DESIRED: str(desired),
            MAX_REPLICAS: str(desired + surge),
            REVISION: str(revision),
        }
        annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
        rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name_of(d)}-{h}",
                "namespace": namespace_of(d),
                "labels": dict(tmeta["labels"]),
                "annotations": annotations,
                "ownerReferences": [controller_ref(d, "apps/v1", "Deployment")],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
        }
        if spec.get("minReadySeconds"):
            rs["spec"]["minReadySeconds"] = spec["minReadySeconds"]
        return self._store.create_item("apps", "replicasets", rs)

    def _annotate(self, rs: Obj, revision: int, desired: int, d: Obj) -> Obj:
        new = copy.deepcopy(rs)
        ann = new["metadata"].setdefault("annotations", {})
        ann[REVISION] = str(revision)
        ann[DESIRED] = str(desired)
        return self._store.update_item("apps", "replicasets", new)

    def _scale(self, d: Obj, rs: Obj, to: int) -> Obj:
        frm = _spec_replicas(rs)
        desired = str(int(d.get("spec", {}).get("replicas", 1)))
        ann = rs["metadata"].get("annotations") or {}
        if frm == to and ann.get(DESIRED) == desired:
            return rs
        new = copy.deepcopy(rs)
        new["spec"]["replicas"] = to
        new["metadata"].setdefault("annotations", {})[DESIRED] = desired
        updated = self._store.update_item("apps", "replicasets", new)
        if frm != to:
            direction = "up" if to > frm else "down"
            self._events.legacy(
                d,
                "apps/v1",
                "Deployment",
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {name_of(rs)} from {frm} to {to}",
                component=DEPLOYMENT_CONTROLLER,
            )
        return updated

    def _recreate(self, d: Obj, new_rs: Obj, olds: list[Obj], desired: int) -> None:
        for rs in olds:
            if _spec_replicas(rs):
                self._scale(d, rs, 0)
        if any(_status(rs, "replicas") for rs in olds):
            return  # wait until the old pods are gone
        self._scale(d, new_rs, desired)

    def _rolling(self, d: Obj, new_rs: Obj, olds: list[Obj], desired: int, ru: Obj) -> None:
        surge = _resolve(ru.get("maxSurge", DEFAULT_SURGE), desired, True)
        unavailable = _resolve(ru.get("maxUnavailable", DEFAULT_UNAVAILABLE), desired, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        new_spec = _spec_replicas(new_rs)
        if not olds or all(_spec_replicas(rs) == 0 for rs in olds):
            self._scale(d, new_rs, desired)  # plain scale (or a rollout with nothing to replace)
            return
        # scale up the new replica set within maxSurge
        total = new_spec + sum(_spec_replicas(rs) for rs in olds)
        if new_spec < desired:
            room = max(0, desired + surge - total)
            new_spec = min(desired, new_spec + room)
            new_rs = self._scale(d, new_rs, new_spec)
        elif new_spec > desired:
            new_rs = self._scale(d, new_rs, desired)
        # scale down old replica sets while keeping desired - maxUnavailable available
        available = _status(new_rs, "availableReplicas") + sum(
            _status(rs, "availableReplicas") for rs in olds
        )
        can_remove = available - (desired - unavailable)
        for rs in olds:  # unhealthy old replicas go first, without counting against availability
            spec_n = _spec_replicas(rs)
            unhealthy = max(0, spec_n - _status(rs, "availableReplicas"))
            if unhealthy:
                self._scale(d, rs, spec_n - unhealthy)
        for stale in olds:
            rs = (
                self._store.get_item("apps", "replicasets", namespace_of(stale), name_of(stale))
                or stale
            )
            spec_n = _spec_replicas(rs)
            if can_remove <= 0 or spec_n == 0:
                continue
            cut = min(spec_n, can_remove)
            self._scale(d, rs, spec_n - cut)
            can_remove -= cut

    def _sync_revision(self, d: Obj, new_rs: Obj) -> None:
        rev = str(_revision(new_rs))
        ann = d.get("metadata", {}).get("annotations") or {}
        if ann.get(REVISION) == rev:
            return
        new = copy.deepcopy(d)
        new["metadata"].setdefault("annotations", {})[REVISION] = rev
        self._store.update_item("apps", "deployments", new)

    # -- status ----------------------------------------------------------------------------
    def _write_status(self, d: Obj, new_rs: Obj | None, rss: list[Obj], created: bool) -> None:
        spec = d.get("spec", {})
        desired = int(spec.get("replicas", 1))
        ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        unavailable_ok = _resolve(ru.get("maxUnavailable", DEFAULT_UNAVAILABLE), desired, False)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            unavailable_ok = 0
        replicas = sum(_status(rs, "replicas") for rs in rss)
        updated = _status(new_rs, "replicas") if new_rs else 0
        ready = sum(_status(rs, "readyReplicas") for rs in rss)
        available = sum(_status(rs, "availableReplicas") for rs in rss)
        old = d.get("status", {})
        status: Obj = {"observedGeneration": d.get("metadata", {}).get("generation", 1)}
        for field, value in (
            ("replicas", replicas),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", max(0, desired - available)),
        ):
            if value:
                status[field] = value
        ts = rfc3339()
        old_conds = {c["type"]: c for c in old.get("conditions") or []}
        is_available = available >= desired - unavailable_ok
        conds = [
            self._cond(
                old_conds.get("Available"),
                "Available",
                is_available,
                "MinimumReplicasAvailable" if is_available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if is_available
                else "Deployment does not have minimum availability.",
                ts=ts,
            )
        ]
        rs_name = name_of(new_rs) if new_rs else ""
        complete = updated == desired and replicas == desired and available >= desired
        if created:
            reason, message = "NewReplicaSetCreated", f'Created new replica set "{rs_name}"'
        elif complete:
            reason, message = (
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            )
        else:
            reason, message = "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.'
        prog = old_conds.get("Progressing")
        if (
            prog is not None
            and prog.get("reason") == "NewReplicaSetAvailable"
            and reason == "ReplicaSetUpdated"
            and complete
        ):
            reason, message = prog["reason"], prog["message"]
        conds.append(self._cond(prog, "Progressing", True, reason, message, ts=ts))
        status["conditions"] = conds
        if "collisionCount" in old:
            status["collisionCount"] = old["collisionCount"]
        if old == status:
            return
        new = copy.deepcopy(d)
        new["status"] = status
        self._store.update_item("apps", "deployments", new, subresource="status")

    @staticmethod
    def _cond(old: Obj | None, ctype: str, ok: bool, reason: str, message: str, *, ts: str) -> Obj:
        value = "True" if ok else "False"
        if (
            old is not None
            and old.get("status") == value
            and old.get("reason") == reason
            and old.get("message") == message
        ):
            return old
        transition = (
            ts if old is None or old.get("status") != value else old.get("lastTransitionTime", ts)
        )
        return {
            "type": ctype,
            "status": value,
            "lastUpdateTime": ts,
            "lastTransitionTime": transition,
            "reason": reason,
            "message": message,
        }
