"""``rancher projects``, ``users``, ``tokens``, ``bindings`` (cluster and project role template
bindings, and the role templates they can name)."""

from __future__ import annotations

import re
from typing import Any

import click

from rancher_cli import resolve
from rancher_cli.app import State, output_option, pass_state
from rancher_cli.cmd_login import USER_COLUMNS
from rancher_cli.constants import EXIT_USAGE
from rancher_cli.errors import CliError
from rancher_cli.output import emit, field, say, time_field

MS_PER_S = 1000
TTL_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TTL_RE = re.compile(r"^(\d+)([smhd]?)$")
PRINCIPAL_SEPARATOR = "://"  # a provider's principal id, not a local group's name


# -- projects ----------------------------------------------------------------------------------
PROJECT_COLUMNS = [("ID", field("id")), ("NAME", field("name")),
                   ("CLUSTER", field("clusterId")), ("DESCRIPTION", field("description")),
                   ("CREATED", time_field("created"))]


@click.group(invoke_without_command=True)
@output_option
@click.pass_context
def projects(ctx: click.Context, output: str) -> None:
    """Projects (named groups of a cluster's namespaces): list (the default), create, delete."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_projects, output=output)


@projects.command("ls")
@click.option("-c", "--cluster", help="only this cluster's (name or id)")
@output_option
@pass_state
def list_projects(state: State, cluster: str | None = None, output: str = "table") -> None:
    """List the projects you can see."""
    api = state.api()
    items = api.data("/v3/projects")
    if cluster:
        cid = resolve.cluster(api, cluster)["id"]
        items = [p for p in items if p.get("clusterId") == cid]
    emit(items, output, PROJECT_COLUMNS)


def _cluster_or_current(state: State, cluster: str | None) -> dict[str, Any]:
    api = state.api()
    ref = cluster or state.login().current_cluster
    if not ref:
        raise CliError("which cluster? give --cluster, or set one with "
                       "`rancher context switch <cluster>`", EXIT_USAGE)
    return resolve.cluster(api, ref)


@projects.command("create")
@click.argument("name")
@click.option("-c", "--cluster", help="the cluster (name or id; default: the current one)")
@click.option("--description", default="")
@output_option
@pass_state
def create_project(state: State, name: str, cluster: str | None, description: str,
                   output: str) -> None:
    """Create a project in a cluster (you become its project-owner)."""
    found = _cluster_or_current(state, cluster)
    body = {"clusterId": found["id"], "name": name, "description": description}
    emit(state.api().call("POST", "/v3/projects", body), output, PROJECT_COLUMNS)


@projects.command("delete")
@click.argument("project", nargs=-1, required=True)
@click.option("-c", "--cluster", help="the cluster of a project given by name")
@pass_state
def delete_project(state: State, project: tuple[str, ...], cluster: str | None) -> None:
    """Delete projects (id <cluster>:<project>, or name) and their bindings."""
    api = state.api()
    cid = resolve.cluster(api, cluster)["id"] if cluster else ""
    for ref in project:
        found = resolve.project(api, ref, cid)
        api.call("DELETE", f"/v3/projects/{found['id']}")
        say(f"Project {found['id']} ({found.get('name')}) deleted")


# -- users -------------------------------------------------------------------------------------
@click.group(invoke_without_command=True)
@output_option
@click.pass_context
def users(ctx: click.Context, output: str) -> None:
    """Users: list (the default), create, delete."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_users, output=output)


@users.command("ls")
@output_option
@pass_state
def list_users(state: State, output: str = "table") -> None:
    """List users (without the right to list them: yourself)."""
    emit(state.api().data("/v3/users"), output, USER_COLUMNS)


@users.command("create")
@click.argument("username")
@click.option("--password", envvar="RANCHER_NEW_PASSWORD",
              help="prompted twice, hidden, if not given (or $RANCHER_NEW_PASSWORD)")
