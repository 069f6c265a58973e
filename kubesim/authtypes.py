"""Identity and request attributes shared by the API core and the auth plug-in (kubesim.auth)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class UserInfo:
    """An authenticated identity, as kube-apiserver's user.Info."""

    name: str
    uid: str = ""
    groups: list[str] = field(default_factory=list)
    extra: dict[str, list[str]] = field(default_factory=dict)


ADMIN_USER = UserInfo(name="kube-admin", groups=["system:masters", "system:authenticated"])


@dataclass
class RequestAttributes:
    """What an authorizer decides on (authorizer.Attributes)."""

    user: UserInfo
    verb: str
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    is_resource_request: bool = True
