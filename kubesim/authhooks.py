"""Calls into the auth plug-in (kubesim.auth) when it exists; AlwaysAllow/admin otherwise."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from aiohttp import web

from . import errors
from .audit import AUTHENTICATED_USER_KEY
from .authtypes import ADMIN_USER, RequestAttributes, UserInfo
from .logutil import LazyLogger
from .options import Options

log = LazyLogger(component="kubesim.authhooks")


def _load(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if exc.name and (exc.name == name or name.startswith(exc.name + ".")):
            return None
        raise


class AuthHooks:
    def __init__(self, options: Options, store: Any) -> None:
        self.options = options
        self.store = store
        self._mod = _load("kubesim.auth")
        self.authenticator: Any = None
        self.authorizer: Any = None
        if self._mod is not None:
            self.authenticator = self._mod.Authenticator(options, store)
            self.authorizer = self._mod.Authorizer(store, options.authorization_mode)

    @property
    def available(self) -> bool:
        return self._mod is not None

    def seed(self) -> None:
        if self._mod is not None and hasattr(self._mod, "seed_bootstrap_rbac"):
            self._mod.seed_bootstrap_rbac(self.store)

    async def close(self) -> None:
        for obj in (self.authenticator, self.authorizer):
            closer = getattr(obj, "close", None)
            if closer is not None:
                res = closer()
                if inspect.isawaitable(res):
                    await res

    async def authenticate(self, request: web.Request) -> UserInfo:
        if self.authenticator is None:
            return ADMIN_USER
        user = await self.authenticator.authenticate(request)
        if user is None:
            raise errors.StatusError(401, "Unauthorized", "Unauthorized")
        request[AUTHENTICATED_USER_KEY] = user  # the audit's user; impersonation may replace it
        if request.headers.get("Impersonate-User") is not None or any(
            h.lower().startswith("impersonate-") for h in request.headers
        ):
            res = self._mod.apply_impersonation(request, user, self.authorizer)
            if inspect.isawaitable(res):
                res = await res
            user = res
        return user  # type: ignore[no-any-return]

    async def authorize(self, attrs: RequestAttributes) -> tuple[bool, str]:
        if self.authorizer is None:
            return True, ""
        res = self.authorizer.authorize(attrs)
        if inspect.isawaitable(res):
            res = await res
        return res  # type: ignore[no-any-return]

    def admit_rbac_write(self, resource: str, obj: dict[str, Any], user: UserInfo) -> None:
        """Escalation prevention for an RBAC write (403 StatusError), when the plug-in has it."""
        if self.authorizer is None or not hasattr(self._mod, "admit_rbac_write"):
            return
        self._mod.admit_rbac_write(resource, obj, user, self.authorizer)


def forbidden_message(attrs: RequestAttributes, reason: str) -> errors.StatusError:
    user = attrs.user.name
    if not attrs.is_resource_request:
        msg = f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"'
        if reason:
            msg += f": {reason}"
        return errors.StatusError(403, "Forbidden", msg, {})
    res = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    qual = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    who = f'{qual} "{attrs.name}"' if attrs.name else qual
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    msg = (
        f'{who} is forbidden: User "{user}" cannot {attrs.verb} resource "{res}" in API group '
        f'"{attrs.api_group}" {scope}'
    )
    if reason:
        msg += f": {reason}"
    details: dict[str, Any] = {}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.api_group:
        details["group"] = attrs.api_group
    details["kind"] = attrs.resource
    return errors.StatusError(403, "Forbidden", msg, details)