@click.option("--name", default="", help="display name")
@click.option("--admin", is_flag=True, help="make the user an administrator")
@output_option
@pass_state
def create_user(state: State, username: str, password: str | None, name: str, admin: bool,
                output: str) -> None:
    """Create a local user."""
    password = password or click.prompt("Password", hide_input=True, confirmation_prompt=True)
    body = {"username": username, "password": password, "name": name, "admin": admin}
    emit(state.api().call("POST", "/v3/users", body), output, USER_COLUMNS)


@users.command("delete")
@click.argument("user", nargs=-1, required=True)
@pass_state
def delete_user(state: State, user: tuple[str, ...]) -> None:
    """Delete users (username or id) with their tokens and bindings."""
    api = state.api()
    for ref in user:
        found = resolve.user(api, ref)
        api.call("DELETE", f"/v3/users/{found['id']}")
        say(f"User {found['id']} ({found.get('username')}) deleted")


# -- tokens ------------------------------------------------------------------------------------
TOKEN_COLUMNS = [("", lambda t: "*" if t.get("current") else " "), ("ID", field("id")),
                 ("USER", field("userId")), ("KIND", field("kind")),
                 ("DESCRIPTION", field("description")), ("CREATED", time_field("created")),
                 ("EXPIRES", time_field("expiresAt")), ("LAST USED", time_field("lastUsedAt")),
                 ("EXPIRED", field("expired"))]


def ttl_ms(text: str) -> int:
    match = TTL_RE.match(text.strip())
    if not match:
        raise CliError(f"--ttl {text!r}: give a number of seconds or 30m, 12h, 7d", EXIT_USAGE)
    return int(match.group(1)) * TTL_UNITS_S[match.group(2) or "s"] * MS_PER_S


@click.group(invoke_without_command=True)
@output_option
@click.pass_context
def tokens(ctx: click.Context, output: str) -> None:
    """Your API tokens: list (the default; * marks the CLI's own), create, delete."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_tokens, output=output)


@tokens.command("ls")
@click.option("--all", "all_users", is_flag=True, help="everyone's (administrators)")
@output_option
@pass_state
def list_tokens(state: State, all_users: bool = False, output: str = "table") -> None:
    """List API tokens."""
    query = {"all": "true"} if all_users else None
    emit(state.api().data("/v3/tokens", query), output, TOKEN_COLUMNS)


@tokens.command("create")
@click.option("--description", default="", help="what the token is for")
@click.option("--ttl", default="", help="lifetime: seconds, or 30m, 12h, 7d (default: the "
              "server's)")
@output_option
@pass_state
def create_token(state: State, description: str, ttl: str, output: str) -> None:
    """Create an API token; its secret is shown this once."""
    body: dict[str, Any] = {"description": description}
    if ttl:
        body["ttl"] = ttl_ms(ttl)
    created = state.api().call("POST", "/v3/tokens", body)
    if output != "table":
        emit(created, output)
        return
    emit(created, output, TOKEN_COLUMNS)
    say("The token (shown this once):")
    click.echo(str(created.get("token", "")))


@tokens.command("delete")
@click.argument("token_id", nargs=-1, required=True)
@pass_state
def delete_token(state: State, token_id: tuple[str, ...]) -> None:
    """Revoke tokens by id (token-xxxxx)."""
    api = state.api()
    for ref in token_id:
        api.call("DELETE", f"/v3/tokens/{ref.split(':')[0]}")
        say(f"Token {ref.split(':')[0]} revoked")


# -- bindings ----------------------------------------------------------------------------------
CRTB = "/v3/clusterroletemplatebindings"
PRTB = "/v3/projectroletemplatebindings"
BINDING_COLUMNS = [("ID", field("id")), ("SCOPE", lambda b: b.get("projectId") or
                                        b.get("clusterId")),
                   ("SUBJECT", lambda b: f"user {b['userId']}" if b.get("userId")
                    else f"group {b.get('groupName')}"),
                   ("ROLE", field("roleTemplateId")), ("CREATED", time_field("created"))]
ROLE_COLUMNS = [("ID", field("id")), ("NAME", field("name")), ("CONTEXT", field("context")),
                ("BUILTIN", field("builtin")), ("LOCKED", field("locked")),
                ("DESCRIPTION", field("description"))]


@click.group(invoke_without_command=True)
@output_option
@click.pass_context
def bindings(ctx: click.Context, output: str) -> None:
    """Role template bindings on clusters and projects: list (the default), create, delete,
    and the role templates they can name (roles)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_bindings, output=output)


