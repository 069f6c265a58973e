"""Object validation: names, ConfigMap/Secret keys (422 Invalid like kube-apiserver)."""

from __future__ import annotations

from typing import Any

from . import errors
from .crdvalidation import validate_custom_resource
from .gofmt import go_quote
from .names import name_rule
from .resources import ResourceType

_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def _valid_config_key(key: str) -> bool:
    return bool(key) and all(c.isascii() and (c.isalnum() or c in "-._") for c in key)


def validate_object(rt: ResourceType, obj: dict[str, Any], name: str) -> None:
    """kube-apiserver's validation for the few rules clients commonly hit (422 Invalid)."""
    if not name:
        raise errors.StatusError(
            422,
            "Invalid",
            f'{rt.kind} "" is invalid: metadata.name: Required value: name or generateName '
            "is required",
            {
                "kind": rt.kind,
                **({"group": rt.group} if rt.group else {}),
                "causes": [
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value: name or generateName is required",
                        "field": "metadata.name",
                    }
                ],
            },
        )
    rule = name_rule(rt.group, rt.resource)
    problems = rule(name) if rule is not None else []
    if problems:
        raise errors.invalid(
            rt.group,
            rt.kind,
            name,
            [
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: {go_quote(name)}: {problem}",
                    "field": "metadata.name",
                }
                for problem in problems
            ],
        )
    if rt.group == "" and rt.resource in ("configmaps", "secrets"):
        causes = []
        for field in ("data", "binaryData", "stringData"):
            for key in obj.get(field) or {}:
                if not _valid_config_key(key):
                    causes.append(
                        {
                            "reason": "FieldValueInvalid",
                            "message": f'Invalid value: "{key}": {_CONFIG_KEY_MSG}',
                            "field": f"{field}[{key}]",
                        }
                    )
        if causes:
            raise errors.invalid(rt.group, rt.kind, name, causes)


def validate_workload(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Checks applied to API requests only (the simulated controllers write valid objects):
    pods and workloads, and custom resources against their schema."""
    validate_custom_resource(rt, obj)
    causes = _workload_causes(rt, obj)
    if causes:
        name = (obj.get("metadata") or {}).get("name", "")
        raise errors.invalid(rt.group, rt.kind, name, causes)


def _required(field: str) -> dict[str, str]:
    return {"reason": "FieldValueRequired", "message": "Required value", "field": field}


def _go_map(m: dict[str, Any]) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(m.items())) + "}"


def _pod_spec_causes(spec: Any, prefix: str) -> list[dict[str, str]]:
    if not isinstance(spec, dict):
        return [_required(f"{prefix}.containers")]
    containers = spec.get("containers")
    if not containers:
        return [_required(f"{prefix}.containers")]
    causes = []
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name"):
            causes.append(_required(f"{prefix}.containers[{i}].name"))
        if not isinstance(c, dict) or not c.get("image"):
            causes.append(_required(f"{prefix}.containers[{i}].image"))
    return causes


def _workload_causes(rt: ResourceType, obj: dict[str, Any]) -> list[dict[str, str]]:
    """Pods need containers; workloads need a selector that matches their template labels."""
    if (rt.group, rt.resource) == ("", "pods"):
        return _pod_spec_causes(obj.get("spec"), "spec")
    if (rt.group, rt.resource) not in (
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "daemonsets"),
    ):
        return []
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    causes: list[dict[str, str]] = []
    selector = spec.get("selector")
    match = (selector or {}).get("matchLabels") or {}
    if not selector:
        causes.append(_required("spec.selector"))
    if not selector or any(labels.get(k) != v for k, v in match.items()):
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {_go_map(labels)}: `selector` does not match "
                "template `labels`",
                "field": "spec.template.metadata.labels",
            }
        )
    causes.extend(_pod_spec_causes(template.get("spec"), "spec.template.spec"))
    return causes
