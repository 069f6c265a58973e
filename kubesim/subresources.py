"""Subresources with their own shapes: scale, the review APIs and pod streams."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from . import codec, errors
from .authtypes import UserInfo
from .options import Options
from .patch import apply_patch
from .requestinfo import RequestInfo
from .resources import ResourceType
from .store import Store

MAX_BODY_BYTES = 16 * 1024 * 1024
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


class SubresourceHandlers:
    """Mixin of :class:`kubesim.api.Api` (uses its store, options and sim context)."""

    store: Store
    options: Options
    sim_ctx: Any

    def _dry_run(self, request: web.Request) -> bool:
        return "All" in request.query.getall("dryRun", [])

    async def _read_body(self, request: web.Request, rt: ResourceType) -> dict[str, Any]:
        body = await request.read()
        if len(body) > MAX_BODY_BYTES:
            raise errors.StatusError(413, "RequestEntityTooLarge", "request entity too large")
        return codec.decode_object(body, request.headers.get("Content-Type", ""), rt.kind)

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

    async def _pod_action(self, request: web.Request, info: RequestInfo, ns: str) -> web.Response:
        """pods/binding (what a scheduler posts) and pods/eviction (what kubectl drain posts)."""
        if request.method != "POST":
            raise errors.method_not_allowed()
        pod = self.store.get_item("", "pods", ns, info.name)
        if pod is None:
            raise errors.not_found("", "pods", info.name)
        kind = "Binding" if info.subresource == "binding" else "Eviction"
        body = codec.decode_object(
            await request.read(), request.headers.get("Content-Type", ""), kind
        )
        dry = self._dry_run(request)
        if info.subresource == "binding":
            node = ((body.get("target") or {}).get("name")) or ""
            if (pod.get("spec") or {}).get("nodeName"):
                raise errors.conflict(
                    "",
                    "pods",
                    info.name,
                    f'pod {info.name} is already assigned to node "{pod["spec"]["nodeName"]}"',
                )
            new = copy.deepcopy(pod)
            new.setdefault("spec", {})["nodeName"] = node
            self.store.update_item("", "pods", new, dry_run=dry)
        else:
            self.store.delete_item("", "pods", ns, info.name, dry_run=dry)
        return codec.json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "code": 201,
            },
            status=201,
        )

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
