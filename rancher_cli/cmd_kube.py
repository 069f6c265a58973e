"""``rancher kubeconfig`` (print, write, or merge into ~/.kube/config), ``context`` (the current
cluster) and ``kubectl`` (kubectl with a kubeconfig for the current cluster)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import yaml

from rancher_cli import config, kubeconfigs, resolve
from rancher_cli.app import State, output_option, pass_state
from rancher_cli.client import Api
from rancher_cli.cmd_clusters import columns
from rancher_cli.constants import EXIT_SERVER_ERROR, EXIT_USAGE
from rancher_cli.errors import CliError
from rancher_cli.output import emit, say

HTTP_NOT_FOUND = 404


def generate(api: Api, cluster_id: str) -> dict[str, Any]:
    """``generateKubeconfig``: a kubeconfig with a new API token."""
    return dict(api.call("POST", f"/v3/clusters/{cluster_id}?action=generateKubeconfig", {}))


def current_cluster(state: State, api: Api) -> dict[str, Any]:
    """The current cluster; with none set and exactly one visible, that one."""
    ref = state.login().current_cluster
    if ref:
        return resolve.cluster(api, ref)
    visible = api.data("/v3/clusters")
    if len(visible) == 1:
        return visible[0]
    raise CliError("no current cluster: choose one with `rancher context switch <cluster>` "
                   "(`rancher clusters` lists them)", EXIT_USAGE)


@click.command()
@click.argument("cluster", required=False)
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False),
              help="write the kubeconfig to this file (0600)")
@click.option("--merge", is_flag=True,
              help="merge it into your kubeconfig ($KUBECONFIG's first file or ~/.kube/config)")
@click.option("--kubeconfig", "target", type=click.Path(dir_okay=False),
              help="the kubeconfig --merge writes into")
@click.option("--use-context", is_flag=True, help="with --merge: make it kubectl's current "
              "context")
@pass_state
def kubeconfig(state: State, cluster: str | None, file: str | None, merge: bool,
               target: str | None, use_context: bool) -> None:
    """A kubeconfig for CLUSTER (default: the current one) through the server, with a new
    token: printed, written (--file), or merged into your kubeconfig (--merge)."""
    if file and merge:
        raise CliError("give --file or --merge, not both", EXIT_USAGE)
    api = state.api()
    found = resolve.cluster(api, cluster) if cluster else current_cluster(state, api)
    text = str(generate(api, str(found["id"]))["config"])
    if merge:
        path = Path(target) if target else kubeconfigs.default_path()
        doc = kubeconfigs.merge(kubeconfigs.load(path), yaml.safe_load(text), use_context)
        kubeconfigs.write(path, doc)
        say(f"Merged cluster {found.get('name')} into {path} (context {found.get('name')}"
            f"{', now current' if doc.get('current-context') == found.get('name') else ''})")
    elif file:
        config.write_private(Path(file), text)
        say(f"Wrote the kubeconfig of cluster {found.get('name')} to {file}")
    else:
        click.echo(text, nl=False)


@click.group(invoke_without_command=True)
@output_option
@click.pass_context
def context(ctx: click.Context, output: str) -> None:
    """The current cluster (the one `rancher kubectl` and --cluster defaults use): show it
    (the default), or switch."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(show_context, output=output)


@context.command("show")
@output_option
@pass_state
def show_context(state: State, output: str = "table") -> None:
    """The current cluster."""
    login = state.login()
    if not login.current_cluster:
        raise CliError("no current cluster: choose one with `rancher context switch <cluster>`",
                       EXIT_USAGE)
    found = resolve.cluster(state.api(), login.current_cluster)
    emit(found, output, columns(login.current_cluster))


@context.command("switch")
@click.argument("cluster")
@pass_state
def switch_context(state: State, cluster: str) -> None:
    """Make CLUSTER (name or id) the current cluster."""
    found = resolve.cluster(state.api(), cluster)
    login = state.login()
    login.current_cluster = str(found["id"])
    config.save(login)
    say(f"Current cluster: {found['id']} ({found.get('name')})")


def _cached_kubeconfig(api: Api, cluster_id: str) -> Path:
    """The kubeconfig ``rancher kubectl`` uses for a cluster: generated once and kept (0600)
    while its token is valid; a new one when the token expired or was revoked."""
    path = config.kubeconfig_cache_dir() / f"{cluster_id}.yaml"
    if path.exists():
        try:
            doc = yaml.safe_load(path.read_text()) or {}
            token_id = str(doc["users"][0]["user"]["token"]).split(":")[0]
            token = api.call("GET", f"/v3/tokens/{token_id}")
            if not token.get("expired") and token.get("enabled", True):
                return path
        except CliError as exc:
            if exc.status != HTTP_NOT_FOUND:
                raise
        except (yaml.YAMLError, KeyError, IndexError, TypeError, AttributeError):
            pass
    config.write_private(path, str(generate(api, cluster_id)["config"]))
    return path


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                                 "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_state
def kubectl(state: State, args: tuple[str, ...]) -> int:
    """Run kubectl against the current cluster, through the server (exits with kubectl's code).

    \b
    rancher kubectl get nodes
    rancher kubectl -n default exec -it pod -- sh"""
    binary = shutil.which(os.environ.get("KUBECTL", "kubectl"))
    if binary is None:
        raise CliError("kubectl is not installed (or not on PATH): install it, or set $KUBECTL "
                       "to its path", EXIT_SERVER_ERROR)
    api = state.api()
    found = current_cluster(state, api)
    path = _cached_kubeconfig(api, str(found["id"]))
    done = subprocess.run([binary, "--kubeconfig", str(path), *args], check=False)
    raise click.exceptions.Exit(done.returncode)


COMMANDS = [kubeconfig, context, kubectl]
