"""The resource verbs: get, list, create, update, patch, delete, deletecollection."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from aiohttp import web

from . import codec, errors, openapi, tables
from .admission import admit_write
from .authhooks import AuthHooks
from .authtypes import UserInfo
from .conversion import as_version
from .listing import paginate
from .patch import apply_patch
from .requestinfo import RequestInfo
from .resources import ResourceType
from .selectors import selector_for
from .ssa import FieldManager
from .subresources import MAX_BODY_BYTES, PATCH_TYPES, SubresourceHandlers
from .validation import validate_workload
from .watch import serve_watch

WARNINGS_KEY: web.RequestKey[list[str]] = web.RequestKey("kubesim.warnings", list[str])
FUTURE_RV_WAIT_S = 3.0
FUTURE_RV_POLL_S = 0.05
POD_STREAM_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward"})
KEEP_STATUS_ON_CREATE = frozenset({"nodes"})
RETURN_DELETED_OBJECT = frozenset({"namespaces", "pods"})


class ResourceVerbs(SubresourceHandlers):
    """Mixin of :class:`kubesim.api.Api`."""

    fields: FieldManager
    closing: asyncio.Event
    auth: AuthHooks

    # ---------------------------------------------------------------- resources
    def _resolve(self, info: RequestInfo) -> ResourceType:
        reg = self.store.registry
        rt = reg.get(info.group, info.version, info.resource)
        if rt is None:
            if info.group and not any(g == info.group for g, _ in reg.groups()):
                raise _PageNotFound()
            raise errors.StatusError(
                404, "NotFound", "the server could not find the requested resource", {}
            )
        if info.subresource and not rt.has_sub(info.subresource):
            raise errors.StatusError(
                404, "NotFound", "the server could not find the requested resource", {}
            )
        if rt.namespaced is False and info.namespace and info.resource != "namespaces":
            raise errors.StatusError(
                404, "NotFound", "the server could not find the requested resource", {}
            )
        return rt

    async def _resource(
        self, request: web.Request, info: RequestInfo, user: UserInfo
    ) -> web.StreamResponse:
        try:
            rt = self._resolve(info)
        except _PageNotFound:
            return codec.text_response("404 page not found\n", 404)
        accept = request.headers.get("Accept", "")
        if info.subresource in POD_STREAM_SUBRESOURCES and rt.resource == "pods":
            return await self._pod_stream(request, info)
        codec.check_accept(accept)
        if rt.is_review or (rt.resource == "serviceaccounts" and info.subresource == "token"):
            return await self._review(request, info, rt, user)
        ns = info.namespace if rt.namespaced else ""
        if rt.resource == "namespaces":
            ns = ""
        m = request.method
        if info.subresource == "scale":
            return await self._scale(request, info, rt, ns)
        if rt.resource == "pods" and info.subresource in ("binding", "eviction"):
            return await self._pod_action(request, info, ns)
        if not info.name:
            if m in ("GET", "HEAD"):
                if info.verb == "watch":
                    return await serve_watch(self.store, self.closing, request, rt, ns, None)
                return await self._list(request, rt, ns)
            if m == "POST" and (ns or not rt.namespaced):
                return await self._create(request, info, rt, ns)
            if m == "DELETE" and (ns or not rt.namespaced):
                return await self._delete_collection(request, rt, ns)
            raise errors.method_not_allowed()
        if m in ("GET", "HEAD"):
            if info.verb == "watch":
                return await serve_watch(self.store, self.closing, request, rt, ns, info.name)
            obj = self.store.get_item(rt.group, rt.resource, ns, info.name)
            if obj is None:
                raise errors.not_found(rt.group, rt.resource, info.name)
            return self._respond_object(request, rt, obj)
        if m == "PUT":
            return await self._update(request, info, rt, ns)
        if m == "PATCH":
            return await self._patch(request, info, rt, ns)
        if m == "DELETE":
            return await self._delete(request, info, rt, ns)
        raise errors.method_not_allowed()

    def _respond_object(
        self, request: web.Request, rt: ResourceType, obj: dict[str, Any], status: int = 200
    ) -> web.Response:
        accept = request.headers.get("Accept", "")
        if codec.wants_table(accept):
            return codec.json_response(
                tables.to_table(
                    rt,
                    [obj],
                    request.query.get("includeObject", "Metadata"),
                    resource_version=obj["metadata"].get("resourceVersion", ""),
                    cont=None,
                    remaining=None,
                ),
                status=status,
            )
        if codec.wants_partial_metadata(accept) == "PartialObjectMetadata":
            return codec.json_response(tables.partial_metadata(obj), status=status)
        return codec.json_response(as_version(rt, obj), status=status)

    async def _list(self, request: web.Request, rt: ResourceType, ns: str) -> web.Response:
        q = request.query
        rv = q.get("resourceVersion", "")
        rv_match = q.get("resourceVersionMatch", "")
        if rv_match and not rv:
            raise _list_invalid(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                q.get("sendInitialEvents"),
            )
        if q.get("sendInitialEvents"):
            raise _list_invalid(None, None, q.get("sendInitialEvents"))
        if rv and rv != "0":
            try:
                rv_int = int(rv)
            except ValueError as exc:
                raise errors.unparsable_resource_version(rv) from exc
            if rv_match == "Exact" and rv_int < self.store.compacted_revision:
                raise errors.expired("The resourceVersion for the provided list is too old.")
            if rv_int > self.store.revision:
                await self._wait_for_revision(rv_int, rv_match == "Exact")
        sel = selector_for(rt, q.get("labelSelector", ""), q.get("fieldSelector", ""))
        items = self.store.list_items(rt.group, rt.resource, ns or None)
        if not sel.empty:
            items = [i for i in items if sel.matches(i)]
        try:
            limit = int(q.get("limit", "0") or 0)
        except ValueError:
            limit = 0
        if rv == "0":
            limit = 0
        page, cont, remaining, list_rv = paginate(
            items, limit, q.get("continue", ""), self.store.revision, self.store.compacted_revision
        )
        accept = request.headers.get("Accept", "")
        rv_str = str(list_rv)
        if codec.wants_table(accept):
            return codec.json_response(
                tables.to_table(
                    rt, page, q.get("includeObject", "Metadata"), rv_str, cont, remaining
                )
            )
        partial = codec.wants_partial_metadata(accept)
        md: dict[str, Any] = {"resourceVersion": rv_str}
        if cont:
            md["continue"] = cont
        if remaining is not None:
            md["remainingItemCount"] = remaining
        if partial:
            return codec.json_response(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": md,
                    "items": [tables.partial_metadata(i) for i in page],
                }
            )
        return codec.json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": md,
                "items": [as_version(rt, o) for o in page] if rt.crd is not None else page,
            }
        )

    async def _wait_for_revision(self, rv: int, exact: bool) -> None:
        """An RV from the future: Exact fails at once (etcd), NotOlderThan waits a little."""
        if exact:
            raise errors.StatusError(
                500, "", "etcdserver: mvcc: required revision is a future revision"
            )
        deadline = asyncio.get_running_loop().time() + FUTURE_RV_WAIT_S
        while self.store.revision < rv:
            if asyncio.get_running_loop().time() >= deadline:
                raise errors.StatusError(
                    504,
                    "Timeout",
                    f"Timeout: Too large resource version: {rv}, current: {self.store.revision}",
                    {
                        "causes": [
                            {
                                "reason": "ResourceVersionTooLarge",
                                "message": "Too large resource version",
                            }
                        ],
                        "retryAfterSeconds": 1,
                    },
                )
            await asyncio.sleep(FUTURE_RV_POLL_S)

    def _manager(self, request: web.Request, default: str = "unknown") -> str:
        fm = request.query.get("fieldManager")
        if fm:
            return fm
        ua = request.headers.get("User-Agent", "")
        return ua.split("/")[0] if ua else default

    def _check_kind(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if (kind and kind != rt.kind) or (api_version and api_version != rt.api_version):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
                if api_version and api_version != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )

    def _validate_fields(self, request: web.Request, rt: ResourceType, obj: dict[str, Any]) -> None:
        """fieldValidation: Strict rejects undeclared fields; Warn (the default) and Ignore drop
        them, Warn with a ``Warning`` header per field."""
        mode = request.query.get("fieldValidation", "Warn")
        if mode == "Strict":
            openapi.strict_validate(self.store.registry, rt, obj)
            return
        unknown = openapi.unknown_fields(self.store.registry, rt, obj, prune=True)
        if unknown and mode != "Ignore":
            if WARNINGS_KEY not in request:
                request[WARNINGS_KEY] = []
            request[WARNINGS_KEY].extend(f'unknown field "{u}"' for u in unknown)

    async def _create(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, ns: str
    ) -> web.Response:
        if info.name:
            raise errors.method_not_allowed()
        obj = await self._read_body(request, rt)
        self._check_kind(rt, obj)
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        _set_namespace(rt, md, ns)
        self._validate_fields(request, rt, obj)
        if rt.has_sub("status") and rt.resource not in KEEP_STATUS_ON_CREATE:
            obj.pop("status", None)  # PrepareForCreate resets status
        self.fields.record_update(obj, None, self._manager(request), rt.api_version)
        validate_workload(rt, obj)
        admit_write(request, self.auth, rt, obj, None)
        created = self.store.create_item(rt.group, rt.resource, obj, dry_run=self._dry_run(request))
        return self._respond_object(request, rt, created, status=201)

    async def _update(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, ns: str
    ) -> web.Response:
        obj = await self._read_body(request, rt)
        self._check_kind(rt, obj)
        md = obj.setdefault("metadata", {})
        if md.get("name") and md["name"] != info.name:
            raise errors.bad_request(
                f"the name of the object ({md['name']}) does not match the name on the URL "
                f"({info.name})"
            )
        md["name"] = info.name
        _set_namespace(rt, md, ns)
        self._validate_fields(request, rt, obj)
        old = self.store.get_item(rt.group, rt.resource, ns, info.name)
        if old is None:
            raise errors.not_found(rt.group, rt.resource, info.name)
        if not info.subresource:
            validate_workload(rt, obj)
        self.fields.record_update(obj, old, self._manager(request), rt.api_version)
        if not info.subresource:
            admit_write(request, self.auth, rt, obj, old)
        updated = self.store.update_item(
            rt.group, rt.resource, obj, info.subresource or None, dry_run=self._dry_run(request)
        )
        return self._respond_object(request, rt, updated)

    async def _patch(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, ns: str
    ) -> web.Response:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in PATCH_TYPES:
            raise errors.StatusError(415, "UnsupportedMediaType", "415: Unsupported Media Type", {})
        body = await request.read()
        if len(body) > MAX_BODY_BYTES:
            raise errors.StatusError(413, "RequestEntityTooLarge", "request entity too large")
        old = self.store.get_item(rt.group, rt.resource, ns, info.name)
        dry = self._dry_run(request)
        if ctype.startswith("application/apply-patch"):
            cfg = codec.decode_object(body, "application/apply-patch+yaml", rt.kind)
            manager = request.query.get("fieldManager", "")
            if not manager:
                raise errors.StatusError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                    "required for apply patch",
                    {"group": "meta.k8s.io", "kind": "PatchOptions"},
                )
            if request.query.get("fieldValidation") != "Ignore":
                openapi.apply_validate(self.store.registry, rt, cfg, ns)
            force = request.query.get("force", "") in ("true", "1")
            new = self.fields.apply(rt, old, cfg, manager, force, info.subresource or "")
            if old is None:
                md = new.setdefault("metadata", {})
                md["name"] = info.name
                if rt.namespaced:
                    md["namespace"] = ns
                admit_write(request, self.auth, rt, new, None)
                validate_workload(rt, new)
                created = self.store.create_item(rt.group, rt.resource, new, dry_run=dry)
                return self._respond_object(request, rt, created, status=201)
            if not info.subresource:
                validate_workload(rt, new)
                admit_write(request, self.auth, rt, new, old)
            result = self.store.update_item(
                rt.group, rt.resource, new, info.subresource or None, dry_run=dry
            )
            return self._respond_object(request, rt, result)
        if old is None:
            raise errors.not_found(rt.group, rt.resource, info.name)
        base = copy.deepcopy(old)
        new = apply_patch(ctype, base, body, rt)
        nmd = new.setdefault("metadata", {})
        if not isinstance(nmd, dict):
            raise errors.bad_request("metadata must be an object")
        nmd["name"] = info.name
        if rt.namespaced:
            nmd["namespace"] = ns
        if "resourceVersion" not in nmd:
            nmd["resourceVersion"] = old["metadata"]["resourceVersion"]
        self._validate_fields(request, rt, new)
        if not info.subresource:
            validate_workload(rt, new)
        self.fields.record_update(new, old, self._manager(request), rt.api_version)
        if not info.subresource:
            admit_write(request, self.auth, rt, new, old)
        result = self.store.update_item(
            rt.group, rt.resource, new, info.subresource or None, dry_run=dry
        )
        return self._respond_object(request, rt, result)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        body = await request.read()
        opts: dict[str, Any] = {}
        if body.strip():
            opts = codec.decode_object(
                body, request.headers.get("Content-Type", ""), "DeleteOptions"
            )
        q = request.query
        if q.get("propagationPolicy"):
            opts["propagationPolicy"] = q["propagationPolicy"]
        if q.get("orphanDependents") in ("true", "false") and "propagationPolicy" not in opts:
            opts["propagationPolicy"] = (
                "Orphan" if q["orphanDependents"] == "true" else "Background"
            )
        if opts.get("orphanDependents") is True and "propagationPolicy" not in opts:
            opts["propagationPolicy"] = "Orphan"
        if "All" in q.getall("dryRun", []) or "All" in (opts.get("dryRun") or []):
            opts["dryRun"] = ["All"]
        return opts

    async def _delete(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, ns: str
    ) -> web.Response:
        opts = await self._delete_options(request)
        pre = opts.get("preconditions") or {}
        last = self.store.delete_item(
            rt.group,
            rt.resource,
            ns,
            info.name,
            propagation=opts.get("propagationPolicy"),
            precondition_rv=pre.get("resourceVersion"),
            precondition_uid=pre.get("uid"),
            dry_run=bool(opts.get("dryRun")),
        )
        if last is None:
            raise errors.not_found(rt.group, rt.resource, info.name)
        if (
            rt.resource in RETURN_DELETED_OBJECT
            or last["metadata"].get("deletionTimestamp")
            or opts.get("dryRun")
        ):
            return self._respond_object(request, rt, last)
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": info.name,
                **({"group": rt.group} if rt.group else {}),
                "kind": rt.resource,
                "uid": last["metadata"].get("uid", ""),
            },
        }
        return codec.json_response(status)

    async def _delete_collection(
        self, request: web.Request, rt: ResourceType, ns: str
    ) -> web.Response:
        if "deletecollection" not in rt.verbs:
            raise errors.method_not_allowed()
        opts = await self._delete_options(request)
        sel = selector_for(
            rt, request.query.get("labelSelector", ""), request.query.get("fieldSelector", "")
        )
        deleted = []
        for item in list(self.store.list_items(rt.group, rt.resource, ns or None)):
            if not sel.matches(item):
                continue
            md = item["metadata"]
            last = self.store.delete_item(
                rt.group,
                rt.resource,
                md.get("namespace"),
                md["name"],
                propagation=opts.get("propagationPolicy"),
                dry_run=bool(opts.get("dryRun")),
            )
            if last is not None:
                deleted.append(last)
        return codec.json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.revision)},
                "items": deleted,
            }
        )


def _set_namespace(rt: ResourceType, md: dict[str, Any], ns: str) -> None:
    """A namespaced object's metadata takes the URL's namespace (a different one is refused)."""
    if rt.namespaced:
        if md.get("namespace") and md["namespace"] != ns:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        md["namespace"] = ns


class _PageNotFound(Exception):
    pass


def _list_invalid(
    field: str | None, message: str | None, send_initial: str | None
) -> errors.StatusError:
    causes = []
    if field and message:
        causes.append({"reason": "FieldValueForbidden", "message": message, "field": field})
    if send_initial:
        causes.append(
            {
                "reason": "FieldValueForbidden",
                "message": "Forbidden: sendInitialEvents is forbidden for list",
                "field": "sendInitialEvents",
            }
        )
    return errors.invalid_list_options(causes)
