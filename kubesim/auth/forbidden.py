"""The 403 answers kube-apiserver gives (responsewriters.Forbidden + apierrors.NewForbidden)."""

from __future__ import annotations

from kubesim.authtypes import RequestAttributes
from kubesim.errors import StatusError, forbidden


def forbidden_message(attrs: RequestAttributes) -> str:
    """``User "x" cannot <verb> resource "<r>[/<sub>]" in API group ...`` (forbiddenMessage)."""
    who = attrs.user.name
    if not attrs.is_resource_request:
        return f'User "{who}" cannot {attrs.verb} path "{attrs.path}"'
    resource = attrs.resource + ("/" + attrs.subresource if attrs.subresource else "")
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (
        f'User "{who}" cannot {attrs.verb} resource "{resource}" in API group '
        f'"{attrs.api_group}" {where}'
    )


def forbidden_error(attrs: RequestAttributes, reason: str = "") -> StatusError:
    """The complete 403 ``StatusError`` for a denied request, ``reason`` appended after ``: ``."""
    msg = forbidden_message(attrs)
    if reason:
        msg = f"{msg}: {reason}"
    if not attrs.is_resource_request:
        return StatusError(403, "Forbidden", f"forbidden: {msg}", {})
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    if attrs.name:
        message = f'{qualified} "{attrs.name}" is forbidden: {msg}'
    else:
        message = f"{qualified} is forbidden: {msg}"
    return forbidden(attrs.api_group, attrs.resource, attrs.name, message)
