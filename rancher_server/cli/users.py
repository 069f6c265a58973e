"""``rancher-server user ...``, ``token ...`` and ``binding ...``: manage the local store directly
(like ``cluster ...``), e.g. before the first start or when every admin is locked out.

    rancher-server user create NAME [--admin] [--display-name N] [--group G]... [--password-stdin]
    rancher-server user list | disable NAME | enable NAME | delete NAME
    rancher-server user passwd NAME [--password-stdin]     # prints a generated one without stdin
    rancher-server user groups NAME G...
    rancher-server token list [--user NAME] | revoke ID
    rancher-server binding create --cluster ID [--project P] (--user NAME | --group G) --role T
    rancher-server binding list [--cluster ID] | delete ID

A generated password is printed once (JSON on stdout); a password read from stdin is never echoed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable
from typing import Any

from rancher_server.access.templates import CLUSTER, PROJECT, Catalog, TemplateError
from rancher_server.auth.passwords import generate_password, hash_password
from rancher_server.policy import (
    GROUP_PATTERN,
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
    USERNAME_PATTERN,
)
from rancher_server.store import Store, StoreError, User

PROJECT_REF_SEP = ":"  # Rancher's "<cluster>:<project>"


class CliError(Exception):
    """A usage error; the message is printed."""


def add_parsers(sub: Any) -> None:
    u = sub.add_parser("user", help="manage local users")
    us = u.add_subparsers(dest="user_command", required=True)
    uc = us.add_parser("create", help="create a user (prints a generated password once)")
    uc.add_argument("username")
    uc.add_argument("--admin", action="store_true", help="a global administrator")
    uc.add_argument("--display-name", default="")
    uc.add_argument("--group", action="append", default=[], help="local group (repeatable)")
    uc.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    us.add_parser("list", help="list users")
    for name in ("disable", "enable", "delete"):
        us.add_parser(name, help=f"{name} a user").add_argument("username")
    up = us.add_parser("passwd", help="set a user's password")
    up.add_argument("username")
    up.add_argument("--password-stdin", action="store_true")
    ug = us.add_parser("groups", help="set a user's local groups")
    ug.add_argument("username")
    ug.add_argument("groups", nargs="*")

    t = sub.add_parser("token", help="list or revoke API tokens")
    ts = t.add_subparsers(dest="token_command", required=True)
    ts.add_parser("list", help="list tokens (never secrets)").add_argument("--user")
    ts.add_parser("revoke", help="revoke a token").add_argument("id")

    b = sub.add_parser("binding", help="cluster and project role template bindings")
    bs = b.add_subparsers(dest="binding_command", required=True)
    bc = bs.add_parser("create", help="bind a user or group to a role template on a cluster or "
                       "one project of it (see: role-template list)")
    bc.add_argument("--cluster", help="cluster id (optional with --project <cluster>:<project>)")
    bc.add_argument("--project", help="project id, or <cluster>:<project>")
    who = bc.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="username or user id")
    who.add_argument("--group")
    bc.add_argument("--role", required=True, help="role template id, e.g. cluster-owner, "
                    "project-member, read-only")
    bs.add_parser("list", help="list bindings").add_argument("--cluster")
    bs.add_parser("delete", help="delete a binding").add_argument("id")


def _password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated)."""
    if not from_stdin:
        return generate_password(), True
    pw = sys.stdin.readline().rstrip("\n")
    if not PASSWORD_MIN_CHARS <= len(pw) <= PASSWORD_MAX_CHARS:
        raise CliError(f"the password must have {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} "
                       "characters")
    return pw, False


def _user(store: Store, name_or_id: str) -> User:
    user = store.user_by_username(name_or_id)
    return user if user is not None else store.get_user(name_or_id)


def _public(u: User) -> dict[str, Any]:
    d = dataclasses.asdict(u)
    d.pop("password_hash")
    return d


def _check_groups(groups: list[str]) -> list[str]:
    for g in groups:
        if not re.fullmatch(GROUP_PATTERN, g):
            raise CliError(f"invalid group name {g!r} (and system: groups are refused)")
    return groups


def _user_command(args: argparse.Namespace, store: Store) -> Any:
    cmd = args.user_command
    if cmd == "create":
        if not re.fullmatch(USERNAME_PATTERN, args.username):
            raise CliError(f"invalid username {args.username!r}")
        pw, generated = _password(args.password_stdin)
        user = store.create_user(args.username, args.display_name, hash_password(pw),
                                 is_admin=args.admin, groups=_check_groups(args.group))
        return {**_public(user), **({"password": pw} if generated else {})}
    if cmd == "list":
        return [_public(u) for u in store.list_users()]
    user = _user(store, args.username)
    if cmd in ("disable", "enable"):
        return _public(store.update_user(user.id, enabled=cmd == "enable"))
    if cmd == "delete":
        store.delete_user(user.id)
        return None
    if cmd == "groups":
        return _public(store.set_user_groups(user.id, _check_groups(args.groups)))
    pw, generated = _password(args.password_stdin)  # passwd
    store.update_user(user.id, password_hash=hash_password(pw))
    return {"id": user.id, "username": user.username, **({"password": pw} if generated else {})}


def _token_command(args: argparse.Namespace, store: Store) -> Any:
    if args.token_command == "list":
        user_id = _user(store, args.user).id if args.user else None
        out = []
        for t in store.list_tokens(user_id):
            d = dataclasses.asdict(t)
            d.pop("secret_hash")
            out.append(d)
        return out
    store.delete_token(args.id)
    return None


def subject_args(args: argparse.Namespace, store: Store) -> tuple[str, str]:
    """("user", id) from --user NAME|ID, or ("group", name) from --group."""
    if args.user:
        return "user", _user(store, args.user).id
    return "group", _check_groups([args.group])[0]


def _scope(args: argparse.Namespace) -> tuple[str, str | None]:
    """(cluster id, project id or None) from --cluster and --project."""
    cluster, project = args.cluster, args.project
    if project and PROJECT_REF_SEP in project:
        ref_cluster, _, project = project.partition(PROJECT_REF_SEP)
        if cluster and cluster != ref_cluster:
            raise CliError(f"--project {args.project} is not in cluster {cluster}")
        cluster = ref_cluster
    if not cluster:
        raise CliError("give --cluster, or --project <cluster>:<project>")
    return cluster, project or None


def _binding_command(args: argparse.Namespace, store: Store) -> Any:
    cmd = args.binding_command
    if cmd == "create":
        cluster, project = _scope(args)
        store.get_cluster(cluster)
        try:
            Catalog.load(store).bindable(args.role, PROJECT if project else CLUSTER)
        except TemplateError as e:
            raise CliError(str(e)) from e
        kind, subject = subject_args(args, store)
        return dataclasses.asdict(
            store.create_binding(cluster, kind, subject, args.role, project_id=project))
    if cmd == "list":
        return [dataclasses.asdict(b) for b in store.list_bindings(args.cluster)]
    store.delete_binding(args.id)
    return None


Command = Callable[[argparse.Namespace, Store], Any]
COMMANDS: dict[str, Command] = {
    "user": _user_command, "token": _token_command, "binding": _binding_command,
}


def run(args: argparse.Namespace, store: Store, commands: dict[str, Command] | None = None,
        ) -> int:
    """Run one store command (``commands``: this module's by default); JSON out, errors on
    stderr with exit code 1."""
    try:
        out = (commands or COMMANDS)[args.command](args, store)
    except (StoreError, CliError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if out is not None:
        print(json.dumps(out))
    return 0