@bindings.command("ls")
@click.option("-c", "--cluster", help="only this cluster's (its projects' too)")
@output_option
@pass_state
def list_bindings(state: State, cluster: str | None = None, output: str = "table") -> None:
    """List cluster and project bindings you can see."""
    api = state.api()
    items = api.data(CRTB) + api.data(PRTB)
    if cluster:
        cid = resolve.cluster(api, cluster)["id"]
        items = [b for b in items if b.get("clusterId") == cid]
    emit(items, output, BINDING_COLUMNS)


@bindings.command("create")
@click.option("-c", "--cluster", help="bind on this cluster (name or id)")
@click.option("-p", "--project", help="bind on this project (<cluster>:<project> id, or name "
              "with --cluster)")
@click.option("--user", help="the user (username or id)")
@click.option("--group", help="a local group's name, or a provider's group principal id "
              "(openldap_group://<dn>, activedirectory_group://<dn>, github_team://<id>, ...)")
@click.option("-r", "--role", required=True,
              help="the role template id (`rancher bindings roles` lists them)")
@output_option
@pass_state
def create_binding(state: State, cluster: str | None, project: str | None, user: str | None,
                   group: str | None, role: str, output: str) -> None:
    """Bind a user or a group to a role template on a cluster or a project."""
    if (user is None) == (group is None):
        raise CliError("give exactly one of --user or --group", EXIT_USAGE)
    if not cluster and not project:
        raise CliError("give --cluster, or --project for a project binding", EXIT_USAGE)
    api = state.api()
    subject: dict[str, Any]
    if user is not None:
        subject = {"userId": resolve.user(api, user)["id"]}
    elif group is not None and PRINCIPAL_SEPARATOR in group:
        subject = {"groupPrincipalId": group}  # openldap_group://<dn>, github_team://<id>, ...
    else:
        subject = {"groupName": group}
    if project:
        cid = resolve.cluster(api, cluster)["id"] if cluster else ""
        pid = resolve.project(api, project, cid)["id"]
        created = api.call("POST", PRTB, {"projectId": pid, "roleTemplateId": role, **subject})
    else:
        assert cluster is not None
        cid = resolve.cluster(api, cluster)["id"]
        created = api.call("POST", CRTB, {"clusterId": cid, "roleTemplateId": role, **subject})
    emit(created, output, BINDING_COLUMNS)


@bindings.command("delete")
@click.argument("binding_id", nargs=-1, required=True)
@pass_state
def delete_binding(state: State, binding_id: tuple[str, ...]) -> None:
    """Delete bindings by id (cluster or project bindings)."""
    api = state.api()
    project_ids = {b.get("id") for b in api.data(PRTB)}
    for ref in binding_id:
        api.call("DELETE", f"{PRTB if ref in project_ids else CRTB}/{ref}")
        say(f"Binding {ref} deleted")


@bindings.command("roles")
@click.option("--context", "context", type=click.Choice(["cluster", "project"]),
              help="only templates for clusters or for projects")
@output_option
@pass_state
def list_roles(state: State, context: str | None, output: str) -> None:
    """The role templates a binding can name."""
    query = {"context": context} if context else None
    emit(state.api().data("/v3/roletemplates", query), output, ROLE_COLUMNS)


COMMANDS = [projects, users, tokens, bindings]
