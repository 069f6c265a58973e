"""Authentication of users: bearer tokens, the principal a request acts as, audit.

What the authentication proxy uses:

- :func:`authenticate_bearer` (``Authorization`` header -> :class:`Principal` or None),
- :func:`audit` (queue an audit entry; cheap),
- :func:`unauthorized` / :func:`error_response` (Rancher-shaped JSON error answers).
"""

from __future__ import annotations

from rancher_server.auth.audit import audit, audit_now
from rancher_server.auth.http import error_response, require_principal, unauthorized
from rancher_server.auth.principal import Principal
from rancher_server.auth.runtime import close_runtime
from rancher_server.auth.tokens import authenticate_bearer, issue_token

__all__ = [
    "Principal",
    "audit",
    "audit_now",
    "authenticate_bearer",
    "close_runtime",
    "error_response",
    "issue_token",
    "require_principal",
    "unauthorized",
]
