"""The API's endpoint table: one declaration per operation (method, path, optional ``?action=``,
who may call it, its JSON body schema). The aiohttp routes and the OpenAPI document are both built
from this table, so the document cannot omit a route; bodies are validated against the same
schemas."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from rancher_server.auth.principal import Principal
from rancher_server.state import ServerState

Schema = dict[str, Any]
AUTH_PUBLIC = "public"  # no token needed
AUTH_USER = "user"  # any valid token
AUTH_ADMIN = "admin"  # a global administrator's token (prefer ``needs``: a global role decides)
PATH_PARAM_RE = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Ctx:
    """What a handler gets besides the request: the state, the caller, the validated body."""

    request: web.Request
    state: ServerState
    principal: Principal | None
    body: dict[str, Any]

    @property
    def user(self) -> Principal:
        """The caller (endpoints other than public ones always have one)."""
        assert self.principal is not None
        return self.principal

    @property
    def remote(self) -> str:
        return self.request.remote or ""


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: str = AUTH_USER
    # (resource, verb) of the management API group a global role of the caller must allow;
    # checks that depend on a cluster or project are made by the handler.
    needs: tuple[str, str] | None = None
    action: str | None = None
    body: Schema | None = None
    query: dict[str, str] = field(default_factory=dict)  # name -> description
    response: str = "the resource (JSON)"
    status: int = 200
    returns: str = ""  # a schema in response_schemas.RESOURCES, or "collection:<name>"
    errors: dict[int, str] = field(default_factory=dict)  # answers beyond the common ones

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


REGISTRY: list[Endpoint] = []


def endpoint(method: str, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
    """Declare an API operation (see :class:`Endpoint`)."""

    def register(fn: Handler) -> Handler:
        REGISTRY.append(Endpoint(method=method, path=path, handler=fn, summary=summary, **kw))
        return fn

    return register


def path_params(path: str) -> list[str]:
    return PATH_PARAM_RE.findall(path)
