"""``rancher clusters``: list with state, show, create (the agent's import commands, --wait),
wait, delete."""

from __future__ import annotations

import time
from typing import Any

import click

from rancher_cli import resolve
from rancher_cli.app import State, output_option, pass_state
from rancher_cli.client import Api
from rancher_cli.constants import EXIT_TIMEOUT, STATE_ACTIVE, WAIT_POLL_INTERVAL_S, WAIT_TIMEOUT_S
from rancher_cli.errors import CliError
from rancher_cli.output import console, emit, field, say, time_field


def _current_mark(current: str) -> Any:
    return lambda c: "*" if c.get("id") == current else " "


def columns(current: str = "") -> list[tuple[str, Any]]:
    return [("", _current_mark(current)), ("ID", field("id")), ("NAME", field("name")),
            ("STATE", field("state")), ("REASON", field("reason")),
            ("MY ROLE", field("myRole")), ("CREATED", time_field("created"))]


@click.group(invoke_without_command=True)
@output_option
@click.pass_context
def clusters(ctx: click.Context, output: str) -> None:
    """Clusters: list (the default), show, create, wait, delete."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_clusters, output=output)


@clusters.command("ls")
@output_option
@pass_state
def list_clusters(state: State, output: str = "table") -> None:
    """List the clusters you can see, with their state (* marks the current one)."""
    items = state.api().data("/v3/clusters")
    emit(items, output, columns(state.login().current_cluster))


@clusters.command("show")
@click.argument("cluster")
@output_option
@pass_state
def show_cluster(state: State, cluster: str, output: str) -> None:
    """One cluster, by name or id."""
    emit(resolve.cluster(state.api(), cluster), output, columns(state.login().current_cluster))


def wait_active(api: Api, cluster_id: str, timeout_s: float) -> dict[str, Any]:
    """Poll the cluster until it is active, showing its state; CliError (6) at the deadline."""
    deadline = time.monotonic() + timeout_s
    err = console(stderr=True)
    with err.status(f"waiting for cluster {cluster_id} to become active") as status:
        while True:
            item = api.call("GET", f"/v3/clusters/{cluster_id}")
            current = str(item.get("state", "?"))
            if current == STATE_ACTIVE:
                return dict(item)
            left = deadline - time.monotonic()
            if left <= 0:
                raise CliError(
                    f"cluster {cluster_id} is still {current} after {timeout_s:g} s: run its "
                    "agent with the import command (`rancher clusters create` printed it), "
                    f"then `rancher clusters wait {cluster_id}`",
                    EXIT_TIMEOUT,
                )
            reason = item.get("reason") or ""
            status.update(f"cluster {cluster_id} is {current}"
                          f"{f' ({reason})' if reason else ''}; waiting {left:.0f} s more")
            time.sleep(min(WAIT_POLL_INTERVAL_S, left))


@clusters.command("create")
@click.argument("name")
@click.option("--wait", is_flag=True, help="wait until the cluster's agent connects (active)")
@click.option("--timeout", type=float, default=WAIT_TIMEOUT_S, show_default=True,
              help="seconds --wait waits")
@output_option
@pass_state
def create_cluster(state: State, name: str, wait: bool, timeout: float, output: str) -> None:
    """Create a cluster and print the commands that register its agent (shown once)."""
    api = state.api()
    created = api.call("POST", "/v3/clusters", {"name": name})
    if output != "table":
        emit(created, output)
    else:
        click.echo(
            f"Cluster {created['id']} ({name}) created. Register its agent (the registration "
            "token is shown this once):\n"
            f"  inside the cluster:\n    {created.get('importCommand', '')}\n"
            "  or from a machine with the cluster's kubeconfig:\n"
            f"    {created.get('command', '')} import --kubeconfig ~/.kube/config"
        )
    if wait:
        item = wait_active(api, str(created["id"]), timeout)
        say(f"Cluster {item['id']} ({name}) is active")


@clusters.command("wait")
@click.argument("cluster")
@click.option("--timeout", type=float, default=WAIT_TIMEOUT_S, show_default=True)
@pass_state
def wait_cluster(state: State, cluster: str, timeout: float) -> None:
    """Wait until a cluster is active (exit code 6 if it is not within --timeout)."""
    api = state.api()
    found = resolve.cluster(api, cluster)
    wait_active(api, str(found["id"]), timeout)
    say(f"Cluster {found['id']} ({found.get('name')}) is active")


@clusters.command("delete")
@click.argument("cluster", nargs=-1, required=True)
@output_option
@pass_state
def delete_cluster(state: State, cluster: tuple[str, ...], output: str) -> None:
    """Delete clusters, by name or id (their agents are disconnected, their bindings go)."""
    api = state.api()
    deleted = []
    for ref in cluster:
        found = resolve.cluster(api, ref)
        deleted.append(api.call("DELETE", f"/v3/clusters/{found['id']}"))
        if output == "table":
            say(f"Cluster {found['id']} ({found.get('name')}) deleted")
    if output != "table":
        emit(deleted, output)


COMMANDS = [clusters]
