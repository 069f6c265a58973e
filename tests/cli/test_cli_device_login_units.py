"""The CLI's GitHub device-flow polling, in process with a fake clock and a scripted server:
it waits the server's interval before each poll (and a longer one when the server asks), stops
when the code expires (exit 6) without polling past it, rides out a blip, and names a refusal.
The flow against a real server and the fake GitHub is in ``test_cli_auth_providers.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import rancher_cli.app  # noqa: F401  # first, as the entry point: it registers the commands
from rancher_cli import cmd_login
from rancher_cli.cmd_auth import settings_body
from rancher_cli.constants import EXIT_AUTH, EXIT_TIMEOUT, EXIT_UNREACHABLE, EXIT_USAGE
from rancher_cli.errors import CliError

START = {"deviceHandle": "h1", "userCode": "AB12", "verificationUri": "https://gh/login/device",
         "interval": 5, "expiresIn": 30}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


class Server:
    """Answers deviceCode with START, then each deviceLogin with the next scripted answer."""

    def __init__(self, clock: Clock, answers: list[Any]) -> None:
        self.clock, self.answers = clock, iter(answers)
        self.polled_at: list[float] = []

    def call(self, method: str, path: str, body: Any = None) -> Any:
        if "deviceCode" in path:
            return dict(START)
        self.polled_at.append(self.clock.now)
        answer = next(self.answers)
        if isinstance(answer, CliError):
            raise answer
        return answer


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock()
    monkeypatch.setattr(cmd_login.time, "monotonic", c.monotonic)
    monkeypatch.setattr(cmd_login.time, "sleep", c.sleep)
    yield c


def login(server: Server) -> str:
    return cmd_login._device_login(server, "https://srv", "github")  # type: ignore[arg-type]


def test_polls_at_the_servers_interval_and_slows_down_when_told(clock: Clock) -> None:
    pending = {"pending": True, "interval": 5}
    server = Server(clock, [pending, {"pending": True, "interval": 10}, {"token": "token-a:b"}])
    assert login(server) == "token-a:b"
    assert clock.sleeps == [5, 5, 10]  # before the first poll too (RFC 8628 3.5)


def test_expiry_stops_with_6_without_polling_past_it(clock: Clock) -> None:
    start = clock.now
    server = Server(clock, [{"pending": True, "interval": 5}] * 20)
    with pytest.raises(CliError) as e:
        login(server)
    assert e.value.code == EXIT_TIMEOUT and "expired" in e.value.message
    assert server.polled_at and max(server.polled_at) < start + START["expiresIn"]


def test_a_blip_is_ridden_out_a_refusal_is_named(clock: Clock) -> None:
    blip = CliError("cannot reach the server", EXIT_UNREACHABLE)
    unavailable = CliError("unreachable (HTTP 503)", 1, 503, "the provider is unreachable")
    server = Server(clock, [blip, unavailable, {"token": "token-a:b"}])
    assert login(server) == "token-a:b"
    refused = CliError("refused", EXIT_AUTH, 401, "login refused (token): access_denied")
    with pytest.raises(CliError) as e:
        login(Server(clock, [refused]))
    assert e.value.code == EXIT_AUTH and "access_denied" in e.value.message
    gone = CliError("gone", 1, 400, "login refused: unknown or expired device login")
    with pytest.raises(CliError) as e:
        login(Server(clock, [gone]))
    assert e.value.code == EXIT_AUTH and "no longer knows" in e.value.message


CURRENT = {"type": "openldapConfig", "id": "openldap", "enabled": False, "servers": [],
           "port": 0, "serviceAccountPassword": "", "passwordSet": False,
           "refreshIntervalS": 300, "userSearchBase": ""}


def test_set_values_take_the_settings_types_and_secrets_stay_off_the_command_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    body = settings_body("openldap", CURRENT, None, (
        "enabled=yes", "servers=a.example, b.example", "port=636", "userSearchBase=ou=p,dc=x"),
        (), (), ())
    assert body == {"enabled": True, "servers": ["a.example", "b.example"], "port": 636,
                    "userSearchBase": "ou=p,dc=x"}  # a value may hold '='
    monkeypatch.setenv("BIND_PW", "s3cret")
    body = settings_body("openldap", CURRENT, None, (), (), (),
                         ("serviceAccountPassword=BIND_PW",))
    assert body == {"serviceAccountPassword": "s3cret"}
    for pairs, needle in ((("serviceAccountPassword=x",), "--secret-from-file"),
                          (("port=x",), "is a number"), (("enabled=maybe",), "true or false"),
                          (("passwordSet=true",), "no setting"), (("nokey",), "KEY=VALUE")):
        with pytest.raises(CliError) as e:
            settings_body("openldap", CURRENT, None, pairs, (), (), ())
        assert e.value.code == EXIT_USAGE and needle in e.value.message, e.value.message
