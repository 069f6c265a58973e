"""The ``rancher`` command: the root group, shared options, and one place where every failure
becomes one line on stderr and an exit code (``constants``); tracebacks only with ``--debug``."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from rancher_cli import config
from rancher_cli.client import Api
from rancher_cli.constants import EXIT_INTERRUPTED, EXIT_SERVER_ERROR, EXIT_USAGE
from rancher_cli.errors import CliError
from rancher_cli.output import FORMATS

F = TypeVar("F", bound=Callable[..., Any])
DEBUG_ENV = "RANCHER_DEBUG"


@dataclass
class State:
    debug: bool = False
    _login: config.Login | None = field(default=None, repr=False)

    def login(self) -> config.Login:
        if self._login is None:
            self._login = config.load()
        return self._login

    def api(self) -> Api:
        login = self.login()
        return Api(login.server, login.token, login.ca_pem)


pass_state = click.make_pass_decorator(State, ensure=True)


def output_option(fn: F) -> F:
    """``-o table|json|yaml`` on a command that shows resources."""
    return click.option(
        "-o", "--output", "output", type=click.Choice(FORMATS), default="table",
        show_default=True, help="table for people; json or yaml for scripts",
    )(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rancher-py", prog_name="rancher")
@click.option("--debug", is_flag=True, envvar=DEBUG_ENV, help="show tracebacks of failures")
@click.pass_context
def root(ctx: click.Context, debug: bool) -> None:
    """Manage a rancher-py server from the command line: log in once, then work with clusters,
    projects, users, tokens, role bindings, kubeconfigs and login providers over its REST API.

    \b
    Exit codes: 0 ok, 1 the server answered with an error, 2 usage, 3 not logged in or the
    credentials were refused, 4 the server cannot be reached, 5 the server's CA is not the
    pinned one, 6 --wait timed out (or a device login's code expired), 130 interrupted;
    `rancher kubectl` exits with kubectl's code."""
    ctx.obj = State(debug=debug)


def _register() -> None:
    from rancher_cli import cmd_access, cmd_auth, cmd_clusters, cmd_kube, cmd_login

    for module in (cmd_login, cmd_clusters, cmd_access, cmd_auth, cmd_kube):
        for command in module.COMMANDS:
            root.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0", "false")
    try:
        code = root.main(args=args, prog_name="rancher", standalone_mode=False)
    except CliError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_SERVER_ERROR)
    except Exception as exc:  # the last line of defence: one line, the traceback with --debug
        if debug:
            traceback.print_exc()
        click.echo(
            f"error: unexpected failure: {type(exc).__name__}: {exc} (run with --debug for "
            "the traceback, and report it)",
            err=True,
        )
        sys.exit(EXIT_SERVER_ERROR)
    sys.exit(code if isinstance(code, int) else 0)
