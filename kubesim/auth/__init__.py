"""Authentication, impersonation, RBAC authorization and the review APIs of the stand-in.

The API core (``kubesim.server``) uses:

- ``Authenticator(options, store).authenticate(request)``: client cert, static token,
  service-account JWT, token webhook; the anonymous user when no credentials were sent,
  None when credentials were sent but are invalid (answer 401).
- ``apply_impersonation(request, user, authorizer)``: the effective user; raises
  ``StatusError`` (403) or an aiohttp 500 text/plain exception.
- ``Authorizer(store, mode).authorize(attrs)`` and ``forbidden_error(attrs, reason)``.
- ``seed_bootstrap_rbac(store)`` at start.
- ``admit_rbac_write(resource, obj, user, authorizer)`` before creating/updating RBAC
  objects: kube-apiserver's escalation prevention (403 unless ``escalate``/``bind``).
- ``reviews.handle(kind, body, user, ReviewContext(...))`` for the review kinds and TokenRequest.
"""

from __future__ import annotations

from kubesim.store import Store

from .authenticator import Authenticator, anonymous_user, with_authenticated_group
from .bootstrap import seed_bootstrap_rbac as _seed
from .escalation import admit_rbac_write
from .forbidden import forbidden_error, forbidden_message
from .impersonation import ImpersonationError, apply_impersonation, impersonate
from .rbac import MODE_ALWAYS_ALLOW, MODE_RBAC, Authorizer, reconcile_aggregation
from .reviews import RESOURCE_KINDS, ReviewContext, handle
from .serviceaccounts import ServiceAccountTokens, TokenError


def seed_bootstrap_rbac(store: Store) -> None:
    """Create the bootstrap ClusterRoles/bindings and fill the aggregated roles' rules."""
    _seed(store)
    reconcile_aggregation(store)


__all__ = [
    "MODE_ALWAYS_ALLOW",
    "MODE_RBAC",
    "RESOURCE_KINDS",
    "Authenticator",
    "Authorizer",
    "ImpersonationError",
    "ReviewContext",
    "ServiceAccountTokens",
    "TokenError",
    "admit_rbac_write",
    "anonymous_user",
    "apply_impersonation",
    "forbidden_error",
    "forbidden_message",
    "handle",
    "impersonate",
    "reconcile_aggregation",
    "seed_bootstrap_rbac",
    "with_authenticated_group",
]
