"""managedFields bookkeeping and server-side apply (a practical subset of structured-merge-diff)."""

from __future__ import annotations

import copy
import json
from typing import Any

from . import errors, meta
from .patch import MERGE_KEYS, strategic_merge
from .resources import ResourceType

Path = tuple[str, ...]
_MAP_FIELDS = frozenset(
    {"labels", "annotations", "data", "binaryData", "stringData", "matchLabels", "nodeSelector"}
)
_SKIP_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)
_TOP_SKIP = frozenset({"apiVersion", "kind"})


def field_paths(obj: dict[str, Any], include_status: bool = False) -> set[Path]:
    out: set[Path] = set()
    for k, v in obj.items():
        if k in _TOP_SKIP or (k == "status" and not include_status):
            continue
        if k == "metadata" and isinstance(v, dict):
            sub = {mk: mv for mk, mv in v.items() if mk not in _SKIP_META}
            _walk(sub, ("f:metadata",), out, "metadata")
            continue
        _walk_value(k, v, ("f:" + k,), out)
    return out


def _walk(d: dict[str, Any], prefix: Path, out: set[Path], name: str) -> None:
    if name in _MAP_FIELDS:
        out.add((*prefix, "."))
    for k, v in d.items():
        _walk_value(k, v, (*prefix, "f:" + k), out)


def _walk_value(k: str, v: Any, p: Path, out: set[Path]) -> None:
    if isinstance(v, dict) and v:
        _walk(v, p, out, k)
    elif (
        isinstance(v, list)
        and v
        and k in MERGE_KEYS
        and all(isinstance(i, dict) and MERGE_KEYS[k] in i for i in v)
    ):
        key = MERGE_KEYS[k]
        for item in v:
            kp = (*p, "k:" + json.dumps({key: item[key]}, separators=(",", ":")))
            out.add((*kp, "."))
            _walk(item, kp, out, "")
    else:
        out.add(p)


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(part, {})
    return root


