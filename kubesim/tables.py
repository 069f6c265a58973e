"""meta.k8s.io/v1 Table responses with kubectl's columns per kind."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from .resources import ResourceType
from .selectors import field_value

Obj = dict[str, Any]
Cell = Callable[[Obj], Any]
Column = tuple[dict[str, Any], Cell]
NAME_DESC = "Name must be unique within a namespace."
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400


def human_age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    try:
        t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    s = max(0, int((datetime.datetime.now(datetime.UTC) - t).total_seconds()))
    if s < 2 * SECONDS_PER_MINUTE:
        return f"{s}s"
    m = s // SECONDS_PER_MINUTE
    if m < 10:
        rem = s % SECONDS_PER_MINUTE
        return f"{m}m{rem}s" if rem else f"{m}m"
    if s < 3 * SECONDS_PER_HOUR:
        return f"{m}m"
    h = s // SECONDS_PER_HOUR
    if h < 8:
        rem_m = (s % SECONDS_PER_HOUR) // SECONDS_PER_MINUTE
        return f"{h}h{rem_m}m" if rem_m else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = s // SECONDS_PER_DAY
    if d < 8:
        rem_h = (s % SECONDS_PER_DAY) // SECONDS_PER_HOUR
        return f"{d}d{rem_h}h" if rem_h else f"{d}d"
    return f"{d}d" if d < 365 * 2 else f"{d // 365}y"


def _age(o: Obj) -> str:
    return human_age(o["metadata"].get("creationTimestamp"))


def _name(o: Obj) -> str:
    return str(o["metadata"]["name"])


def _spec(o: Obj) -> Obj:
    return o.get("spec") or {}


def _status(o: Obj) -> Obj:
    return o.get("status") or {}


def _pod_ready(o: Obj) -> str:
    cs = _status(o).get("containerStatuses") or []
    total = len(_spec(o).get("containers") or [])
    return f"{sum(1 for c in cs if c.get('ready'))}/{total}"


def _pod_status(o: Obj) -> str:
    if o["metadata"].get("deletionTimestamp"):
        return "Terminating"
    st = _status(o)
    for c in st.get("containerStatuses") or []:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(st.get("reason") or st.get("phase") or "Pending")


def _pod_restarts(o: Obj) -> str:
    return str(
        sum(int(c.get("restartCount", 0)) for c in _status(o).get("containerStatuses") or [])
    )


def _none(v: Any) -> Any:
    return "<none>" if v in (None, "", []) else v


def _node_status(o: Obj) -> str:
    conds = {c.get("type"): c.get("status") for c in _status(o).get("conditions") or []}
    ready = conds.get("Ready")
    # kube's printer: Ready when True, NotReady for False *and* Unknown, Unknown only when the
    # node has no Ready condition at all.
    s = "Unknown" if ready is None else ("Ready" if ready == "True" else "NotReady")
    if _spec(o).get("unschedulable"):
        s += ",SchedulingDisabled"
    return s


def _node_roles(o: Obj) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(
        k[len(prefix) :] for k in (o["metadata"].get("labels") or {}) if k.startswith(prefix)
    )
    return ",".join(roles) or "<none>"


def _node_addr(kind: str) -> Cell:
    def f(o: Obj) -> str:
        for a in _status(o).get("addresses") or []:
            if a.get("type") == kind:
                return str(a.get("address"))
        return "<none>"

    return f


def _node_info(key: str) -> Cell:
    return lambda o: (_status(o).get("nodeInfo") or {}).get(key) or "<unknown>"


def _containers(o: Obj, key: str) -> str:
    tmpl = (_spec(o).get("template") or {}).get("spec") or {}
    return ",".join(str(c.get(key, "")) for c in tmpl.get("containers") or [])


def _selector(o: Obj) -> str:
    sel = _spec(o).get("selector") or {}
    ml = sel.get("matchLabels") or {}
    parts = [f"{k}={v}" for k, v in sorted(ml.items())]
    for e in sel.get("matchExpressions") or []:
        values = ",".join(e.get("values") or [])
        parts.append(f"{e.get('key')} {str(e.get('operator', '')).lower()} ({values})")
    return ",".join(parts) or "<none>"


def _involved(o: Obj) -> str:
    io = o.get("involvedObject") or o.get("regarding") or {}
    return f"{str(io.get('kind', '')).lower()}/{io.get('name', '')}"


def _svc_ports(o: Obj) -> str:
    out = []
    for p in _spec(o).get("ports") or []:
        s = f"{p.get('port')}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _col(name: str, cell: Cell, priority: int = 0, ctype: str = "string", fmt: str = "") -> Column:
    return (
        {"name": name, "type": ctype, "format": fmt, "description": name, "priority": priority},
        cell,
    )


NAME_COL: Column = (
    {"name": "Name", "type": "string", "format": "name", "description": NAME_DESC, "priority": 0},
    _name,
)


def _ev(o: Obj, core: str, v1: str) -> Any:
    """A field of a core/v1 Event, or of its events.k8s.io/v1 view."""
    return o.get(core) if o.get(core) not in (None, "") else o.get(v1)


EVENT_COLUMNS: list[Column] = [
    _col(
        "Last Seen",
        lambda o: human_age(
            _ev(o, "lastTimestamp", "deprecatedLastTimestamp")
            or o.get("eventTime")
            or o["metadata"].get("creationTimestamp")
        ),
    ),
    _col("Type", lambda o: o.get("type", "")),
    _col("Reason", lambda o: o.get("reason", "")),
    _col("Object", _involved),
    _col("Message", lambda o: _ev(o, "message", "note") or ""),
    _col(
        "Source",
        lambda o: (
            (_ev(o, "source", "deprecatedSource") or {}).get("component")
            or o.get("reportingComponent")
            or o.get("reportingController", "")
        ),
        1,
    ),
    _col(
        "First Seen", lambda o: human_age(_ev(o, "firstTimestamp", "deprecatedFirstTimestamp")), 1
    ),
    _col("Count", lambda o: _ev(o, "count", "deprecatedCount") or 1, 1, "integer"),
    _col("Name", _name, 1),
]

COLUMNS: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("", "namespaces"): [
        NAME_COL,
        _col("Status", lambda o: _status(o).get("phase", "")),
        _col("Age", _age),
    ],
    ("", "configmaps"): [
        NAME_COL,
        _col(
            "Data",
            lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
        ),
        _col("Age", _age),
    ],
    ("", "secrets"): [
        NAME_COL,
        _col("Type", lambda o: o.get("type", "")),
        _col("Data", lambda o: len(o.get("data") or {})),
        _col("Age", _age),
    ],
    ("", "serviceaccounts"): [
        NAME_COL,
        _col("Secrets", lambda o: len(o.get("secrets") or [])),
        _col("Age", _age),
    ],
    ("", "pods"): [
        NAME_COL,
        _col("Ready", _pod_ready),
        _col("Status", _pod_status),
        _col("Restarts", _pod_restarts),
        _col("Age", _age),
        _col("IP", lambda o: _none(_status(o).get("podIP")), 1),
        _col("Node", lambda o: _none(_spec(o).get("nodeName")), 1),
        _col("Nominated Node", lambda o: _none(_status(o).get("nominatedNodeName")), 1),
        _col("Readiness Gates", lambda o: "<none>", 1),
    ],
    ("", "nodes"): [
        NAME_COL,
        _col("Status", _node_status),
        _col("Roles", _node_roles),
        _col("Age", _age),
        _col("Version", lambda o: (_status(o).get("nodeInfo") or {}).get("kubeletVersion", "")),
        _col("Internal-IP", _node_addr("InternalIP"), 1),
        _col("External-IP", _node_addr("ExternalIP"), 1),
        _col("OS-Image", _node_info("osImage"), 1),
        _col("Kernel-Version", _node_info("kernelVersion"), 1),
        _col("Container-Runtime", _node_info("containerRuntimeVersion"), 1),
    ],
    ("", "services"): [
        NAME_COL,
        _col("Type", lambda o: _spec(o).get("type", "ClusterIP")),
        _col("Cluster-IP", lambda o: _none(_spec(o).get("clusterIP"))),
        _col("External-IP", lambda o: ",".join(_spec(o).get("externalIPs") or []) or "<none>"),
        _col("Port(s)", _svc_ports),
        _col("Age", _age),
        _col(
            "Selector",
            lambda o: (
                ",".join(f"{k}={v}" for k, v in sorted((_spec(o).get("selector") or {}).items()))
                or "<none>"
            ),
            1,
        ),
    ],
    ("", "endpoints"): [
        NAME_COL,
        _col(
            "Endpoints",
            lambda o: (
                ",".join(
                    f"{a.get('ip')}:{p.get('port')}"
                    for s in o.get("subsets") or []
                    for a in s.get("addresses") or []
                    for p in s.get("ports") or []
                )
                or "<none>"
            ),
        ),
        _col("Age", _age),
    ],
    ("", "events"): EVENT_COLUMNS,
    ("events.k8s.io", "events"): EVENT_COLUMNS,
    ("apps", "deployments"): [
        NAME_COL,
        _col(
            "Ready", lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}"
        ),
        _col("Up-to-date", lambda o: _status(o).get("updatedReplicas", 0)),
        _col("Available", lambda o: _status(o).get("availableReplicas", 0)),
        _col("Age", _age),
        _col("Containers", lambda o: _containers(o, "name"), 1),
        _col("Images", lambda o: _containers(o, "image"), 1),
        _col("Selector", _selector, 1),
    ],
    ("apps", "replicasets"): [
        NAME_COL,
        _col("Desired", lambda o: _spec(o).get("replicas", 1), ctype="integer"),
        _col("Current", lambda o: _status(o).get("replicas", 0), ctype="integer"),
        _col("Ready", lambda o: _status(o).get("readyReplicas", 0), ctype="integer"),
        _col("Age", _age),
        _col("Containers", lambda o: _containers(o, "name"), 1),
        _col("Images", lambda o: _containers(o, "image"), 1),
        _col("Selector", _selector, 1),
    ],
    ("apps", "daemonsets"): [
        NAME_COL,
        _col("Desired", lambda o: _status(o).get("desiredNumberScheduled", 0), ctype="integer"),
        _col("Current", lambda o: _status(o).get("currentNumberScheduled", 0), ctype="integer"),
        _col("Ready", lambda o: _status(o).get("numberReady", 0), ctype="integer"),
        _col("Up-to-date", lambda o: _status(o).get("updatedNumberScheduled", 0), ctype="integer"),
        _col("Available", lambda o: _status(o).get("numberAvailable", 0), ctype="integer"),
        _col(
            "Node Selector",
            lambda o: (
                ",".join(
                    f"{k}={v}"
                    for k, v in sorted(
                        ((_spec(o).get("template") or {}).get("spec") or {})
                        .get("nodeSelector", {})
                        .items()
                    )
                )
                or "<none>"
            ),
        ),
        _col("Age", _age),
        _col("Containers", lambda o: _containers(o, "name"), 1),
        _col("Images", lambda o: _containers(o, "image"), 1),
        _col("Selector", _selector, 1),
    ],
    ("coordination.k8s.io", "leases"): [
        NAME_COL,
        _col("Holder", lambda o: _spec(o).get("holderIdentity", "")),
        _col("Age", _age),
    ],
    ("rbac.authorization.k8s.io", "rolebindings"): [
        NAME_COL,
        _col(
            "Role",
            lambda o: (
                f"{(o.get('roleRef') or {}).get('kind')}/{(o.get('roleRef') or {}).get('name')}"
            ),
        ),
        _col("Age", _age),
    ],
    ("rbac.authorization.k8s.io", "clusterrolebindings"): [
        NAME_COL,
        _col(
            "Role",
            lambda o: (
                f"{(o.get('roleRef') or {}).get('kind')}/{(o.get('roleRef') or {}).get('name')}"
            ),
        ),
        _col("Age", _age),
    ],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        NAME_COL,
        _col("Created At", lambda o: o["metadata"].get("creationTimestamp", ""), ctype="date"),
    ],
}
DEFAULT_COLUMNS = [
    NAME_COL,
    _col("Created At", lambda o: o["metadata"].get("creationTimestamp", ""), ctype="date"),
]


def _crd_columns(rt: ResourceType) -> list[tuple[dict[str, Any], Cell]]:
    cols: list[Column] = [NAME_COL]
    for pc in rt.printer_columns:
        path = str(pc.get("jsonPath", "")).lstrip(".")

        def cell(o: Obj, path: str = path) -> Any:
            v = field_value(o, path)
            return v if v is not None else ""

        cols.append(
            _col(
                pc.get("name", ""),
                cell,
                int(pc.get("priority", 0)),
                pc.get("type", "string"),
                pc.get("format", ""),
            )
        )
    if not any(pc.get("jsonPath") == ".metadata.creationTimestamp" for pc in rt.printer_columns):
        cols.append(_col("Age", _age, ctype="date"))
    return cols


def columns_for(rt: ResourceType) -> list[tuple[dict[str, Any], Cell]]:
    if rt.crd is not None:
        return _crd_columns(rt) if rt.printer_columns else DEFAULT_COLUMNS
    return COLUMNS.get((rt.group, rt.resource), DEFAULT_COLUMNS)


def partial_metadata(o: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": o["metadata"],
    }


def _row(o: Obj, cols: list[tuple[dict[str, Any], Cell]], include: str) -> Obj:
    cells = []
    for _, cell in cols:
        try:
            cells.append(cell(o))
        except (KeyError, TypeError, AttributeError, ValueError):
            cells.append("")
    if include == "None":
        obj: Any = None
    elif include == "Object":
        obj = o
    else:
        obj = partial_metadata(o)
    return {"cells": cells, "object": obj}


def to_table(
    rt: ResourceType,
    items: list[Obj],
    include: str,
    resource_version: str,
    cont: str | None,
    remaining: int | None,
    with_columns: bool = True,
) -> Obj:
    cols = columns_for(rt)
    md: Obj = {}
    if resource_version:
        md["resourceVersion"] = resource_version
    if cont:
        md["continue"] = cont
    if remaining is not None:
        md["remainingItemCount"] = remaining
    table: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md}
    table["columnDefinitions"] = [c for c, _ in cols] if with_columns else None
    table["rows"] = [_row(o, cols, include) for o in items]
    return table
