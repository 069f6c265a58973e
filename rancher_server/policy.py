"""Names and rules shared by the API, the CLI and the proxy, with no heavy imports (the CLI loads
this without aiohttp): cluster roles and their downstream RBAC, name patterns, password bounds."""

from __future__ import annotations

# Cluster roles, weakest to strongest, and the downstream ClusterRole each one maps to.
CLUSTER_OWNER = "cluster-owner"
CLUSTER_MEMBER = "cluster-member"
READ_ONLY = "read-only"
ROLES = (CLUSTER_OWNER, CLUSTER_MEMBER, READ_ONLY)
ROLE_RANK = {READ_ONLY: 1, CLUSTER_MEMBER: 2, CLUSTER_OWNER: 3}
DOWNSTREAM_CLUSTER_ROLE = {
    CLUSTER_OWNER: "cluster-admin", CLUSTER_MEMBER: "edit", READ_ONLY: "view",
}

USERNAME_PATTERN = r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?"
# Local groups are sent downstream as Impersonate-Group: "system:" groups (system:masters!) and
# anything that is not a plain name are refused.
GROUP_PATTERN = r"(?!system:)[A-Za-z0-9]([A-Za-z0-9._@:-]*[A-Za-z0-9])?"
CLUSTER_NAME_PATTERN = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"

PASSWORD_MIN_CHARS = 12
PASSWORD_MAX_CHARS = 256
