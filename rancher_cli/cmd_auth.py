"""``rancher auth-provider``: configure, enable, test and refresh the server's login providers
(OpenLDAP, Active Directory, GitHub, OpenID Connect) over ``/v3/authconfigs/<provider>``.

Secrets (the LDAP bind password, the OAuth client secret) are write-only in the API; here they come
from a file or an environment variable, never from ``--set`` (a command line is visible in ps)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from rancher_cli.app import State, output_option, pass_state
from rancher_cli.client import Api
from rancher_cli.cmd_login import read_password_stdin
from rancher_cli.constants import (
    AUTH_PROVIDERS,
    AUTHCONFIGS_PATH,
    DIRECTORY_PROVIDERS,
    EXIT_SERVER_ERROR,
    EXIT_USAGE,
    READ_ONLY_FIELDS,
    SECRET_FIELDS,
)
from rancher_cli.errors import CliError
from rancher_cli.output import ago, emit, field, say

F = TypeVar("F", bound=Callable[..., Any])
HTTP_UNPROCESSABLE = 422
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
PROVIDER = click.Choice(AUTH_PROVIDERS, case_sensitive=False)
SETTING_COLUMNS = [("SETTING", field("setting")), ("VALUE", field("value"))]
STEP_COLUMNS = [("STAGE", field("stage")),
                ("RESULT", lambda s: "ok" if s.get("ok") else "FAILED"),
                ("MESSAGE", field("message"))]
REFRESH_COLUMNS = [("PROVIDER", field("provider")), ("USERS", field("users")),
                   ("CHANGED", field("changed")), ("DISABLED", field("disabled")),
                   ("DURATION", lambda r: f"{r.get('durationS', 0)} s")]


def _path(provider: str) -> str:
    return f"{AUTHCONFIGS_PATH}/{provider}"


def _endpoint(item: dict[str, Any]) -> str:
    """Where the provider is: LDAP servers and port, GitHub's API, the OIDC issuer."""
    if item.get("servers") is not None:
        servers = ", ".join(str(s) for s in item.get("servers") or [])
        return f"{servers}:{item.get('effectivePort')} ({item.get('tls')})" if servers else ""
    return str(item.get("apiUrl") or item.get("issuer") or "")


def _secret_set(item: dict[str, Any]) -> Any:
    return item.get("passwordSet", item.get("secretSet"))


def _last_refresh(item: dict[str, Any]) -> str:
    report = item.get("lastRefresh")
    if not isinstance(report, dict):
        return "-"
    if report.get("error"):
        return f"failed at {report.get('stage')}: {report.get('error')}"
    when = report.get("startedAt")
    at = ago(_iso(when)) if isinstance(when, int | float) and when > 0 else "-"
    return (f"{at}: {report.get('users', 0)} users, {report.get('changed', 0)} changed, "
            f"{report.get('disabled', 0)} disabled")


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat()


PROVIDER_COLUMNS = [("PROVIDER", field("id")), ("ENABLED", field("enabled")),
                    ("ENDPOINT", _endpoint), ("SECRET SET", _secret_set),
                    ("LAST REFRESH", _last_refresh)]


def _show_value(name: str, value: Any) -> Any:
    if name == "certificate" and isinstance(value, str) and value:
        n = value.count("-----BEGIN CERTIFICATE-----")
        return f"PEM, {n} certificate{'s' if n != 1 else ''} ({len(value)} chars)"
    if name in SECRET_FIELDS:
        return "(write-only)"
    if name == "lastRefresh":
        return _last_refresh({"lastRefresh": value})
    return value


def _emit_config(item: dict[str, Any], output: str) -> None:
    if output != "table":
        emit(item, output)
        return
    rows = [{"setting": k, "value": _show_value(k, v)} for k, v in item.items()
            if k not in ("type", "id", "links", "actions")]
    emit(rows, output, SETTING_COLUMNS, title=f"{item.get('id')}")


