"""Impersonation headers, checked against the ``impersonate`` verb as kube-apiserver does
(staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDictProxy

from kubesim.authtypes import RequestAttributes, UserInfo

from .forbidden import forbidden_error
from .rules import sa_groups, sa_username, split_sa_username

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
EXTRA_PREFIX = "impersonate-extra-"
AUTH_GROUP = "authentication.k8s.io"
AUTH_VERSION = "authentication.k8s.io/v1"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"


class SupportsAuthorize(Protocol):
    def authorize(self, attrs: RequestAttributes) -> tuple[bool, str]: ...


@dataclass(frozen=True)
class Ref:
    """A v1.ObjectReference as the filter builds it (printed with Go's %v in the 500 text)."""

    kind: str
    name: str
    namespace: str = ""
    api_version: str = ""
    field_path: str = ""

    def go(self) -> str:
        return (
            f"{{{self.kind} {self.namespace} {self.name}  {self.api_version}  {self.field_path}}}"
        )


class ImpersonationError(Exception):
    """Impersonation requested without a user: kube-apiserver answers 500 text/plain."""


def build_requests(headers: CIMultiDictProxy[str]) -> list[Ref]:
    """The impersonation requests in kube's order: user, groups, extras, uid."""
    refs: list[Ref] = []
    user = headers.get(USER_HEADER, "")
    if user:
        split = split_sa_username(user)
        refs.append(Ref("ServiceAccount", split[1], split[0]) if split else Ref("User", user))
    groups = headers.getall(GROUP_HEADER, [])
    refs.extend(Ref("Group", g) for g in groups)
    has_extra = False
    for key, value in headers.items():
        if not key.lower().startswith(EXTRA_PREFIX):
            continue
        has_extra = True
        extra_key = unquote(key[len(EXTRA_PREFIX) :].lower())
        refs.append(Ref("UserExtra", value, api_version=AUTH_VERSION, field_path=extra_key))
    uid = headers.get(UID_HEADER, "")
    if uid:
        refs.append(Ref("UID", uid, api_version=AUTH_VERSION))
    if (groups or has_extra or uid) and not user:
        raise ImpersonationError(
            "requested [" + " ".join(r.go() for r in refs) + "] without impersonating a user"
        )
    return refs


def internal_error(path: str, exc: ImpersonationError) -> web.HTTPInternalServerError:
    """The 500 text/plain answer (responsewriters.InternalError)."""
    resp = web.HTTPInternalServerError(
        text=f'Internal Server Error: "{path}": {exc}\n', content_type="text/plain"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def impersonate(
    headers: CIMultiDictProxy[str], user: UserInfo, authorizer: SupportsAuthorize
) -> UserInfo:
    """The identity the request acts as. Raises ImpersonationError, or StatusError (403)."""
    refs = build_requests(headers)
    if not refs:
        return user
    groups_specified = bool(headers.getall(GROUP_HEADER, []))
    name, uid = "", ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for ref in refs:
        attrs = RequestAttributes(user=user, verb="impersonate", name=ref.name)
        if ref.kind == "ServiceAccount":
            attrs.resource, attrs.namespace = "serviceaccounts", ref.namespace
            name = sa_username(ref.namespace, ref.name)
            if not groups_specified:
                groups = sa_groups(ref.namespace)
        elif ref.kind == "User":
            attrs.resource = "users"
            name = ref.name
        elif ref.kind == "Group":
            attrs.resource = "groups"
            groups.append(ref.name)
        elif ref.kind == "UserExtra":
            attrs.api_group, attrs.api_version = AUTH_GROUP, "v1"
            attrs.resource, attrs.subresource = "userextras", ref.field_path
            extra.setdefault(ref.field_path, []).append(ref.name)
        else:
            attrs.api_group, attrs.api_version = AUTH_GROUP, "v1"
            attrs.resource = "uids"
            uid = ref.name
        allowed, reason = authorizer.authorize(attrs)
        if not allowed:
            raise forbidden_error(attrs, reason)
    if name != ANONYMOUS:
        if not any(g in (AUTHENTICATED, UNAUTHENTICATED) for g in groups):
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)
    return UserInfo(name=name, uid=uid, groups=groups, extra=extra)


def apply_impersonation(
    request: web.Request, user: UserInfo, authorizer: SupportsAuthorize
) -> UserInfo:
    """For the API core: the effective user; raises the 500 text/plain as an aiohttp
    exception, and 403 as ``StatusError``."""
    try:
        return impersonate(request.headers, user, authorizer)
    except ImpersonationError as exc:
        raise internal_error(request.path, exc) from exc
