"""What the review handlers share: the review context, kinds and small builders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubesim import errors
from kubesim.authtypes import UserInfo
from kubesim.store import Store

from .authenticator import Authenticator
from .rbac import Authorizer

AUTHN = "authentication.k8s.io"
AUTHZ = "authorization.k8s.io"

KINDS = {
    "TokenReview": AUTHN,
    "SelfSubjectReview": AUTHN,
    "TokenRequest": AUTHN,
    "SubjectAccessReview": AUTHZ,
    "SelfSubjectAccessReview": AUTHZ,
    "LocalSubjectAccessReview": AUTHZ,
    "SelfSubjectRulesReview": AUTHZ,
}
RESOURCE_KINDS = {
    "tokenreviews": "TokenReview",
    "selfsubjectreviews": "SelfSubjectReview",
    "subjectaccessreviews": "SubjectAccessReview",
    "selfsubjectaccessreviews": "SelfSubjectAccessReview",
    "localsubjectaccessreviews": "LocalSubjectAccessReview",
    "selfsubjectrulesreviews": "SelfSubjectRulesReview",
    "token": "TokenRequest",
}


@dataclass
class ReviewContext:
    """What a review needs besides its body: the auth components and the URL's namespace
    and name (LocalSubjectAccessReview namespace; TokenRequest's service account)."""

    authenticator: Authenticator
    authorizer: Authorizer
    store: Store
    namespace: str = ""
    name: str = ""


def user_info_json(user: UserInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(user.extra[k]) for k in sorted(user.extra)}
    return out


def envelope(kind: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": f"{KINDS[kind]}/v1", "metadata": metadata}


def invalid(kind: str, name: str, field: str, message: str) -> errors.StatusError:
    cause = {"reason": "FieldValueInvalid", "message": message, "field": field}
    return errors.invalid(KINDS[kind], kind, name, [cause])