def get_config(api: Api, provider: str) -> dict[str, Any]:
    out = api.call("GET", _path(provider))
    if not isinstance(out, dict):
        raise CliError(f"the server answered {provider}'s settings with {type(out).__name__}",
                       EXIT_SERVER_ERROR)
    return out


def _put(api: Api, provider: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        out = api.call("PUT", _path(provider), body)
    except CliError as exc:
        if exc.status == HTTP_UNPROCESSABLE:
            raise CliError(f"{provider}: {exc.detail or exc.message}: nothing was saved; fix "
                           f"it with `rancher auth-provider set {provider} ...`",
                           EXIT_SERVER_ERROR, exc.status, exc.detail) from exc
        raise
    return out if isinstance(out, dict) else {}


# -- values from the command line --------------------------------------------------------------
def _split_pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CliError(f"{option} {text!r}: expected KEY=VALUE", EXIT_USAGE)
    return key.strip(), value


def _coerce(key: str, text: str, current: Any) -> Any:
    """``text`` as the type the setting has now (a list: comma-separated; empty: none)."""
    if isinstance(current, bool):
        word = text.strip().lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise CliError(f"--set {key}={text}: {key} is true or false", EXIT_USAGE)
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise CliError(f"--set {key}={text}: {key} is a number", EXIT_USAGE) from None
    if isinstance(current, list):
        return [v.strip() for v in text.split(",") if v.strip()]
    return text


def _check_key(key: str, writable: set[str], provider: str, where: str) -> None:
    if key not in writable:
        raise CliError(
            f"{where}: {provider} has no setting {key!r} (settings: "
            f"{', '.join(sorted(writable))})", EXIT_USAGE)


def _secret_key(key: str, writable: set[str], provider: str, where: str) -> None:
    _check_key(key, writable, provider, where)
    if key not in SECRET_FIELDS:
        raise CliError(f"{where}: {key} is not a secret; use --set {key}=... or "
                       f"--set-file {key}=PATH", EXIT_USAGE)


def _read_file(path: str, where: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CliError(f"{where}: cannot read {path}: {exc.strerror or exc}", EXIT_USAGE) from exc


def _load_settings_file(path: str) -> dict[str, Any]:
    text = _read_file(path, "--from-file")
    is_json = path.endswith(".json")
    try:
        doc = json.loads(text) if is_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        why = " ".join(str(exc).split())  # one line
        raise CliError(f"--from-file {path}: not valid {'JSON' if is_json else 'YAML'}: {why}",
                       EXIT_USAGE) from exc
    if not isinstance(doc, dict):
        raise CliError(f"--from-file {path}: expected a mapping of settings (as "
                       "`rancher auth-provider show PROVIDER -o yaml` prints them)", EXIT_USAGE)
    return {str(k): v for k, v in doc.items()}


def settings_body(provider: str, current: dict[str, Any], from_file: str | None,
                  pairs: tuple[str, ...], files: tuple[str, ...], secret_files: tuple[str, ...],
                  secret_envs: tuple[str, ...]) -> dict[str, Any]:
    """The PUT body: the file's settings, then --set, --set-file and the secrets over them."""
    writable = {k for k in current if k not in READ_ONLY_FIELDS}
    body: dict[str, Any] = {}
    if from_file:
        for key, value in _load_settings_file(from_file).items():
            if key in READ_ONLY_FIELDS:
                continue  # what `show -o yaml` prints besides the settings
            _check_key(key, writable, provider, f"--from-file {from_file}")
            if key in SECRET_FIELDS and value in ("", None):
                continue  # as the API shows it: "" keeps the stored secret
            body[key] = value
    for text in pairs:
        key, value = _split_pair(text, "--set")
        _check_key(key, writable, provider, "--set")
        if key in SECRET_FIELDS:
            raise CliError(f"--set {key}=...: a secret on the command line is visible to every "
                           f"user of this machine; use --secret-from-file {key}=PATH or "
                           f"--secret-from-env {key}=VARIABLE", EXIT_USAGE)
        body[key] = _coerce(key, value, current.get(key))
    for text in files:
        key, path = _split_pair(text, "--set-file")
        _check_key(key, writable, provider, "--set-file")
        if key in SECRET_FIELDS:
            raise CliError(f"--set-file {key}: use --secret-from-file for a secret", EXIT_USAGE)
        body[key] = _coerce(key, _read_file(path, f"--set-file {key}"), current.get(key))
    for text in secret_files:
        key, path = _split_pair(text, "--secret-from-file")
        _secret_key(key, writable, provider, "--secret-from-file")
        secret = _read_file(path, f"--secret-from-file {key}").rstrip("\r\n")
        if not secret:
            raise CliError(f"--secret-from-file {key}: {path} is empty", EXIT_USAGE)
        body[key] = secret
    for text in secret_envs:
        key, var = _split_pair(text, "--secret-from-env")
        _secret_key(key, writable, provider, "--secret-from-env")
        secret = os.environ.get(var.strip(), "")
        if not secret:
            raise CliError(f"--secret-from-env {key}: ${var.strip()} is not set or empty",
                           EXIT_USAGE)
        body[key] = secret
    return body


def settings_options(fn: F) -> F:
    """Where settings come from (``set``, and ``test`` for settings not saved yet)."""
    for option in reversed((
        click.option("-f", "--from-file", type=click.Path(exists=True, dir_okay=False),
                     help="settings from a YAML or JSON file (a .json name is read as JSON)"),
        click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE",
                     help="one setting (repeatable); lists comma-separated, booleans "
                     "true/false"),
        click.option("--set-file", "files", multiple=True, metavar="KEY=PATH",
                     help="a setting from a file, e.g. certificate=ca.pem"),
        click.option("--secret-from-file", "secret_files", multiple=True, metavar="KEY=PATH",
                     help="a secret (serviceAccountPassword, clientSecret) from a file"),
        click.option("--secret-from-env", "secret_envs", multiple=True,
                     metavar="KEY=VARIABLE", help="a secret from an environment variable"),
    )):
        fn = option(fn)
    return fn


# -- commands ----------------------------------------------------------------------------------
@click.group("auth-provider", invoke_without_command=True)
@output_option
@click.pass_context
def auth_provider(ctx: click.Context, output: str) -> None:
    """Login providers (administrators): list (the default), show, set, enable, disable, test,
    refresh. Providers: openldap, activedirectory, github, oidc."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_providers, output=output)


@auth_provider.command("list")
@output_option
@pass_state
def list_providers(state: State, output: str = "table") -> None:
    """Every provider: enabled or not, where it is, whether its secret is set, its last
    refresh."""
    api = state.api()
    emit([get_config(api, p) for p in AUTH_PROVIDERS], output, PROVIDER_COLUMNS)


auth_provider.add_command(click.Command(  # `ls`, as the other groups have it
    "ls", callback=list_providers.callback, params=list_providers.params, hidden=True,
    help=list_providers.help))


@auth_provider.command("show")
@click.argument("provider", type=PROVIDER, metavar="PROVIDER")
@output_option
@pass_state
def show_provider(state: State, provider: str, output: str) -> None:
    """A provider's settings (secrets are never shown: passwordSet / secretSet say whether one
    is stored). `-o yaml` prints a file `set --from-file` takes back."""
    _emit_config(get_config(state.api(), provider), output)


@auth_provider.command("set")
@click.argument("provider", type=PROVIDER, metavar="PROVIDER")
@settings_options
@output_option
@pass_state
def set_provider(state: State, provider: str, from_file: str | None, pairs: tuple[str, ...],
                 files: tuple[str, ...], secret_files: tuple[str, ...],
                 secret_envs: tuple[str, ...], output: str) -> None:
    """Change a provider's settings: the ones given, over the stored ones (a secret not given
    keeps the stored one)."""
    api = state.api()
    current = get_config(api, provider)
    if not (from_file or pairs or files or secret_files or secret_envs):
        raise CliError("nothing to set: give --from-file, --set, --set-file or a secret",
                       EXIT_USAGE)
    given = settings_body(provider, current, from_file, pairs, files, secret_files, secret_envs)
    # Only what changes (a secret always: it cannot be compared), so that the audit log says
    # what this change was, also for a whole file as `show -o yaml` printed it.
    body = {k: v for k, v in given.items() if k in SECRET_FIELDS or current.get(k) != v}
    if not body:
        say(f"{provider}: nothing changed")
        _emit_config(current, output)
        return
    out = _put(api, provider, body)
    say(f"{provider}: {', '.join(sorted(body))} saved")
    _emit_config(out, output)


def _switch(state: State, provider: str, enabled: bool) -> None:
    _put(state.api(), provider, {"enabled": enabled})
    say(f"{provider} {'enabled' if enabled else 'disabled'}")


@auth_provider.command("enable")
@click.argument("provider", type=PROVIDER, metavar="PROVIDER")
@pass_state
def enable_provider(state: State, provider: str) -> None:
    """Turn a provider on (its users can log in; their groups are refreshed)."""
    _switch(state, provider, True)


@auth_provider.command("disable")
@click.argument("provider", type=PROVIDER, metavar="PROVIDER")
@pass_state
def disable_provider(state: State, provider: str) -> None:
    """Turn a provider off (its users lose access at the next refresh; settings are kept)."""
    _switch(state, provider, False)


@auth_provider.command("test")
@click.argument("provider", type=PROVIDER, metavar="PROVIDER")
@click.option("-u", "--username", help="also log in as this directory user (LDAP, AD)")
@click.option("--password-stdin", is_flag=True,
              help="read that user's password from stdin (else it is prompted, hidden)")
@settings_options
@output_option
@pass_state
def test_provider(state: State, provider: str, username: str | None, password_stdin: bool,
                  from_file: str | None, pairs: tuple[str, ...], files: tuple[str, ...],
                  secret_files: tuple[str, ...], secret_envs: tuple[str, ...],
                  output: str) -> None:
    """Test the stored settings step by step (LDAP: dns, connect, tls, bind, search, group
    lookup, login; GitHub: api, client; OIDC: discovery, jwks, client); exits 1 naming the
    step that failed. Settings given as to `set` are tested over the stored ones, not saved."""
    api = state.api()
    body: dict[str, Any] = {}
    if from_file or pairs or files or secret_files or secret_envs:
        body = settings_body(provider, get_config(api, provider), from_file, pairs, files,
                             secret_files, secret_envs)
    if username or password_stdin:
        if provider not in DIRECTORY_PROVIDERS:
            raise CliError(f"{provider}'s test has no login step: --username and "
                           "--password-stdin are for openldap and activedirectory", EXIT_USAGE)
        if not username:
            raise CliError("--password-stdin needs --username", EXIT_USAGE)
        password = (read_password_stdin() if password_stdin
                    else click.prompt(f"Password of {username}", hide_input=True))
        body.update(username=username, password=password)
    answer = api.call("POST", f"{_path(provider)}?action=testConnection", body)
    if not isinstance(answer, dict):
        raise CliError("the server's test answer is not an object", EXIT_SERVER_ERROR)
    steps = [s for s in answer.get("steps") or [] if isinstance(s, dict)]
    if output == "table":
        emit(steps, output, STEP_COLUMNS)
    else:
        emit(answer, output)
    if not answer.get("ok"):
        raise CliError(f"{provider}'s connection test failed at {answer.get('stage')}: "
                       f"{answer.get('message')}", EXIT_SERVER_ERROR)
    say(f"{provider}: every step succeeded")


@auth_provider.command("refresh")
@click.argument("provider", type=PROVIDER, metavar="PROVIDER")
@output_option
@pass_state
def refresh_provider(state: State, provider: str, output: str) -> None:
    """Refresh every user of the provider from it now (groups; users it removed or disabled
    lose access)."""
    report = state.api().call("POST", f"{_path(provider)}?action=refreshGroups", {})
    emit(report, output, REFRESH_COLUMNS)


COMMANDS = [auth_provider]
