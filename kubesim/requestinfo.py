"""Parse a request path into kube-apiserver's RequestInfo (verb, group, resource, ...)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RequestInfo:
    path: str
    is_resource_request: bool = False
    verb: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    prefix: str = ""  # "api" or "apis" for resource requests


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def parse(method: str, path: str, query_watch: bool) -> RequestInfo:
    """Resource paths: /api/v1/..., /apis/<g>/<v>/...; everything else is non-resource."""
    info = RequestInfo(path=path)
    parts = [p for p in path.strip("/").split("/") if p]
    lower = method.upper()
    info.verb = {"GET": "get", "HEAD": "get"}.get(lower, _METHOD_VERBS.get(lower, "delete"))
    if lower not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        info.verb = lower.lower()
    if not parts or parts[0] not in ("api", "apis"):
        return info
    if parts[0] == "api":
        if len(parts) < 3:
            return info
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return info
        group, version, rest = parts[1], parts[2], parts[3:]
    info.prefix = parts[0]
    info.is_resource_request = True
    info.group, info.version = group, version
    if rest and rest[0] == "watch":
        rest = rest[1:]
        query_watch = True
    if (
        len(rest) >= 2
        and rest[0] == "namespaces"
        and len(rest) != 2
        and rest[2:3]
        not in (
            ["status"],
            ["finalize"],
        )
    ):
        info.namespace = rest[1]
        rest = rest[2:]
    elif len(rest) >= 2 and rest[0] == "namespaces":
        info.namespace = rest[1]
    info.resource = rest[0] if rest else ""
    if len(rest) >= 2:
        info.name = rest[1]
    if len(rest) >= 3:
        info.subresource = rest[2]
    if lower in ("GET", "HEAD"):
        info.verb = "get" if info.name else ("watch" if query_watch else "list")
        if info.name and query_watch:
            info.verb = "watch"
    elif lower == "DELETE" and not info.name:
        info.verb = "deletecollection"
    return info
