"""A user's global roles (Rancher's GlobalRoleBindings to the user or one of their groups) and
whether they make the user an administrator.

The administrator test walks the inheritance of custom templates only: no built-in template but
``admin`` itself inherits ``admin`` (``tests/server_api/test_authz.py`` checks this against the
catalog in :mod:`rancher_server.access.templates`, which this layer may not import). Both reads
are cached by the store until its next commit, so this costs the request path two cache hits."""

from __future__ import annotations

from rancher_server.store import Store, User
from rancher_server.store.sqlite_auth import ADMIN_GLOBAL_ROLE

MAX_INHERITANCE_DEPTH = 16


def includes_admin(store: Store, roles: tuple[str, ...]) -> bool:
    """Whether the inheritance closure of ``roles`` includes the global template "admin"."""
    if ADMIN_GLOBAL_ROLE in roles:
        return True
    if not roles:
        return False
    inherits = {t.id: t.inherits for t in store.list_templates() if t.context == "global"}
    seen: set[str] = set()
    frontier = [r for r in roles if r in inherits]
    for _ in range(MAX_INHERITANCE_DEPTH):
        nxt: list[str] = []
        for tid in frontier:
            if tid in seen:
                continue
            seen.add(tid)
            parents = inherits.get(tid, ())
            if ADMIN_GLOBAL_ROLE in parents:
                return True
            nxt.extend(parents)
        if not nxt:
            return False
        frontier = nxt
    return False


def global_roles_of(store: Store, user: User) -> tuple[tuple[str, ...], bool]:
    """(the user's global role template ids, sorted; whether they include "admin")."""
    roles = tuple(sorted({g.role for g in store.global_bindings_for(user.id, user.groups)}))
    return roles, includes_admin(store, roles)


def administrators_without(store: Store, binding_id: str) -> set[str]:
    """The enabled users who would still be administrators without this global binding (the
    server refuses to remove the last one: nobody locks it out)."""
    bindings = [g for g in store.list_global_bindings() if g.id != binding_id]
    admins = set()
    for user in store.list_users():
        if not user.enabled:
            continue
        roles = tuple(sorted({
            g.role for g in bindings
            if (g.subject_kind == "user" and g.subject == user.id)
            or (g.subject_kind == "group" and g.subject in user.groups)
        }))
        if includes_admin(store, roles):
            admins.add(user.id)
    return admins