def from_fields_v1(doc: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for k, v in doc.items():
        p = (*prefix, k)
        if isinstance(v, dict) and v:
            out |= from_fields_v1(v, p)
        else:
            out.add(p)
    return out


def _value_at(obj: Any, path: Path) -> Any:
    cur = obj
    for part in path:
        if part == ".":
            return cur
        if part.startswith("f:"):
            if not isinstance(cur, dict):
                return None
            cur = cur.get(part[2:])
        elif part.startswith("k:"):
            if not isinstance(cur, list):
                return None
            want = json.loads(part[2:])
            cur = next(
                (
                    i
                    for i in cur
                    if isinstance(i, dict) and all(i.get(a) == b for a, b in want.items())
                ),
                None,
            )
        else:
            return None
    return cur


def _remove_path(obj: dict[str, Any], path: Path) -> None:
    parent: Any = obj
    for part in path[:-1]:
        parent = _value_at(parent, (part,))
        if parent is None:
            return
    last = path[-1]
    if last == ".":
        return
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        want = json.loads(last[2:])
        parent[:] = [
            i
            for i in parent
            if not (isinstance(i, dict) and all(i.get(a) == b for a, b in want.items()))
        ]


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        if part == ".":
            continue
        if part.startswith("f:"):
            out += "." + part[2:]
        else:
            out += "[" + part[2:].replace('":', "=").replace('{"', "").replace("}", "") + "]"
    return out


class FieldManager:
    """Writes ``metadata.managedFields`` on updates and performs server-side apply."""

    def record_update(
        self, obj: dict[str, Any], old: dict[str, Any] | None, manager: str, api_version: str
    ) -> None:
        md = obj.setdefault("metadata", {})
        old_entries = list((old or {}).get("metadata", {}).get("managedFields") or [])
        if old is not None and "managedFields" in md and md["managedFields"] != old_entries:
            return  # the client replaced managedFields explicitly
        new_paths = field_paths(obj)
        changed = (
            new_paths
            if old is None
            else {p for p in new_paths if _value_at(obj, p) != _value_at(old, p)}
        )
        entries = []
        mine: set[Path] = set()
        for e in old_entries:
            paths = from_fields_v1(e.get("fieldsV1") or {})
            if e.get("manager") == manager and e.get("operation") == "Update":
                mine = paths & new_paths
                continue
            paths -= changed
            paths &= new_paths | {p for p in paths if p[-1] == "."}
            if paths:
                entries.append({**e, "fieldsV1": to_fields_v1(paths)})
        mine |= changed
        if mine:
            entries.append(
                {
                    "manager": manager,
                    "operation": "Update",
                    "apiVersion": api_version,
                    "time": meta.now_rfc3339(),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": to_fields_v1(mine),
                }
            )
        if entries:
            md["managedFields"] = entries
        else:
            md.pop("managedFields", None)

    def apply(
        self,
        rt: ResourceType,
        old: dict[str, Any] | None,
        cfg: dict[str, Any],
        manager: str,
        force: bool,
        subresource: str,
    ) -> dict[str, Any]:
        kind, api_version = cfg.get("kind"), cfg.get("apiVersion")
        if kind != rt.kind or api_version != rt.api_version:
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {rt.kind}): "
                f"apiVersion/kind mismatch ({api_version}, {kind})"
            )
        status_apply = subresource == "status"
        applied = field_paths(cfg, include_status=status_apply)
        if status_apply:
            applied = {p for p in applied if p[0] == "f:status"}
        base = copy.deepcopy(old) if old is not None else {}
        entries = list(base.get("metadata", {}).get("managedFields") or [])
        conflicts: list[tuple[str, Path]] = []
        prev_mine: set[Path] = set()
        kept = []
        for e in entries:
            paths = from_fields_v1(e.get("fieldsV1") or {})
            if e.get("manager") == manager and e.get("operation") == "Apply":
                prev_mine = paths
                continue
            overlap = {
                p
                for p in paths & applied
                if p[-1] != "." and _value_at(base, p) != _value_at(cfg, p)
            }
            if overlap and not force:
                conflicts.extend((e.get("manager", ""), p) for p in sorted(overlap))
            if force:
                paths -= applied
            if paths:
                kept.append({**e, "fieldsV1": to_fields_v1(paths)})
        if conflicts:
            raise _conflict_error(conflicts)
        others = (
            set().union(*(from_fields_v1(e.get("fieldsV1") or {}) for e in kept)) if kept else set()
        )
        for p in sorted(prev_mine - applied - others, key=len, reverse=True):
            _remove_path(base, p)
        body = {k: v for k, v in cfg.items() if k not in ("status",) or status_apply}
        body_md = dict(body.get("metadata") or {})
        for k in _SKIP_META:
            body_md.pop(k, None)
        body["metadata"] = body_md
        merged = strategic_merge(base, body)
        md = merged.setdefault("metadata", {})
        if old is not None:
            for k in ("name", "namespace", "resourceVersion"):
                if k in old["metadata"]:
                    md[k] = old["metadata"][k]
        kept.append(
            {
                "manager": manager,
                "operation": "Apply",
                "apiVersion": rt.api_version,
                "time": meta.now_rfc3339(),
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(applied),
                **({"subresource": subresource} if subresource else {}),
            }
        )
        md["managedFields"] = kept
        merged["apiVersion"], merged["kind"] = rt.api_version, rt.kind
        return dict(merged)


def _conflict_error(conflicts: list[tuple[str, Path]]) -> errors.StatusError:
    causes = [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": _dotted(p)}
        for m, p in conflicts
    ]
    n = len(causes)
    by_manager: dict[str, list[str]] = {}
    for m, p in conflicts:
        by_manager.setdefault(m, []).append(_dotted(p))
    groups = []
    for m, fields in by_manager.items():
        if len(fields) == 1:
            groups.append(f'conflict with "{m}": {fields[0]}')
        else:
            groups.append(f'conflicts with "{m}":\n' + "\n".join(f"- {f}" for f in fields))
    noun = "conflict" if n == 1 else "conflicts"
    msg = f"Apply failed with {n} {noun}: " + "\n".join(groups)
    return errors.StatusError(409, "Conflict", msg, {"causes": causes})
