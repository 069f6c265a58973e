"""Request body schemas (validated by :mod:`rancher_server.api.validate`, published in OpenAPI)."""

from __future__ import annotations

from rancher_server.api.spec import Schema
from rancher_server.auth.constants import (
    DESCRIPTION_MAX_CHARS,
    DISPLAY_NAME_MAX_CHARS,
    GROUP_NAME_MAX_CHARS,
    MAX_GROUPS_PER_USER,
    USERNAME_MAX_CHARS,
)
from rancher_server.policy import (
    CLUSTER_NAME_PATTERN,
    GROUP_PATTERN,
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
    ROLES,
    USERNAME_PATTERN,
)

ID_PATTERN = r"[a-z]+-[a-z0-9]{1,32}"
ID_MAX_CHARS = 64
CLUSTER_NAME_MAX_CHARS = 63  # a DNS label

_username: Schema = {"type": "string", "minLength": 1, "maxLength": USERNAME_MAX_CHARS,
                     "pattern": USERNAME_PATTERN}
_new_password: Schema = {"type": "string", "minLength": PASSWORD_MIN_CHARS,
                         "maxLength": PASSWORD_MAX_CHARS}
_any_password: Schema = {"type": "string", "minLength": 1, "maxLength": PASSWORD_MAX_CHARS}
_groups: Schema = {"type": "array", "maxItems": MAX_GROUPS_PER_USER,
                   "items": {"type": "string", "maxLength": GROUP_NAME_MAX_CHARS,
                             "pattern": GROUP_PATTERN}}
_description: Schema = {"type": "string", "maxLength": DESCRIPTION_MAX_CHARS}
_ttl_ms: Schema = {"type": "integer", "minimum": 0,
                   "description": "lifetime in milliseconds (0 or absent: the default)"}

LOGIN: Schema = {
    "type": "object", "required": ["username", "password"],
    "properties": {"username": {"type": "string", "maxLength": USERNAME_MAX_CHARS},
                   "password": _any_password, "ttl": _ttl_ms, "description": _description,
                   "responseType": {"type": "string", "maxLength": 16}},
}
TOKEN_CREATE: Schema = {
    "type": "object", "properties": {"description": _description, "ttl": _ttl_ms},
}
USER_CREATE: Schema = {
    "type": "object", "required": ["username", "password"],
    "properties": {"username": _username, "password": _new_password,
                   "name": {"type": "string", "maxLength": DISPLAY_NAME_MAX_CHARS},
                   "groups": _groups, "admin": {"type": "boolean"},
                   "enabled": {"type": "boolean"}},
}
USER_UPDATE: Schema = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": DISPLAY_NAME_MAX_CHARS},
                   "groups": _groups, "admin": {"type": "boolean"},
                   "enabled": {"type": "boolean"}},
}
SET_PASSWORD: Schema = {
    "type": "object", "required": ["newPassword"], "properties": {"newPassword": _new_password},
}
CHANGE_PASSWORD: Schema = {
    "type": "object", "required": ["currentPassword", "newPassword"],
    "properties": {"currentPassword": _any_password, "newPassword": _new_password},
}
CLUSTER_CREATE: Schema = {
    "type": "object", "required": ["name"],
    "properties": {"name": {"type": "string", "pattern": CLUSTER_NAME_PATTERN,
                            "maxLength": CLUSTER_NAME_MAX_CHARS}},
}
AUTHORIZED_ENDPOINT: Schema = {
    "type": "object", "required": ["enabled"],
    "properties": {
        "enabled": {"type": "boolean"},
        "fqdn": {"type": "string", "maxLength": 261, "pattern": r"^[A-Za-z0-9.\-\[\]:]*$"},
        "caCerts": {"type": "string", "maxLength": 65536},
    },
}
BINDING_CREATE: Schema = {
    "type": "object", "required": ["clusterId", "roleTemplateId"],
    "properties": {
        "clusterId": {"type": "string", "maxLength": ID_MAX_CHARS, "pattern": ID_PATTERN},
        "roleTemplateId": {"type": "string", "enum": list(ROLES)},
        "userId": {"type": "string", "maxLength": ID_MAX_CHARS, "pattern": ID_PATTERN},
        "groupName": {"type": "string", "maxLength": GROUP_NAME_MAX_CHARS,
                      "pattern": GROUP_PATTERN},
        "groupPrincipalId": {"type": "string", "maxLength": GROUP_NAME_MAX_CHARS + 16},
    },
}
EMPTY: Schema = {"type": "object"}
