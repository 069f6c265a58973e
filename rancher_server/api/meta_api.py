"""The API's own description (OpenAPI) and the audit log (a global role allowing auditlogs)."""

from __future__ import annotations

from aiohttp import web

from rancher_server.api.openapi import document
from rancher_server.api.resources import collection, iso
from rancher_server.api.spec import AUTH_PUBLIC, REGISTRY, Ctx, endpoint
from rancher_server.auth.runtime import runtime

AUDIT_PAGE_DEFAULT = 100
AUDIT_PAGE_MAX = 1000


@endpoint("GET", "/v3/openapi.json", "This API's OpenAPI 3 description", auth=AUTH_PUBLIC,
          response="OpenAPI document")
async def openapi(_: Ctx) -> web.Response:
    return web.json_response(document(REGISTRY))


@endpoint("GET", "/v3/auditlogs", "Audit log, newest first", needs=("auditlogs", "list"),
          query={"limit": f"entries per page (default {AUDIT_PAGE_DEFAULT}, max {AUDIT_PAGE_MAX})",
                 "before": "only entries with an id below this (paging)"},
          response="collection of audit entries", returns="collection:AuditEntry")
async def audit_log(ctx: Ctx) -> web.Response:
    try:
        limit = min(int(ctx.request.query.get("limit", AUDIT_PAGE_DEFAULT)), AUDIT_PAGE_MAX)
        before_raw = ctx.request.query.get("before")
        before = int(before_raw) if before_raw else None
    except ValueError:
        limit, before = AUDIT_PAGE_DEFAULT, None
    await runtime(ctx.state).audit.flush()  # show everything recorded up to this request
    entries = ctx.state.store.list_audit(max(1, limit), before)
    return collection("auditLog", (
        {"type": "auditLog", "id": str(e.id), "ts": iso(e.ts), "userId": e.user_id,
         "action": e.action, "target": e.target, "result": e.result, "remote": e.remote}
        for e in entries
    ))
