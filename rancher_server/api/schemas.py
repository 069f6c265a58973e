"""Request body schemas (validated by :mod:`rancher_server.api.validate`, published in OpenAPI)."""

from __future__ import annotations

from rancher_server.access.templates import TEMPLATE_ID_PATTERN
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
    USERNAME_PATTERN,
)

ID_PATTERN = r"[a-z]+-[a-z0-9]{1,32}"
ID_MAX_CHARS = 64
CLUSTER_NAME_MAX_CHARS = 63  # a DNS label
# Rancher's project reference "<cluster>:<project>", e.g. "c-abcde:p-xyz12".
PROJECT_REF_PATTERN = r"[a-z]+-[a-z0-9]{1,32}:[a-z]+-[a-z0-9]{1,32}"
TEMPLATE_ID_MAX_CHARS = 63
PROJECT_NAME_MAX_CHARS = 63
PROJECT_NAME_PATTERN = r"[A-Za-z0-9]([A-Za-z0-9 ._-]*[A-Za-z0-9])?"
TEMPLATE_NAME_MAX_CHARS = 128
MAX_RULES_PER_TEMPLATE = 100
MAX_RULE_ITEMS = 100
MAX_INHERITED_TEMPLATES = 32

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
_id: Schema = {"type": "string", "maxLength": ID_MAX_CHARS, "pattern": ID_PATTERN}
_template_id: Schema = {"type": "string", "maxLength": TEMPLATE_ID_MAX_CHARS,
                        "pattern": TEMPLATE_ID_PATTERN}
_project_ref: Schema = {"type": "string", "maxLength": 2 * ID_MAX_CHARS + 1,
                        "pattern": PROJECT_REF_PATTERN,
                        "description": "<cluster>:<project>, e.g. c-abcde:p-xyz12"}
_subject: Schema = {
    "userId": _id,
    "groupName": {"type": "string", "maxLength": GROUP_NAME_MAX_CHARS, "pattern": GROUP_PATTERN},
    "groupPrincipalId": {"type": "string", "maxLength": GROUP_NAME_MAX_CHARS + 16,
                         "description": "local_group://<group>"},
}
BINDING_CREATE: Schema = {
    "type": "object", "required": ["clusterId", "roleTemplateId"],
    "properties": {"clusterId": _id, "roleTemplateId": _template_id, **_subject},
}
PROJECT_BINDING_CREATE: Schema = {
    "type": "object", "required": ["projectId", "roleTemplateId"],
    "properties": {"projectId": _project_ref, "roleTemplateId": _template_id, **_subject},
}
GLOBAL_BINDING_CREATE: Schema = {
    "type": "object", "required": ["globalRoleId"],
    "properties": {"globalRoleId": _template_id, **_subject},
}
RULE_ITEM_MAX_CHARS = 253
_strings: Schema = {"type": "array", "maxItems": MAX_RULE_ITEMS,
                    "items": {"type": "string", "minLength": 1, "maxLength": RULE_ITEM_MAX_CHARS}}
_api_groups: Schema = {"type": "array", "maxItems": MAX_RULE_ITEMS,
                       "items": {"type": "string", "maxLength": RULE_ITEM_MAX_CHARS},
                       "description": "API groups ('' is the core group)"}
_rule: Schema = {"type": "object", "properties": {
    "apiGroups": _api_groups, "resources": _strings, "verbs": _strings, "resourceNames": _strings,
    "nonResourceURLs": _strings}}
_template_fields: Schema = {
    "name": {"type": "string", "minLength": 1, "maxLength": TEMPLATE_NAME_MAX_CHARS},
    "description": _description,
    "rules": {"type": "array", "maxItems": MAX_RULES_PER_TEMPLATE, "items": _rule},
    "roleTemplateIds": {"type": "array", "maxItems": MAX_INHERITED_TEMPLATES,
                        "items": _template_id, "description": "templates this one inherits"},
    "locked": {"type": "boolean", "description": "no new bindings"},
    "hidden": {"type": "boolean"},
}
ROLE_TEMPLATE_CREATE: Schema = {
    "type": "object", "required": ["name", "context"],
    "properties": {"id": _template_id,
                   "context": {"type": "string", "enum": ["global", "cluster", "project"]},
                   **_template_fields},
}
ROLE_TEMPLATE_UPDATE: Schema = {"type": "object", "properties": _template_fields}
PROJECT_CREATE: Schema = {
    "type": "object", "required": ["clusterId", "name"],
    "properties": {"clusterId": _id, "description": _description,
                   "name": {"type": "string", "maxLength": PROJECT_NAME_MAX_CHARS,
                            "pattern": PROJECT_NAME_PATTERN}},
}
PROJECT_UPDATE: Schema = {
    "type": "object", "required": ["description"], "properties": {"description": _description},
}
EMPTY: Schema = {"type": "object"}
