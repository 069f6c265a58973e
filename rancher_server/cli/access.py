"""``rancher-server role-template ...``, ``project ...`` and ``global-role ...``: role templates,
projects and global role bindings, on the local store directly (like ``user ...``).

    rancher-server role-template list [--context C] [--all]
    rancher-server role-template create ID --context C --name N [--rule JSON]... [--inherits T]...
                                        [--locked] [--description D]
    rancher-server role-template delete ID
    rancher-server project list [--cluster ID] | create --cluster ID NAME [--description D]
    rancher-server project delete ID           # <cluster>:<project> or the project id
    rancher-server global-role bind|unbind (--user NAME | --group G) --role T

Built-in templates are read-only; a bound template cannot be deleted; Default and System
projects stay; the last administrator is never unbound.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from rancher_server.access.templates import GLOBAL, Catalog, TemplateError
from rancher_server.auth.global_roles import administrators_without, includes_admin
from rancher_server.cli.users import PROJECT_REF_SEP, CliError, subject_args
from rancher_server.store import RoleTemplate, Store
from rancher_server.store.base import TEMPLATE_CONTEXTS
from rancher_server.store.sqlite_access import DEFAULT_PROJECTS


def add_parsers(sub: Any) -> None:
    rt = sub.add_parser("role-template", help="role templates (built-in and custom)")
    rts = rt.add_subparsers(dest="template_command", required=True)
    rl = rts.add_parser("list", help="list role templates")
    rl.add_argument("--context", choices=TEMPLATE_CONTEXTS)
    rl.add_argument("--all", action="store_true", help="include hidden building blocks")
    rc = rts.add_parser("create", help="create a custom role template")
    rc.add_argument("id")
    rc.add_argument("--context", required=True, choices=TEMPLATE_CONTEXTS)
    rc.add_argument("--name", required=True, help="display name")
    rc.add_argument("--description", default="")
    rc.add_argument("--rule", action="append", default=[], help="a PolicyRule as JSON, e.g. "
                    '\'{"apiGroups":[""],"resources":["pods"],"verbs":["get"]}\' (repeatable)')
    rc.add_argument("--inherits", action="append", default=[], help="template id (repeatable)")
    rc.add_argument("--locked", action="store_true", help="no new bindings")
    rts.add_parser("delete", help="delete a custom role template").add_argument("id")

    p = sub.add_parser("project", help="projects: named groups of namespaces in a cluster")
    ps = p.add_subparsers(dest="project_command", required=True)
    ps.add_parser("list", help="list projects").add_argument("--cluster")
    pc = ps.add_parser("create", help="create a project in a cluster")
    pc.add_argument("--cluster", required=True)
    pc.add_argument("name")
    pc.add_argument("--description", default="")
    ps.add_parser("delete", help="delete a project and its bindings").add_argument("id")

    g = sub.add_parser("global-role", help="bind or unbind global roles (admin, user, ...)")
    gs = g.add_subparsers(dest="global_command", required=True)
    for name in ("bind", "unbind"):
        gp = gs.add_parser(name, help=f"{name} a user or group and a global role")
        who = gp.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help="username or user id")
        who.add_argument("--group")
        gp.add_argument("--role", required=True, help="global role template id")


def _template_json(t: RoleTemplate, catalog: Catalog) -> dict[str, Any]:
    return {**dataclasses.asdict(t), "downstream_roles": list(catalog.downstream_roles(t.id))}


def _template_command(args: argparse.Namespace, store: Store) -> Any:
    catalog = Catalog.load(store)
    cmd = args.template_command
    if cmd == "list":
        return [_template_json(t, catalog) for t in catalog.by_id.values()
                if (args.context is None or t.context == args.context)
                and (args.all or not t.hidden)]
    if cmd == "create":
        try:
            rules = tuple(json.loads(r) for r in args.rule)
        except ValueError as e:
            raise CliError(f"--rule is not JSON: {e}") from e
        template = RoleTemplate(
            id=args.id, display_name=args.name, context=args.context, rules=rules,
            inherits=tuple(args.inherits), locked=args.locked, description=args.description)
        try:
            catalog.validate(template)
        except TemplateError as e:
            raise CliError(str(e)) from e
        created = store.create_template(template)
        return _template_json(created, Catalog.load(store))
    if catalog.get(args.id).builtin:  # delete
        raise CliError(f"role template {args.id!r} is built in and read-only")
    store.delete_template(args.id)
    return None


def _project_command(args: argparse.Namespace, store: Store) -> Any:
    cmd = args.project_command
    if cmd == "list":
        return [dataclasses.asdict(p) for p in store.list_projects(args.cluster)]
    if cmd == "create":
        return dataclasses.asdict(store.create_project(args.cluster, args.name, args.description))
    project = store.get_project(args.id.rpartition(PROJECT_REF_SEP)[2])  # delete
    if project.name in {name for name, _ in DEFAULT_PROJECTS}:
        raise CliError(f"the {project.name} project of every cluster cannot be deleted")
    store.delete_project(project.id)
    return None


def _global_command(args: argparse.Namespace, store: Store) -> Any:
    kind, subject = subject_args(args, store)
    if args.global_command == "bind":
        try:
            Catalog.load(store).bindable(args.role, GLOBAL)
        except TemplateError as e:
            raise CliError(str(e)) from e
        return dataclasses.asdict(store.create_global_binding(kind, subject, args.role))
    found = [g for g in store.list_global_bindings()
             if (g.subject_kind, g.subject, g.role) == (kind, subject, args.role)]
    if not found:
        raise CliError(f"{kind} {subject} has no global role {args.role!r}")
    if includes_admin(store, (args.role,)) and not administrators_without(store, found[0].id):
        raise CliError("this is the last binding that makes an enabled user an administrator")
    store.delete_global_binding(found[0].id)
    return None


COMMANDS = {"role-template": _template_command, "project": _project_command,
            "global-role": _global_command}
