"""Rancher-shaped JSON for our objects (``type``, ``id``, camelCase fields, RFC 3339 times)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from rancher_server.clusters.reports import AgentReport
from rancher_server.store import ApiToken, Binding, Cluster, User

STATE_ACTIVE = "active"  # its agent is connected
STATE_DISCONNECTED = "disconnected"  # registered once, no agent now
STATE_PENDING = "pending"  # no agent has ever registered
STATE_UNAVAILABLE = "unavailable"  # its agent is connected but cannot reach the API server


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Answers that carry a secret shown once (a token, a registration token, a kubeconfig).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def collection(resource_type: str, items: Iterable[dict[str, Any]]) -> web.Response:
    return web.json_response(
        {"type": "collection", "resourceType": resource_type, "data": list(items)}
    )


def user_resource(u: User) -> dict[str, Any]:
    return {
        "type": "user", "id": u.id, "username": u.username, "name": u.display_name,
        "enabled": u.enabled, "admin": u.is_admin, "groups": list(u.groups),
        "principalIds": [f"local://{u.id}"], "created": iso(u.created_at),
    }


def token_resource(t: ApiToken, now: float, current_id: str = "",
                   bearer: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "token", "id": t.id, "name": t.id, "userId": t.user_id,
        "authProvider": "local", "kind": t.kind, "description": t.description,
        "created": iso(t.created_at), "expiresAt": iso(t.expires_at) or "",
        "ttl": 0 if t.expires_at is None else round((t.expires_at - t.created_at) * 1000),
        "expired": t.expires_at is not None and now >= t.expires_at,
        "enabled": t.enabled, "current": t.id == current_id, "isDerived": t.kind != "login",
        "lastUsedAt": iso(t.last_used_at),
    }
    if bearer is not None:
        out["token"] = bearer  # shown once, in the answer that created it
    return out


def cluster_state(c: Cluster, connected: bool, report: AgentReport | None = None) -> str:
    if connected:
        # Rancher's "Unavailable": the agent is here but cannot reach its API server.
        if report is not None and report.healthy is False:
            return STATE_UNAVAILABLE
        return STATE_ACTIVE
    return STATE_DISCONNECTED if c.registered_at is not None else STATE_PENDING


def cluster_resource(
    c: Cluster,
    connected: bool,
    role: str | None,
    report: AgentReport | None = None,
    node_agents: Iterable[tuple[str, float, dict[str, Any]]] = (),
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``status``: the cluster controller's (state and reason, conditions, capacity, requested,
    used, health); without it the state is derived from the session and the report."""
    out: dict[str, Any] = {
        "type": "cluster", "id": c.id, "name": c.name,
        "state": cluster_state(c, connected, report),
        "connected": connected, "created": iso(c.created_at),
        "registeredAt": iso(c.registered_at), "apiEndpoint": c.api_endpoint,
        "myRole": role,
    }
    if status is not None:
        out.update(status)
        out["stateSince"] = iso(status.get("stateSince"))
        for cond in out["conditions"]:
            cond["lastTransitionTime"] = iso(cond["lastTransitionTime"])
    if report is not None:
        out["agentReport"] = report.to_json()
    out["nodeAgents"] = [
        {"name": name, "connectedAt": iso(at), "facts": facts} for name, at, facts in node_agents
    ]
    return out


def binding_resource(b: Binding, downstream_roles: Iterable[str]) -> dict[str, Any]:
    """A cluster role template binding; ``downstream_roles``: the ClusterRoles it binds in the
    cluster (``Catalog.downstream_roles`` of its template)."""
    out: dict[str, Any] = {
        "type": "clusterRoleTemplateBinding", "id": b.id, "clusterId": b.cluster_id,
        "roleTemplateId": b.role, "downstreamClusterRoles": list(downstream_roles),
        "created": iso(b.created_at),
    }
    if b.subject_kind == "user":
        out["userId"] = b.subject
        out["userPrincipalId"] = f"local://{b.subject}"
    else:
        out["groupName"] = b.subject
        out["groupPrincipalId"] = f"local_group://{b.subject}"
    return out
