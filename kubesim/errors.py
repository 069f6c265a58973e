"""Typed API errors that render as kube-apiserver ``Status`` bodies."""

from __future__ import annotations

from typing import Any


class StatusError(Exception):
    """An API failure carrying the HTTP code, the Status ``reason`` and ``message``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.metadata = metadata

    def status(self) -> dict[str, Any]:
        """The ``Status`` object for this error, key order as kube-apiserver writes it."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": self.metadata or {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _qualified(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


def not_found(group: str, resource: str, name: str) -> StatusError:
    return StatusError(
        404,
        "NotFound",
        f'{_qualified(group, resource)} "{name}" not found',
        _details(name, group, resource),
    )


def already_exists(group: str, resource: str, name: str) -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(group, resource)} "{name}" already exists',
        _details(name, group, resource),
    )


def conflict(group: str, resource: str, name: str, why: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(group, resource)} "{name}": {why}',
        _details(name, group, resource),
    )


STALE_RV = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def invalid(group: str, kind: str, name: str, causes: list[dict[str, str]]) -> StatusError:
    """422 Invalid with field causes (``reason``, ``message``, ``field``); the message names each
    distinct problem once (field.ErrorList.ToAggregate), the causes keep every one."""
    parts = list(
        dict.fromkeys(
            f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes
        )
    )
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    d = _details(name, group, kind)
    d["causes"] = causes
    qual = f"{kind}.{group}" if group else kind
    return StatusError(422, "Invalid", f'{qual} "{name}" is invalid: {joined}', d)


def invalid_list_options(causes: list[dict[str, str]]) -> StatusError:
    """422 for list/watch query parameters (``ListOptions.meta.k8s.io "" is invalid: ...``)."""
    return invalid("meta.k8s.io", "ListOptions", "", causes)


def unparsable_resource_version(rv: str) -> StatusError:
    """kube-apiserver's answer (500, no reason) to a resourceVersion that is not a number."""
    return StatusError(
        500,
        "",
        f'resourceVersion: Invalid value: "{rv}": strconv.ParseUint: '
        f'parsing "{rv}": invalid syntax',
    )


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def forbidden(group: str, resource: str, name: str, message: str) -> StatusError:
    return StatusError(403, "Forbidden", message, _details(name, group, resource))


def namespace_terminating(group: str, resource: str, name: str, namespace: str) -> StatusError:
    """The NamespaceLifecycle admission plugin's answer to a create in a Terminating namespace."""
    details = _details(name, group, resource)
    details["causes"] = [
        {
            "reason": "NamespaceTerminating",
            "message": f"namespace {namespace} is being terminated",
            "field": "metadata.namespace",
        }
    ]
    return StatusError(
        403,
        "Forbidden",
        f'{_qualified(group, resource)} "{name}" is forbidden: unable to create new content in '
        f"namespace {namespace} because it is being terminated",
        details,
    )


def method_not_allowed() -> StatusError:
    return StatusError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


def internal(message: str) -> StatusError:
    return StatusError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )
