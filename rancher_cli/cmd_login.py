"""``rancher login`` (local users, directory users, the device flow of GitHub or of an OpenID
Connect issuer), ``logout``, ``whoami``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from rancher_cli import config
from rancher_cli.app import State, output_option, pass_state
from rancher_cli.client import Api, checksum, fetch_ca, normalize_server, pinned_ca
from rancher_cli.constants import (
    CACERTS_PATH,
    DEVICE_DEFAULT_EXPIRY_S,
    DEVICE_DEFAULT_INTERVAL_S,
    DEVICE_LOGIN_PROVIDERS,
    DEVICE_PATHS,
    DEVICE_POLL_MIN_INTERVAL_S,
    DEVICE_WHERE,
    EXIT_AUTH,
    EXIT_INTERRUPTED,
    EXIT_SERVER_ERROR,
    EXIT_TIMEOUT,
    EXIT_UNREACHABLE,
    EXIT_UNTRUSTED,
    EXIT_USAGE,
    LOGIN_PATH,
    LOGIN_PROVIDERS,
    LOGIN_TOKEN_DESCRIPTION,
    PROVIDER_LOGIN_PATHS,
)
from rancher_cli.errors import CliError
from rancher_cli.output import emit, field, say, time_field

HTTP_BAD_REQUEST = 400
HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404
HTTP_UNAVAILABLE = 503
SECONDS_PER_MINUTE = 60
USER_COLUMNS = [("ID", field("id")), ("USERNAME", field("username")), ("NAME", field("name")),
                ("ADMIN", field("admin")), ("ENABLED", field("enabled")),
                ("CREATED", time_field("created"))]


def me(api: Api) -> dict[str, object]:
    users = api.data("/v3/users", {"me": "true"})
    if not users:
        raise CliError("the server did not say who this token belongs to", EXIT_AUTH)
    return users[0]


def read_password_stdin() -> str:
    """The first line of stdin (a script's ``echo "$PW" | rancher ... --password-stdin``)."""
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("--password-stdin: stdin gave no password", EXIT_USAGE)
    return password


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


def _password_login(api: Api, server: str, provider: str, username: str | None,
                    password: str | None, password_stdin: bool) -> str:
    """A local or directory (LDAP, AD) login: the token."""
    local = provider == "local"
    username = username or click.prompt("Username", default="admin" if local else None)
    if password_stdin:
        password = read_password_stdin()
    password = password or click.prompt("Password", hide_input=True)
    path = LOGIN_PATH if local else PROVIDER_LOGIN_PATHS[provider]
    again = f"`rancher login {server}{'' if local else f' --provider {provider}'}` again"
    try:
        answer = api.call("POST", path, {
            "username": username, "password": password,
            "description": LOGIN_TOKEN_DESCRIPTION,
        })
    except CliError as exc:
        if exc.code == EXIT_AUTH:
            raise CliError(f"wrong username or password: check them and run {again}",
                           EXIT_AUTH) from exc
        if exc.status == HTTP_FORBIDDEN and not local:
            raise CliError(f"{exc.detail}: ask an administrator to allow you in the {provider} "
                           "provider's allowedPrincipalIds", EXIT_AUTH, exc.status) from exc
        if exc.status == HTTP_NOT_FOUND and not local:
            raise CliError(f"{server} does not take {provider} logins (the provider is not "
                           f"enabled): ask an administrator to run `rancher auth-provider "
                           f"enable {provider}`", EXIT_SERVER_ERROR, exc.status) from exc
        raise
    return str(answer["token"])


def _duration(seconds: float) -> str:
    if seconds < 2 * SECONDS_PER_MINUTE:
        return f"{round(seconds)} seconds"
    return f"{round(seconds / SECONDS_PER_MINUTE)} minutes"


def _device_refused(exc: CliError, server: str, provider: str) -> CliError:
    if exc.status == HTTP_BAD_REQUEST:
        return CliError(f"the server no longer knows this device login ({exc.detail}: expired, "
                        f"used, or the server restarted): run `rancher login {server} "
                        f"--provider {provider}` again", EXIT_AUTH, exc.status)
    if exc.code == EXIT_AUTH or exc.status == HTTP_FORBIDDEN:
        return CliError(f"{DEVICE_WHERE[provider]} login refused: {exc.detail or exc.message}",
                        EXIT_AUTH, exc.status)
    return exc


def _device_login(api: Api, server: str, provider: str) -> str:
    """The device flow (RFC 8628) of GitHub or the OIDC issuer, through the server: show the
    code, poll until the user entered it, as often as the server says and no longer than the
    code lives."""
    try:
        start = api.call("POST", f"{DEVICE_PATHS[provider]}?action=deviceCode", {})
    except CliError as exc:
        if exc.status == HTTP_NOT_FOUND:
            raise CliError(f"{server} does not take {provider} logins (the provider is not "
                           f"enabled): ask an administrator to run `rancher auth-provider "
                           f"enable {provider}`", EXIT_SERVER_ERROR, exc.status) from exc
        raise
    if not isinstance(start, dict) or not start.get("deviceHandle"):
        raise CliError(f"{server} did not start a device login (no deviceHandle)",
                       EXIT_SERVER_ERROR)
    expires_s = float(start.get("expiresIn") or DEVICE_DEFAULT_EXPIRY_S)
    interval_s = max(DEVICE_POLL_MIN_INTERVAL_S,
                     float(start.get("interval") or DEVICE_DEFAULT_INTERVAL_S))
    deadline = time.monotonic() + expires_s
    body = {"deviceHandle": str(start["deviceHandle"])}
    warned = False
    try:
        say(f"To log in, open {start.get('verificationUri')} and enter the code "
            f"{start.get('userCode')} (it expires in {_duration(expires_s)}). Waiting; Ctrl-C "
            "stops.")
        if start.get("verificationUriComplete"):
            say(f"(or open {start['verificationUriComplete']}, which carries the code)")
        while True:
            time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                raise CliError("the code expired before it was entered: run `rancher login "
                               f"{server} --provider {provider}` again", EXIT_TIMEOUT)
            try:
                answer: Any = api.call("POST", f"{DEVICE_PATHS[provider]}?action=deviceLogin",
                                       body)
            except CliError as exc:
                if exc.code == EXIT_UNREACHABLE or exc.status == HTTP_UNAVAILABLE:
                    if not warned:  # a blip: keep polling until the code expires
                        say(f"still waiting ({exc.message})")
                        warned = True
                    continue
                raise _device_refused(exc, server, provider) from exc
            if isinstance(answer, dict) and answer.get("pending"):
                interval_s = max(DEVICE_POLL_MIN_INTERVAL_S,
                                 float(answer.get("interval") or interval_s))
                continue
            if not isinstance(answer, dict) or not answer.get("token"):
                raise CliError(f"{server} answered the device login without a token",
                               EXIT_SERVER_ERROR)
            return str(answer["token"])
    except KeyboardInterrupt:
        raise CliError("device login stopped; nothing was saved", EXIT_INTERRUPTED) from None


@click.command()
@click.argument("url")
@click.option("--provider", type=click.Choice(LOGIN_PROVIDERS, case_sensitive=False),
              default="local", show_default=True,
              help="local user; openldap or activedirectory (directory username and password); "
              "github or oidc (device flow: enter a code at GitHub or at the OpenID Connect "
              "issuer, which must offer RFC 8628 device logins)")
@click.option("-u", "--username", help="user to log in as (prompted if not given)")
@click.option("-p", "--password", envvar="RANCHER_PASSWORD",
              help="the password (prompted, hidden, if not given; or $RANCHER_PASSWORD)")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@click.option("-t", "--token", envvar="RANCHER_TOKEN",
              help="log in with an API token (token-xxxxx:secret) instead of a password")
@click.option("--ca-checksum", help="trust the server's CA only if its SHA-256 is this "
              "(the ca_checksum the server printed at start, as the agents check it)")
@click.option("--cacert", type=click.Path(exists=True, dir_okay=False),
              help="trust this CA file for the server")
@pass_state
def login(state: State, url: str, provider: str, username: str | None, password: str | None,
          password_stdin: bool, token: str | None, ca_checksum: str | None,
          cacert: str | None) -> None:
    """Log in to the server at URL and save the credentials (0600) for the other commands."""
    provider = provider.lower()
    if provider in DEVICE_LOGIN_PROVIDERS and (username or password_stdin):
        raise CliError(f"--provider {provider} logs in at {provider} (a code to enter there): "
                       "no username or password here", EXIT_USAGE)
    if token and (provider != "local" or password_stdin):
        raise CliError("--token logs in with an API token: no --provider or --password-stdin "
                       "with it", EXIT_USAGE)
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
        if provider in DEVICE_LOGIN_PROVIDERS:
            api.token = _device_login(api, server, provider)
        else:
            api.token = _password_login(api, server, provider, username, password,
                                        password_stdin)
        user = me(api)
    saved = config.Login(server=server, token=api.token, token_id=api.token.split(":")[0],
                         username=str(user.get("username", "")), user_id=str(user.get("id", "")),
                         ca_pem=ca_pem)
    path = config.save(saved)
    name = user.get("name")
    shown = f"{name} ({saved.username})" if name and name != saved.username else saved.username
    say(f"Logged in to {server} as {shown}; credentials saved in {path}")


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
