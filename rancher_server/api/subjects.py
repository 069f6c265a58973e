"""Who a binding is for, from a request body: ``userId``, or a local group as ``groupName`` or
Rancher's ``groupPrincipalId`` (``local_group://<group>``), or a directory group by its principal
id (``openldap_group://<dn>``, ``activedirectory_group://<dn>``, kept whole as the group's
name). And the template a binding names, checked against the catalog (422 naming the field when
it may not be bound there)."""

from __future__ import annotations

import re
from typing import Any

from rancher_server.access.templates import TemplateError
from rancher_server.api.access_resources import GROUP_PRINCIPAL_PREFIX
from rancher_server.api.authz import catalog
from rancher_server.auth.http import ApiError
from rancher_server.auth.principal import Principal
from rancher_server.auth.providers.principals import is_directory_group
from rancher_server.policy import GROUP_PATTERN
from rancher_server.state import ServerState
from rancher_server.store import NotFound, RoleTemplate


def subject_of(state: ServerState, body: dict[str, Any]) -> tuple[str, str]:
    """("user", user id) or ("group", group name); the user must exist (404 otherwise)."""
    user_id = body.get("userId")
    group = body.get("groupName")
    principal = body.get("groupPrincipalId")
    if isinstance(principal, str) and group is None and is_directory_group(principal):
        group = principal  # openldap_group://<dn>, activedirectory_group://<dn>: kept whole
    elif isinstance(principal, str) and group is None:
        if not principal.startswith(GROUP_PRINCIPAL_PREFIX):
            raise ApiError(422, f"field 'groupPrincipalId' must start with "
                                f"{GROUP_PRINCIPAL_PREFIX} or name a directory group "
                                f"(openldap_group://<dn>, activedirectory_group://<dn>)")
        group = principal.removeprefix(GROUP_PRINCIPAL_PREFIX)
        if not re.fullmatch(GROUP_PATTERN, group):
            raise ApiError(422, "field 'groupPrincipalId' names an invalid group (and system: "
                                "groups are refused)")
    if (user_id is None) == (group is None):
        raise ApiError(422, "give exactly one of 'userId' and 'groupName' (or "
                            "'groupPrincipalId')")
    if user_id is not None:
        state.store.get_user(str(user_id))  # 404 with a clear message
        return "user", str(user_id)
    return "group", str(group)


def bindable_template(
    state: ServerState, template_id: str, scope: str, field: str = "roleTemplateId",
) -> RoleTemplate:
    """The template if a ``scope`` binding may name it: 422 naming ``field`` otherwise (unknown,
    wrong context, locked)."""
    try:
        return catalog(state).bindable(template_id, scope)
    except (TemplateError, NotFound) as e:
        raise ApiError(422, f"field {field!r}: {e}") from e


def names_caller(p: Principal, kind: str, subject: str) -> bool:
    """Whether a binding's subject is the caller or one of the caller's groups."""
    return subject == p.user_id if kind == "user" else subject in p.groups
