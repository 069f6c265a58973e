"""Namespaces created by project members through the proxy (Rancher's ``create-ns``).

A project member holds no cluster-wide right to create namespaces downstream (that would let
them create namespaces outside their projects). A JSON ``POST /api/v1/namespaces`` from a user
without that right is handled here instead: it must carry the annotation
``field.cattle.io/projectId: <cluster>:<project>`` of a project where the user's templates
allow creating namespaces; the server then creates it with the agent's credential and waits for
the reconciler to give the project's bindings in it, so the user can use it at once."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aiohttp import web

from rancher_server.access.desired import PROJECT_ANNOTATION
from rancher_server.access.manager import AccessManager
from rancher_server.access.roles import Access
from rancher_server.access.templates import Catalog
from rancher_server.auth import Principal, audit
from rancher_server.clusters.kube import KubeError
from rancher_server.proxy.status import status_response
from rancher_server.state import STATE
from rancher_server.store import Store

NAMESPACES_PATH = "/api/v1/namespaces"
MAX_NAMESPACE_BODY_BYTES = 256 * 1024
SYNC_WAIT_S = 20.0
PASSED_QUERY = ("dryRun", "fieldManager", "fieldValidation")


def is_namespace_create(
    request: web.Request, path_qs: str, access: Access, store: Store
) -> bool:
    if request.method != "POST" or path_qs.split("?", 1)[0].rstrip("/") != NAMESPACES_PATH:
        return False
    if request.content_type != "application/json":
        return False  # protobuf (kubectl create namespace): forwarded; RBAC decides downstream
    # Those whose cluster templates grant creating namespaces downstream are forwarded as usual.
    return not Catalog.load(store).allows(access.cluster_templates, "namespaces", "create",
                                          group="")


def _forbidden(principal: Principal, why: str) -> web.Response:
    return status_response(
        403,
        f'namespaces is forbidden: User "{principal.user_id}" cannot create resource '
        f'"namespaces" in API group "" at the cluster scope: {why}',
    )


async def create_in_project(
    request: web.Request, principal: Principal, access: Access, cluster_id: str, path_qs: str,
    manager: AccessManager,
) -> web.StreamResponse:
    state = request.app[STATE]
    target = f"{cluster_id} POST {NAMESPACES_PATH}"
    if (request.content_length or 0) > MAX_NAMESPACE_BODY_BYTES:
        return status_response(413, f"request body exceeds {MAX_NAMESPACE_BODY_BYTES} bytes")
    raw = await request.content.read(MAX_NAMESPACE_BODY_BYTES + 1)
    if len(raw) > MAX_NAMESPACE_BODY_BYTES:
        return status_response(413, f"request body exceeds {MAX_NAMESPACE_BODY_BYTES} bytes")
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        return status_response(400, "the request body is not valid JSON")
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    annotations = (meta or {}).get("annotations") if isinstance(meta, dict) else None
    project_ref = annotations.get(PROJECT_ANNOTATION) if isinstance(annotations, dict) else None
    if not isinstance(project_ref, str) or not project_ref:
        audit(state, principal, "namespace.create", target, "forbidden", request.remote)
        return _forbidden(principal, f"set the annotation {PROJECT_ANNOTATION}: "
                                     f"{cluster_id}:<project> of a project of yours")
    ref_cluster, _, project_id = project_ref.partition(":")
    catalog = Catalog.load(state.store)
    if ref_cluster != cluster_id or not access.allows(
        catalog, "namespaces", "create", project_id
    ):
        audit(state, principal, "namespace.create", target, "forbidden", request.remote)
        return _forbidden(principal, f"you may not create namespaces in project {project_ref}")
    query = {k: v for k, v in request.query.items() if k in PASSED_QUERY}
    reconciler = await manager.owned_reconciler(cluster_id)
    try:
        created = await reconciler.kube.call("POST", NAMESPACES_PATH, query=query, body=doc)
    except KubeError as e:
        return status_response(e.status or 503, e.message, e.reason if e.status else "")
    name = (created.get("metadata") or {}).get("name", "")
    audit(state, principal, "namespace.create", f"{target}/{name}",
          f"success {project_ref}", request.remote)
    if "dryRun" not in query:
        reconciler.observe_namespace(created)
        with contextlib.suppress(TimeoutError):  # created; the rights follow when it answers
            await reconciler.sync(SYNC_WAIT_S)
    return web.json_response(created, status=201)
