"""The request pipeline: authn, impersonation, authz, then discovery or resource verbs."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from aiohttp import web

from . import codec, discovery, errors, openapi, tables
from .authhooks import AuthHooks, forbidden_message
from .authtypes import RequestAttributes, UserInfo
from .crd import CrdController
from .listing import paginate
from .logutil import LazyLogger
from .options import Options
from .patch import apply_patch
from .requestinfo import RequestInfo, parse
from .resources import ResourceType
from .selectors import selector_for
from .ssa import FieldManager
from .store import Store
from .watch import serve_watch

log = LazyLogger(component="kubesim.api")

WARNINGS_KEY: web.RequestKey[list[str]] = web.RequestKey("kubesim.warnings", list[str])
FUTURE_RV_WAIT_S = 3.0
FUTURE_RV_POLL_S = 0.05
MAX_BODY_BYTES = 16 * 1024 * 1024
POD_STREAM_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward"})
PATCH_TYPES = frozenset(
    {
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
        "application/apply-patch+yaml",
        "application/apply-patch+cbor",
    }
)
REVIEW_KINDS = {
    "tokenreviews": "TokenReview",
    "selfsubjectreviews": "SelfSubjectReview",
    "subjectaccessreviews": "SubjectAccessReview",
    "selfsubjectaccessreviews": "SelfSubjectAccessReview",
    "localsubjectaccessreviews": "LocalSubjectAccessReview",
    "selfsubjectrulesreviews": "SelfSubjectRulesReview",
}
KEEP_STATUS_ON_CREATE = frozenset({"nodes"})
RETURN_DELETED_OBJECT = frozenset({"namespaces", "pods"})
HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


class Api:
    def __init__(self, store: Store, options: Options) -> None:
        self.store = store
        self.options = options
        self.auth = AuthHooks(options, store)
        self.sim_ctx: Any = None
        self.closing = asyncio.Event()
        self.fields = FieldManager()
        self.crds = CrdController(store)
        self._discovery_cache: dict[tuple[int, str], bytes] = {}

    async def start(self) -> None:
        self.crds.start()
        self.auth.seed()

    async def stop(self) -> None:
        self.closing.set()
        self.crds.stop()
        await self.auth.close()

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.handle)

    # ---------------------------------------------------------------- pipeline
    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            resp = await self._handle(request)
            for text in request.get(WARNINGS_KEY, []):
                if not resp.prepared:
                    resp.headers.add("Warning", '299 - "' + text.replace('"', '\\"') + '"')
            return resp
        except errors.StatusError as err:
            return codec.status_response(err, request.headers.get("Accept", ""))
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("request_failed", path=request.path, method=request.method)
            return codec.status_response(errors.internal(type(exc).__name__))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        watch_q = request.query.get("watch", "") in ("1", "true", "True")
        info = parse(request.method, request.path, watch_q)
        user = await self.auth.authenticate(request)
        attrs = RequestAttributes(
            user=user,
            verb=info.verb,
            api_group=info.group,
            api_version=info.version,
            resource=info.resource,
            subresource=info.subresource,
            namespace=info.namespace,
            name=info.name,
            path=request.path,
            is_resource_request=info.is_resource_request,
        )
        allowed, reason = await self.auth.authorize(attrs)
        if not allowed:
            raise forbidden_message(attrs, reason)
        if not info.is_resource_request:
            return await self._non_resource(request)
        return await self._resource(request, info, user)

    # ---------------------------------------------------------------- non-resource
    async def _non_resource(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        reg = self.store.registry
        if request.method not in ("GET", "HEAD"):
            if path in ("/api", "/apis", "/version") or path.startswith("/apis/"):
                raise errors.method_not_allowed()
            return codec.text_response("404 page not found\n", 404)
        if path == "/version":
            return codec.json_response(discovery.VERSION_INFO)
        if path in HEALTH_PATHS:
            return web.Response(text="ok", content_type="text/plain")
        if path == "/api":
            return self._discovery(request, legacy=True)
        if path == "/apis":
            return self._discovery(request, legacy=False)
        if path == "/api/v1":
            return codec.json_response(discovery.resource_list(reg, "", "v1"))
        parts = path.strip("/").split("/")
        if parts[0] == "apis" and len(parts) == 2:
            doc = discovery.api_group(reg, parts[1])
            if doc is not None:
                return codec.json_response(doc)
        if parts[0] == "apis" and len(parts) == 3:
            doc = discovery.resource_list(reg, parts[1], parts[2])
            if doc is not None:
                return codec.json_response(doc)
        if parts[0] == "openapi":
            return openapi.serve(request, self.store.registry)
        return codec.text_response("404 page not found\n", 404)

    def _discovery(self, request: web.Request, legacy: bool) -> web.Response:
        accept = request.headers.get("Accept", "")
        reg = self.store.registry
        if "as=APIGroupDiscoveryList" in accept:
            chosen = None
            for part in accept.split(","):
                p = part.strip()
                if "as=APIGroupDiscoveryList" in p and "g=apidiscovery.k8s.io" in p:
                    if "v=v2beta1" in p:
                        chosen = ("v2beta1", discovery.AGGREGATED_V2BETA1)
                    elif "v=v2" in p and "v=v2b" not in p:
                        chosen = ("v2", discovery.AGGREGATED_V2)
                    if chosen:
                        break
                elif p.split(";")[0] in ("application/json", "*/*") and "as=" not in p:
                    break
            if chosen is not None:
                ver, ctype = chosen
                key = (reg.generation * 4 + (1 if legacy else 0), ver)
                body = self._discovery_cache.get(key)
                if body is None:
                    body = discovery.encode(
                        discovery.aggregated(reg, legacy, f"apidiscovery.k8s.io/{ver}")
                    )
                    self._discovery_cache[key] = body
                tag = discovery.etag(body)
                headers = {"Cache-Control": "public", "Etag": tag, "Vary": "Accept"}
                if request.headers.get("If-None-Match") == tag:
                    return web.Response(status=304, headers=headers)
                resp = web.Response(body=body, headers=headers)
                resp.headers["Content-Type"] = ctype
                return resp
            if not any(
                p.split(";")[0].strip() in ("application/json", "*/*", "") and "as=" not in p
                for p in accept.split(",")
            ):
                raise errors.StatusError(406, "NotAcceptable", codec.NOT_ACCEPTABLE_MSG, {})
        if legacy:
            host = request.host
            return codec.json_response(discovery.api_versions(host))
        return codec.json_response(discovery.api_group_list(reg))

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
        if not info.name:
            if m in ("GET", "HEAD"):
                if info.verb == "watch":
                    return await serve_watch(self, request, rt, ns, None)
                return await self._list(request, rt, ns)
            if m == "POST":
                return await self._create(request, info, rt, ns)
            if m == "DELETE":
                return await self._delete_collection(request, rt, ns)
            raise errors.method_not_allowed()
        if m in ("GET", "HEAD"):
            if info.verb == "watch":
                return await serve_watch(self, request, rt, ns, info.name)
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
        return codec.json_response(obj, status=status)

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
                raise errors.StatusError(
                    500,
                    "",
                    f'resourceVersion: Invalid value: "{rv}": strconv.ParseUint: '
                    f'parsing "{rv}": invalid syntax',
                ) from exc
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
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": md, "items": page}
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

    async def _read_body(self, request: web.Request, rt: ResourceType) -> dict[str, Any]:
        body = await request.read()
        if len(body) > MAX_BODY_BYTES:
            raise errors.StatusError(413, "RequestEntityTooLarge", "request entity too large")
        return codec.decode_object(body, request.headers.get("Content-Type", ""), rt.kind)

    def _dry_run(self, request: web.Request) -> bool:
        return "All" in request.query.getall("dryRun", [])

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
        if rt.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            md["namespace"] = ns
        self._validate_fields(request, rt, obj)
        if rt.has_sub("status") and rt.resource not in KEEP_STATUS_ON_CREATE:
            obj.pop("status", None)  # PrepareForCreate resets status
        self.fields.record_update(obj, None, self._manager(request), rt.api_version)
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
        if rt.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            md["namespace"] = ns
        self._validate_fields(request, rt, obj)
        old = self.store.get_item(rt.group, rt.resource, ns, info.name)
        if old is None:
            raise errors.not_found(rt.group, rt.resource, info.name)
        self.fields.record_update(obj, old, self._manager(request), rt.api_version)
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
                created = self.store.create_item(rt.group, rt.resource, new, dry_run=dry)
                return self._respond_object(request, rt, created, status=201)
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
        self.fields.record_update(new, old, self._manager(request), rt.api_version)
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

    async def _scale(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, ns: str
    ) -> web.Response:
        obj = self.store.get_item(rt.group, rt.resource, ns, info.name)
        if obj is None:
            raise errors.not_found(rt.group, rt.resource, info.name)
        if request.method in ("PUT", "PATCH"):
            if request.method == "PUT":
                scale = await self._read_body(request, rt)
            else:
                ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if ctype not in PATCH_TYPES:
                    raise errors.StatusError(
                        415, "UnsupportedMediaType", "415: Unsupported Media Type", {}
                    )
                scale = apply_patch(ctype, _to_scale(obj), await request.read(), None)
            replicas = (scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise errors.invalid(
                    "autoscaling",
                    "Scale",
                    info.name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "message": "Invalid value: must be >= 0",
                            "field": "spec.replicas",
                        }
                    ],
                )
            new = copy.deepcopy(obj)
            new.setdefault("spec", {})["replicas"] = replicas
            obj = self.store.update_item(rt.group, rt.resource, new, dry_run=self._dry_run(request))
        elif request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        return codec.json_response(_to_scale(obj))

    async def _review(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, user: UserInfo
    ) -> web.Response:
        if request.method != "POST":
            raise errors.method_not_allowed()
        kind = REVIEW_KINDS.get(rt.resource, "TokenRequest")
        if rt.resource == "serviceaccounts":
            sa = self.store.get_item("", "serviceaccounts", info.namespace, info.name)
            if sa is None:
                raise errors.not_found("", "serviceaccounts", info.name)
        body = await self._read_body(request, rt)
        try:
            from .auth import reviews
        except ImportError:
            reviews = None  # type: ignore[assignment]
        if reviews is None:
            raise errors.StatusError(
                404, "NotFound", "the server could not find the requested resource", {}
            )
        ctx = {
            "namespace": info.namespace,
            "name": info.name,
            "store": self.store,
            "options": self.options,
            "api": self,
            "request": request,
        }
        res: dict[str, Any] = await reviews.handle(kind, body, user, ctx)
        return codec.json_response(res, status=201)

    async def _pod_stream(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        pod = self.store.get_item("", "pods", info.namespace, info.name)
        if pod is None:
            raise errors.not_found("", "pods", info.name)
        try:
            from .sim import streaming
        except ImportError:
            streaming = None  # type: ignore[assignment]
        if streaming is None or self.sim_ctx is None:
            if info.subresource == "log" and not (pod.get("spec") or {}).get("nodeName"):
                return web.Response(status=204)
            raise errors.bad_request(f"pod {info.name} does not have a host assigned")
        result: web.StreamResponse = await streaming.handle(
            info.subresource, request, pod, self.sim_ctx
        )
        return result


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
    parts = [f"{c['field']}: {c['message']}" for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return errors.StatusError(
        422,
        "Invalid",
        f'ListOptions.meta.k8s.io "" is invalid: {joined}',
        {"group": "meta.k8s.io", "kind": "ListOptions", "causes": causes},
    )


def _to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj["metadata"]
    sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: md[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in md
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(sel.items())),
        },
    }
