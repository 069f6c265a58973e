"""First start: the bootstrap admin. Filled in by the users/tokens work (issue 4)."""

from __future__ import annotations

from rancher_server.state import ServerState


def ensure_admin(state: ServerState) -> str | None:
    """Create the bootstrap admin if there is no user; return its password if it was generated."""
    return None
