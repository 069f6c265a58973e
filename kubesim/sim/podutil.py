"""Pod predicates shared by the controllers: readiness, tolerations, node selection."""

from __future__ import annotations

from kubesim.sim.store_api import Obj
from kubesim.sim.util import condition, labels_match, name_of


def pod_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def pod_active(pod: Obj) -> bool:
    return not pod.get("metadata", {}).get("deletionTimestamp") and pod.get("status", {}).get(
        "phase"
    ) not in ("Succeeded", "Failed")


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for t in tolerations:
        effect = t.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        key = t.get("key") or ""
        if op == "Exists":
            if not key or key == taint.get("key"):
                return True
            continue
        if key == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taint(pod_spec: Obj, node: Obj) -> Obj | None:
    tolerations = pod_spec.get("tolerations") or []
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return taint  # type: ignore[no-any-return]
    return None


def _term_matches(term: Obj, node: Obj) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    for f in term.get("matchFields") or []:
        if f.get("key") == "metadata.name":
            values = f.get("values") or []
            inside = name_of(node) in values
            if (f.get("operator") == "In") != inside:
                return False
    exprs = term.get("matchExpressions") or []
    return not exprs or labels_match({"matchExpressions": exprs}, labels)


def node_matches(pod_spec: Obj, node: Obj) -> bool:
    """spec.nodeSelector and required node affinity."""
    labels = node.get("metadata", {}).get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (
        (pod_spec.get("affinity") or {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if required:
        terms = required.get("nodeSelectorTerms") or []
        return any(_term_matches(t, node) for t in terms)
    return True
