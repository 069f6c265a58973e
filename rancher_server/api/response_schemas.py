"""OpenAPI schemas of the resources the API returns (see :mod:`rancher_server.api.resources`)."""

from __future__ import annotations

from rancher_server.api.spec import Schema

_str: Schema = {"type": "string"}
_opt_time: Schema = {"type": "string", "format": "date-time", "nullable": True}
_bool: Schema = {"type": "boolean"}

TOKEN: Schema = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["token"]}, "id": _str, "userId": _str, "kind": _str,
    "description": _str, "created": _opt_time, "expiresAt": _str, "ttl": {"type": "integer"},
    "expired": _bool, "enabled": _bool, "current": _bool, "lastUsedAt": _opt_time,
    "token": {"type": "string", "description": "token-xxxxx:secret, only when just created"},
}}
USER: Schema = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["user"]}, "id": _str, "username": _str, "name": _str,
    "enabled": _bool, "admin": _bool, "groups": {"type": "array", "items": _str},
    "created": _opt_time,
}}
CLUSTER: Schema = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["cluster"]}, "id": _str, "name": _str,
    "state": {"type": "string",
              "enum": ["active", "unavailable", "disconnected", "pending", "removing"],
              "description": "the cluster controller's: pending (no agent ever connected), "
                             "active, unavailable (see transitioningMessage), removing"},
    "transitioningMessage": {"type": "string", "description": "why the cluster is not active"},
    "stateSince": _opt_time,
    "conditions": {"type": "array", "items": {"type": "object"},
                   "description": "Connected, Synced, Ready: type, status, reason, message, "
                                  "lastTransitionTime"},
    "nodeCount": {"type": "integer"}, "nodesReady": {"type": "integer"},
    "capacity": {"type": "object", "description": "cpu (cores), memory (bytes), pods"},
    "allocatable": {"type": "object", "description": "cpu (cores), memory (bytes), pods"},
    "requested": {"type": "object", "description": "by pod specs: cpu, memory, pods"},
    "limits": {"type": "object", "description": "by pod specs: cpu, memory"},
    "used": {"type": "object", "nullable": True,
             "description": "from metrics.k8s.io where served: cpu, memory"},
    "health": {"type": "object", "description": "the API server's readyz, failing checks, "
                                                "agent version, tunnel round trip"},
    "nodeAgents": {"type": "array", "items": {"type": "object"},
                   "description": "connected node agents: name, connectedAt, facts"},
    "agentReport": {"type": "object", "description": "health, nodes and stats the agent "
                    "reported last (healthy, detail, checkedAt, stats, nodes)"},
    "connected": _bool, "created": _opt_time, "registeredAt": _opt_time, "apiEndpoint": _str,
    "myRole": {"type": "string", "nullable": True,
               "description": "the strongest role template the caller holds there"},
    "registrationToken": {"type": "string", "description": "only in the create answer"},
    "command": {"type": "string", "description": "the agent's command; only in the create answer"},
    "manifestUrl": {"type": "string", "description": "the import manifest; create answer only"},
    "importCommand": {"type": "string", "description": "kubectl apply of the import manifest"},
    "caChecksum": _str, "serverUrl": _str,
}}
_strs: Schema = {"type": "array", "items": _str}
_subject: Schema = {"userId": _str, "userPrincipalId": _str, "groupName": _str,
                    "groupPrincipalId": _str}
_downstream: Schema = {"type": "array", "items": _str,
                       "description": "the ClusterRoles the binding binds downstream"}
BINDING: Schema = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["clusterRoleTemplateBinding"]}, "id": _str,
    "clusterId": _str, "roleTemplateId": _str, "downstreamClusterRoles": _downstream,
    "created": _opt_time, **_subject,
}}
PROJECT_BINDING: Schema = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["projectRoleTemplateBinding"]}, "id": _str,
    "clusterId": _str, "projectId": {"type": "string", "description": "<cluster>:<project>"},
    "roleTemplateId": _str, "downstreamClusterRoles": _downstream, "created": _opt_time,
    **_subject,
}}
GLOBAL_BINDING: Schema = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["globalRoleBinding"]}, "id": _str,
    "globalRoleId": _str, "created": _opt_time, **_subject,
}}
ROLE_TEMPLATE: Schema = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["roleTemplate", "globalRole"]}, "id": _str,
    "name": _str, "context": {"type": "string", "enum": ["global", "cluster", "project"]},
    "rules": {"type": "array", "items": {"type": "object"}},
    "roleTemplateIds": {"type": "array", "items": _str, "description": "inherited templates"},
    "builtin": _bool, "external": _bool, "locked": _bool, "hidden": _bool,
    "description": _str, "downstreamClusterRoles": _downstream, "created": _opt_time,
}}
PROJECT: Schema = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["project"]},
    "id": {"type": "string", "description": "<cluster>:<project>"},
    "projectId": _str, "clusterId": _str, "name": _str, "description": _str,
    "created": _opt_time,
}}
KUBECONFIG: Schema = {"type": "object", "properties": {
    "config": {"type": "string", "description": "kubeconfig YAML"}, "tokenId": _str,
}}
AUDIT_ENTRY: Schema = {"type": "object", "properties": {
    "id": _str, "ts": _opt_time, "userId": _str, "action": _str, "target": _str, "result": _str,
    "remote": _str,
}}
EMPTY: Schema = {"type": "object"}

RESOURCES: dict[str, Schema] = {
    "Token": TOKEN, "User": USER, "Cluster": CLUSTER, "Binding": BINDING,
    "ProjectBinding": PROJECT_BINDING, "GlobalBinding": GLOBAL_BINDING,
    "RoleTemplate": ROLE_TEMPLATE, "Project": PROJECT,
    "Kubeconfig": KUBECONFIG, "AuditEntry": AUDIT_ENTRY, "Empty": EMPTY,
}
COLLECTION_PREFIX = "collection:"


def collection_schema(item: str) -> Schema:
    return {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["collection"]}, "resourceType": _str,
        "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
    }}


def response_schema(returns: str) -> Schema:
    """``"User"`` -> a $ref; ``"collection:User"`` -> a collection of them; ``""`` -> object."""
    if not returns:
        return {"type": "object"}
    if returns.startswith(COLLECTION_PREFIX):
        return collection_schema(returns.removeprefix(COLLECTION_PREFIX))
    return {"$ref": f"#/components/schemas/{returns}"}
