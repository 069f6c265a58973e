"""Names or ids to resources, with a message that says how to find the right one."""

from __future__ import annotations

from typing import Any

from rancher_cli.client import Api
from rancher_cli.constants import EXIT_SERVER_ERROR, EXIT_USAGE
from rancher_cli.errors import CliError


def _one(items: list[dict[str, Any]], ref: str, keys: tuple[str, ...], what: str,
         hint: str) -> dict[str, Any]:
    by_id = [i for i in items if i.get("id") == ref]
    if by_id:
        return by_id[0]
    named = [i for i in items if any(i.get(k) == ref for k in keys)]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        ids = ", ".join(str(i.get("id")) for i in named)
        raise CliError(f"{len(named)} {what}s are named {ref!r} ({ids}): give the id", EXIT_USAGE)
    raise CliError(f"{what} {ref!r} not found: {hint}", EXIT_SERVER_ERROR)


def cluster(api: Api, ref: str) -> dict[str, Any]:
    return _one(api.data("/v3/clusters"), ref, ("name",), "cluster",
                "`rancher clusters` lists the clusters you can see")


def user(api: Api, ref: str) -> dict[str, Any]:
    return _one(api.data("/v3/users"), ref, ("username",), "user",
                "`rancher users` lists the users")


def project(api: Api, ref: str, cluster_id: str = "") -> dict[str, Any]:
    items = api.data("/v3/projects")
    if cluster_id:
        items = [p for p in items if p.get("clusterId") == cluster_id or p.get("id") == ref]
    return _one(items, ref, ("name",), "project",
                "`rancher projects` lists the projects you can see (give --cluster for a name)")
