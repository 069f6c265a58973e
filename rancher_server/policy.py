"""Names and rules shared by the API, the CLI and the proxy, with no heavy imports (the CLI loads
this without aiohttp): name patterns, password bounds. Roles are role templates now
(:mod:`rancher_server.access.templates`)."""

from __future__ import annotations

USERNAME_PATTERN = r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?"
# Local groups are sent downstream as Impersonate-Group: "system:" groups (system:masters!) and
# anything that is not a plain name are refused.
GROUP_PATTERN = r"(?!system:)[A-Za-z0-9]([A-Za-z0-9._@:-]*[A-Za-z0-9])?"
CLUSTER_NAME_PATTERN = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"

PASSWORD_MIN_CHARS = 12
PASSWORD_MAX_CHARS = 256
