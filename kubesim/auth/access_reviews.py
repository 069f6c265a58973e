"""SubjectAccessReview, SelfSubjectAccessReview, LocalSubjectAccessReview (``kubectl auth
can-i``) and SelfSubjectRulesReview (``kubectl auth can-i --list``)."""

from __future__ import annotations

from typing import Any

from kubesim.authtypes import RequestAttributes, UserInfo

from .reviewbase import ReviewContext, envelope, invalid


def _attributes(kind: str, spec: dict[str, Any], user: UserInfo) -> RequestAttributes:
    res: dict[str, Any] | None = spec.get("resourceAttributes")
    non: dict[str, Any] | None = spec.get("nonResourceAttributes")
    if (res is None) == (non is None):
        raise invalid(
            kind,
            "",
            "spec.resourceAttributes",
            'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes '
            "must be specified",
        )
    if non is not None:
        return RequestAttributes(
            user=user,
            verb=str(non.get("verb", "")),
            path=str(non.get("path", "")),
            is_resource_request=False,
        )
    assert res is not None
    return RequestAttributes(
        user=user,
        verb=str(res.get("verb", "")),
        api_group=str(res.get("group", "")),
        api_version=str(res.get("version", "")),
        resource=str(res.get("resource", "")),
        subresource=str(res.get("subresource", "")),
        namespace=str(res.get("namespace", "")),
        name=str(res.get("name", "")),
    )


def access_review(
    kind: str, body: dict[str, Any], subject: UserInfo, ctx: ReviewContext
) -> dict[str, Any]:
    spec = dict(body.get("spec") or {})
    attrs = _attributes(kind, spec, subject)
    if kind == "LocalSubjectAccessReview" and attrs.namespace != ctx.namespace:
        raise invalid(
            kind,
            "",
            "spec.resourceAttributes.namespace",
            f'Invalid value: "{attrs.namespace}": must match metadata.namespace',
        )
    allowed, reason = ctx.authorizer.authorize(attrs)
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    metadata: dict[str, Any] = {"creationTimestamp": None}
    if kind == "LocalSubjectAccessReview":
        metadata = {"namespace": ctx.namespace, "creationTimestamp": None}
    out = envelope(kind, metadata)
    out["spec"] = spec
    out["status"] = status
    return out


def subject_from_spec(spec: dict[str, Any]) -> UserInfo:
    extra = {str(k): [str(x) for x in v or []] for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(
        name=str(spec.get("user", "")),
        uid=str(spec.get("uid", "")),
        groups=[str(g) for g in spec.get("groups") or []],
        extra=extra,
    )


def rules_review(body: dict[str, Any], user: UserInfo, ctx: ReviewContext) -> dict[str, Any]:
    spec = dict(body.get("spec") or {})
    namespace = str(spec.get("namespace", ""))
    resource_rules, url_rules, error = ctx.authorizer.rules_for(user, namespace)
    status: dict[str, Any] = {
        "resourceRules": resource_rules,
        "nonResourceRules": url_rules,
        "incomplete": False,
    }
    if error:
        status["evaluationError"] = error
    out = envelope("SelfSubjectRulesReview", {"creationTimestamp": None})
    out["spec"] = spec
    out["status"] = status
    return out
