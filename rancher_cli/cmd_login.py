"""``rancher login``, ``logout``, ``whoami``."""

from __future__ import annotations

from pathlib import Path

import click

from rancher_cli import config
from rancher_cli.app import State, output_option, pass_state
from rancher_cli.client import Api, checksum, fetch_ca, normalize_server, pinned_ca
from rancher_cli.constants import (
    CACERTS_PATH,
    EXIT_AUTH,
    EXIT_UNTRUSTED,
    EXIT_USAGE,
    LOGIN_PATH,
    LOGIN_TOKEN_DESCRIPTION,
)
from rancher_cli.errors import CliError
from rancher_cli.output import emit, field, say, time_field

USER_COLUMNS = [("ID", field("id")), ("USERNAME", field("username")), ("NAME", field("name")),
                ("ADMIN", field("admin")), ("ENABLED", field("enabled")),
                ("CREATED", time_field("created"))]


def me(api: Api) -> dict[str, object]:
    users = api.data("/v3/users", {"me": "true"})
    if not users:
        raise CliError("the server did not say who this token belongs to", EXIT_AUTH)
    return users[0]


def _trust(server: str, ca_checksum: str | None, cacert: str | None) -> str:
    """The CA PEM to trust for ``server`` ('' for the system's trust store)."""
    if ca_checksum and cacert:
        raise CliError("give either --ca-checksum or --cacert, not both", EXIT_USAGE)
    if ca_checksum:
        return pinned_ca(server, ca_checksum)
    if cacert:
        return Path(cacert).read_text()
    try:
        Api(server).call("GET", CACERTS_PATH)
    except CliError as exc:
        if exc.code != EXIT_UNTRUSTED:
            raise
        found = checksum(fetch_ca(server))
        raise CliError(
            f"the server's certificate is not trusted by this machine; its CA's checksum is "
            f"{found}: if that is the ca_checksum the server printed at start, run "
            f"`rancher login {server} --ca-checksum {found}`",
            EXIT_UNTRUSTED,
        ) from exc
    return ""


@click.command()
@click.argument("url")
@click.option("-u", "--username", help="local user to log in as (prompted if not given)")
@click.option("-p", "--password", envvar="RANCHER_PASSWORD",
              help="the password (prompted, hidden, if not given; or $RANCHER_PASSWORD)")
@click.option("-t", "--token", envvar="RANCHER_TOKEN",
              help="log in with an API token (token-xxxxx:secret) instead of a password")
@click.option("--ca-checksum", help="trust the server's CA only if its SHA-256 is this "
              "(the ca_checksum the server printed at start, as the agents check it)")
@click.option("--cacert", type=click.Path(exists=True, dir_okay=False),
              help="trust this CA file for the server")
@pass_state
def login(state: State, url: str, username: str | None, password: str | None,
          token: str | None, ca_checksum: str | None, cacert: str | None) -> None:
    """Log in to the server at URL and save the credentials (0600) for the other commands."""
    server = normalize_server(url)
    ca_pem = _trust(server, ca_checksum, cacert)
    api = Api(server, ca_pem=ca_pem)
    if token:
        api.token = token.strip()
        try:
            user = me(api)
        except CliError as exc:
            if exc.code == EXIT_AUTH:
                raise CliError("the server refused this token (wrong, expired or revoked): "
                               "create a new one or log in with a password", EXIT_AUTH) from exc
            raise
    else:
        username = username or click.prompt("Username", default="admin")
        password = password or click.prompt("Password", hide_input=True)
        try:
            answer = api.call("POST", LOGIN_PATH, {
                "username": username, "password": password,
                "description": LOGIN_TOKEN_DESCRIPTION,
            })
        except CliError as exc:
            if exc.code == EXIT_AUTH:
                raise CliError("wrong username or password: check them and run "
                               f"`rancher login {server}` again", EXIT_AUTH) from exc
            raise
        api.token = str(answer["token"])
        user = me(api)
    saved = config.Login(server=server, token=api.token, token_id=api.token.split(":")[0],
                         username=str(user.get("username", "")), user_id=str(user.get("id", "")),
                         ca_pem=ca_pem)
    path = config.save(saved)
    say(f"Logged in to {server} as {saved.username}; credentials saved in {path}")


@click.command()
@pass_state
def logout(state: State) -> None:
    """Revoke the saved login token and forget it."""
    try:
        state.api().call("POST", "/v3/tokens?action=logout", {})
    except CliError as exc:
        if exc.code == EXIT_AUTH and "not logged in" in exc.message:
            raise
    config.forget()
    say("Logged out")


@click.command()
@output_option
@pass_state
def whoami(state: State, output: str) -> None:
    """The user the saved login acts as."""
    emit(me(state.api()), output, USER_COLUMNS)


COMMANDS = [login, logout, whoami]
