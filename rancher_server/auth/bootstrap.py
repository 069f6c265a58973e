"""First start: the bootstrap admin.

If the store has no user, ``admin`` is created as a global administrator with the password from
``CATTLE_BOOTSTRAP_PASSWORD`` (Rancher's variable) or, without it, a generated one that is returned
so the caller shows it once (the server prints it in its ready line on stdout, never in a log)."""

from __future__ import annotations

import os

from rancher_server.auth.passwords import generate_password, hash_password
from rancher_server.policy import PASSWORD_MIN_CHARS
from rancher_server.state import ServerState
from rancher_server.store import Conflict, Store
from rancher_tunnel.logs import get_logger

log = get_logger(component="bootstrap")
BOOTSTRAP_PASSWORD_ENV = "CATTLE_BOOTSTRAP_PASSWORD"
BOOTSTRAP_USERNAME = "admin"


def ensure_admin_in(store: Store, env_password: str | None) -> str | None:
    if store.count_users() > 0:
        return None
    generated = None
    password = env_password
    if not password:
        password = generated = generate_password()
    elif len(password) < PASSWORD_MIN_CHARS:
        log.warning("bootstrap password is shorter than recommended",
                    min_chars=PASSWORD_MIN_CHARS)
    try:
        user = store.create_user(
            BOOTSTRAP_USERNAME, "Default Admin", hash_password(password), is_admin=True
        )
    except Conflict:  # another process created it between our count and insert
        return None
    log.info("bootstrap admin created", user_id=user.id, username=user.username,
             password_source="generated" if generated else "given")
    return generated


def ensure_admin(state: ServerState) -> str | None:
    """Create the bootstrap admin if there is no user; return its password if it was generated."""
    return ensure_admin_in(state.store, os.environ.get(BOOTSTRAP_PASSWORD_ENV))
