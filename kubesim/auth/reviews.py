"""The review APIs: TokenReview, (Self|Local)SubjectAccessReview, SelfSubjectRulesReview,
SelfSubjectReview, and TokenRequest (``serviceaccounts/<name>/token``).

``handle(kind, body, user, ctx)`` takes the decoded request body (JSON or protobuf) and the
already authenticated, impersonated and authorized user, and returns the object to answer
with 201 Created. It raises ``StatusError`` for invalid requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubesim import errors
from kubesim.authtypes import UserInfo
from kubesim.meta import now_rfc3339

from .access_reviews import access_review, rules_review, subject_from_spec
from .reviewbase import (
    KINDS,
    RESOURCE_KINDS,
    ReviewContext,
    envelope,
    invalid,
    user_info_json,
)
from .token_reviews import token_request, token_review

__all__ = ["KINDS", "RESOURCE_KINDS", "ReviewContext", "handle", "review_context", "user_info_json"]


def review_context(ctx: ReviewContext | Mapping[str, Any]) -> ReviewContext:
    """Accept the API core's dict (``api``, ``store``, ``namespace``, ``name``) as well."""
    if isinstance(ctx, ReviewContext):
        return ctx
    hooks = ctx["api"].auth
    return ReviewContext(
        authenticator=hooks.authenticator,
        authorizer=hooks.authorizer,
        store=ctx["store"],
        namespace=str(ctx.get("namespace") or ""),
        name=str(ctx.get("name") or ""),
    )


async def handle(
    kind: str, body: dict[str, Any], user: UserInfo, context: ReviewContext | Mapping[str, Any]
) -> dict[str, Any]:
    """Answer one review/TokenRequest; ``kind`` may also be the resource name (``tokenreviews``)."""
    kind = RESOURCE_KINDS.get(kind, kind)
    ctx = review_context(context)
    if kind == "SelfSubjectReview":
        out = envelope(kind, {"creationTimestamp": now_rfc3339()})
        out["status"] = {"userInfo": user_info_json(user)}
        return out
    if kind == "SelfSubjectAccessReview":
        return access_review(kind, body, user, ctx)
    if kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
        spec = body.get("spec") or {}
        if not spec.get("user") and not spec.get("groups"):
            raise invalid(
                kind,
                "",
                "spec.user",
                'Invalid value: "": at least one of user or group must be specified',
            )
        return access_review(kind, body, subject_from_spec(spec), ctx)
    if kind == "SelfSubjectRulesReview":
        return rules_review(body, user, ctx)
    if kind == "TokenReview":
        return await token_review(body, ctx)
    if kind == "TokenRequest":
        return token_request(body, ctx)
    raise errors.StatusError(
        404, "NotFound", "the server could not find the requested resource", {}
    )
