"""The OpenAPI 3 document, generated from the endpoint table (``GET /v3/openapi.json``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rancher_server.api.response_schemas import RESOURCES, response_schema
from rancher_server.api.spec import AUTH_ADMIN, AUTH_PUBLIC, Endpoint, path_params

OPENAPI_VERSION = "3.0.3"
API_VERSION = "v3"

_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["error"]},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
}


def _operation(eps: list[Endpoint]) -> dict[str, Any]:
    first = eps[0]
    actions = [ep for ep in eps if ep.action]
    summary = " | ".join(
        f"{ep.summary}" + (f" (?action={ep.action})" if ep.action else "") for ep in eps
    )
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in path_params(first.path)
    ]
    if actions:
        params.append({
            "name": "action", "in": "query", "required": len(actions) == len(eps),
            "schema": {"type": "string", "enum": [ep.action for ep in actions]},
            "description": "; ".join(f"{ep.action}: {ep.summary}" for ep in actions),
        })
    for ep in eps:
        for name, desc in ep.query.items():
            params.append({"name": name, "in": "query", "required": False,
                           "schema": {"type": "string"}, "description": desc})
    op: dict[str, Any] = {
        "operationId": "_or_".join(ep.operation_id for ep in eps),
        "summary": summary,
        "parameters": params,
        "responses": {
            str(ep.status): {
                "description": ep.response,
                "content": {"application/json": {"schema": response_schema(ep.returns)}},
            }
            for ep in eps
        },
    }
    common = {400: "bad request", 401: "missing or invalid token", 403: "not allowed",
              404: "not found", 413: "body too large", 422: "invalid body"}
    for ep in eps:
        common.update(ep.errors)
    for status, what in sorted(common.items()):
        op["responses"][str(status)] = {
            "description": what,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    bodies = [ep.body for ep in eps if ep.body is not None]
    if bodies:
        schema = bodies[0] if len(bodies) == 1 else {"oneOf": bodies}
        op["requestBody"] = {"required": False,
                             "content": {"application/json": {"schema": schema}}}
    if any(ep.auth != AUTH_PUBLIC for ep in eps):
        op["security"] = [{"bearerAuth": []}]
    else:
        op["security"] = []
    if any(ep.auth == AUTH_ADMIN for ep in eps):
        op["description"] = "Administrators only" + (
            " (for the actions marked so)" if len(eps) > 1 else "") + "."
    needs = [f"{ep.needs[1]} {ep.needs[0]}" + (f" (?action={ep.action})" if ep.action else "")
             for ep in eps if ep.needs is not None]
    if needs:
        op["description"] = ("Needs a global role that allows (management.cattle.io): "
                             + "; ".join(needs) + ".")
    return op


def document(endpoints: list[Endpoint]) -> dict[str, Any]:
    grouped: dict[tuple[str, str], list[Endpoint]] = defaultdict(list)
    for ep in endpoints:
        grouped[(ep.path, ep.method.lower())].append(ep)
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), eps in sorted(grouped.items()):
        paths.setdefault(path, {})[method] = _operation(eps)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "rancher-py server API",
            "version": API_VERSION,
            "description": (
                "Users, tokens, clusters and cluster role bindings. Authenticate with "
                "POST /v3-public/localProviders/local?action=login, then send "
                "'Authorization: Bearer token-xxxxx:<secret>'."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR_SCHEMA, **RESOURCES},
        },
    }
