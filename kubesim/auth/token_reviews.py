"""TokenReview and TokenRequest (``kubectl create token``)."""

from __future__ import annotations

import datetime
from typing import Any

from kubesim import errors
from kubesim.meta import now_rfc3339

from .reviewbase import ReviewContext, envelope, invalid, user_info_json
from .serviceaccounts import BOUND_KINDS, DEFAULT_EXPIRATION_S, MAX_EXPIRATION_S, MIN_EXPIRATION_S


async def token_review(body: dict[str, Any], ctx: ReviewContext) -> dict[str, Any]:
    spec = dict(body.get("spec") or {})
    token = str(spec.get("token", ""))
    wanted = [str(a) for a in spec.get("audiences") or []]
    user, error = await ctx.authenticator.review_token(token, wanted or None)
    status: dict[str, Any] = {}
    if user is not None:
        status["authenticated"] = True
        status["user"] = user_info_json(user)
        api_auds = ctx.authenticator.sa_tokens.api_audiences
        status["audiences"] = [a for a in wanted if a in api_auds] if wanted else list(api_auds)
        if wanted and not status["audiences"]:
            status["audiences"] = wanted
    else:
        status["user"] = {}
        if error:
            status["error"] = error
    out = envelope("TokenReview", {"creationTimestamp": None})
    out["spec"] = spec
    out["status"] = status
    return out


def _stamp(unix_s: int) -> str:
    return datetime.datetime.fromtimestamp(unix_s, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_request(body: dict[str, Any], ctx: ReviewContext) -> dict[str, Any]:
    ns, name = ctx.namespace, ctx.name
    sa = ctx.store.get_item("", "serviceaccounts", ns, name)
    if sa is None:
        raise errors.not_found("", "serviceaccounts", name)
    spec = dict(body.get("spec") or {})
    expiration = int(spec.get("expirationSeconds") or DEFAULT_EXPIRATION_S)
    if expiration < MIN_EXPIRATION_S:
        raise invalid(
            "TokenRequest",
            name,
            "spec.expirationSeconds",
            f"Invalid value: {expiration}: may not specify a duration less than 10 minutes",
        )
    if expiration > MAX_EXPIRATION_S:
        raise invalid(
            "TokenRequest",
            name,
            "spec.expirationSeconds",
            f"Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds",
        )
    audiences = [str(a) for a in spec.get("audiences") or []]
    bound = None
    ref = spec.get("boundObjectRef")
    if ref:
        kind = str(ref.get("kind", ""))
        resource = BOUND_KINDS.get(kind)
        if resource is None:
            raise invalid(
                "TokenRequest",
                name,
                "spec.boundObjectRef.kind",
                f'Unsupported value: "{kind}": supported values: "Pod", "Secret", "Node"',
            )
        bound = ctx.store.get_item("", resource, "" if kind == "Node" else ns, str(ref.get("name")))
        if bound is None:
            raise errors.not_found("", resource, str(ref.get("name", "")))
        if ref.get("uid") and ref["uid"] != bound["metadata"].get("uid"):
            raise errors.conflict(
                "",
                kind,
                str(ref.get("name", "")),
                "the UID in the bound object reference "
                f"({ref['uid']}) does not match the UID in record. The object might have been "
                "deleted and then recreated",
            )
        pod_sa = (bound.get("spec") or {}).get("serviceAccountName") or "default"
        if kind == "Pod" and pod_sa != name:
            raise errors.bad_request(
                f'cannot bind token for serviceaccount "{name}" to pod running with different '
                "serviceaccount name."
            )
    tokens = ctx.authenticator.sa_tokens
    issued = tokens.issue(ns, sa, audiences=audiences or None, expiration_s=expiration, bound=bound)
    out_spec: dict[str, Any] = {
        "audiences": audiences or list(tokens.api_audiences),
        "expirationSeconds": expiration,
        "boundObjectRef": None,
    }
    if bound is not None and ref:
        out_spec["boundObjectRef"] = {
            "kind": bound.get("kind", ref.get("kind")),
            "apiVersion": bound.get("apiVersion", "v1"),
            "name": bound["metadata"]["name"],
            "uid": bound["metadata"]["uid"],
        }
    out = envelope(
        "TokenRequest", {"name": name, "namespace": ns, "creationTimestamp": now_rfc3339()}
    )
    out["spec"] = out_spec
    out["status"] = {"token": issued.token, "expirationTimestamp": _stamp(issued.expires_at)}
    return out
