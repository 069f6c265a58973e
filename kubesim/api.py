"""The request pipeline: authn, impersonation, authz, then discovery or resource verbs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from . import codec, discovery, errors, openapi
from .admission import USER_KEY
from .audit import AuditLog
from .audit import now as audit_now
from .authhooks import AuthHooks, forbidden_message
from .authtypes import RequestAttributes
from .crd import CrdController
from .logutil import LazyLogger
from .options import Options
from .requestinfo import RequestInfo, parse
from .ssa import FieldManager
from .store import Store
from .verbs import WARNINGS_KEY, ResourceVerbs

log = LazyLogger(component="kubesim.api")

HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


class Api(ResourceVerbs):
    def __init__(self, store: Store, options: Options) -> None:
        self.store = store
        self.options = options
        self.auth = AuthHooks(options, store)
        self.sim_ctx: Any = None
        self.closing = asyncio.Event()
        self.fields = FieldManager()
        self.crds = CrdController(store)
        self._discovery_cache: dict[tuple[int, str], bytes] = {}
        self.audit: AuditLog | None = None
        if options.audit_log_path:
            self.audit = AuditLog(options.audit_log_path, options.audit_log_mutating_only)

    async def start(self) -> None:
        self.crds.start()
        self.auth.seed()

    async def stop(self) -> None:
        self.closing.set()
        self.crds.stop()
        await self.auth.close()
        if self.audit is not None:
            self.audit.close()

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.handle)

    # ---------------------------------------------------------------- pipeline
    async def handle(self, request: web.Request) -> web.StreamResponse:
        received = audit_now()
        audit_id = str(uuid.uuid4())
        info = parse(request.method, request.path,
                     request.query.get("watch", "") in ("1", "true", "True"))
        audited = self.audit is not None and self.audit.wanted(info)
        try:
            resp = await self._handle_errors(request, info)
        except web.HTTPException as exc:
            if audited:
                self._audit(request, info, audit_id, received, exc, exc.status)
            raise
        except asyncio.CancelledError:  # the client went away; a write may have been applied
            if audited:
                self._audit(request, info, audit_id, received, None, None)
            raise
        if not resp.prepared:
            resp.headers["Audit-Id"] = audit_id
            for text in request.get(WARNINGS_KEY, []):
                resp.headers.add("Warning", '299 - "' + text.replace('"', '\\"') + '"')
        if audited:
            self._audit(request, info, audit_id, received, resp, resp.status)
        return resp

    def _audit(self, request: web.Request, info: RequestInfo, audit_id: str,
               received: datetime, resp: web.StreamResponse | None, code: int | None) -> None:
        assert self.audit is not None
        try:
            self.audit.write(self.audit.event(request, info, audit_id, received, resp, code,
                                              request.get(USER_KEY)))
        except Exception:  # never fail the request for its audit line
            log.exception("audit_write_failed", path=request.path)

    async def _handle_errors(self, request: web.Request,
                             info: RequestInfo) -> web.StreamResponse:
        try:
            return await self._handle(request, info)
        except errors.StatusError as err:
            return codec.status_response(err, request.headers.get("Accept", ""))
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("request_failed", path=request.path, method=request.method)
            return codec.status_response(errors.internal(type(exc).__name__))

    async def _handle(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        user = await self.auth.authenticate(request)
        request[USER_KEY] = user
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
