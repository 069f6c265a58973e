"""``rancher auth-provider`` and ``rancher login --provider`` against a real server, a real slapd
(``tests/auth_providers/slapd.py``) and the fake GitHub (``tests/auth_providers/fake_oauth.py``):
configure OpenLDAP from a file with the bind password from a file, test it (and a wrong bind
password, named), enable it, log in as a directory user, bind her directory group to a project;
configure Active Directory setting by setting, log in as an AD user, a disabled one refused;
configure GitHub with its secret from the environment and log in through the device flow (and
stop one with Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from tests.auth_providers.fake_oauth import CLIENT_SECRET
from tests.auth_providers.slapd import (
    AD_BASE,
    AD_SVC,
    OL_BASE,
    SVC_PW,
    USER_PW,
    Slapd,
    slapd_binary,
)
from tests.auth_providers.test_directory_e2e import DEVS, ol_config
from tests.auth_providers.test_oauth_e2e import Fake, github_config, oidc_config
from tests.procs import ServerProc

from .conftest import CLI_TIMEOUT_S, Cli, one_error_line

pytestmark = pytest.mark.timeout(90)

ALICE = f"openldap_user://uid=alice,ou=people,{OL_BASE}"
BOB_GITHUB = "github_user://1002"  # the fake's bob
ALICE_OIDC = "oidc_user://sub-alice"
LONG_REFRESH_S = 300  # no periodic refresh while the test runs
CODE_LINE_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def ldap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    if slapd_binary() is None:
        pytest.skip("slapd is not installed (scripts/test.sh installs slapd and ldap-utils)")
    s = Slapd(tmp_path_factory.mktemp("slapd")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.auth_providers.fake_oauth"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield Fake(proc, f"http://127.0.0.1:{port}")
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


def test_openldap_configured_tested_enabled_and_logged_in_through_the_cli(
        admin: Cli, cli: Cli, server: ServerProc, ldap: Slapd, tmp_path: Path) -> None:
    settings = ol_config(ldap, enabled=False, refreshIntervalS=LONG_REFRESH_S)
    del settings["serviceAccountPassword"]  # from its own file, not the settings file
    (tmp_path / "openldap.yaml").write_text(yaml.safe_dump(settings))
    (tmp_path / "bind-password").write_text(SVC_PW + "\n")
    out = admin("auth-provider", "set", "openldap", "--from-file", str(tmp_path / "openldap.yaml"),
                "--secret-from-file", f"serviceAccountPassword={tmp_path / 'bind-password'}",
                "-o", "json")
    assert out.returncode == 0, out.stderr
    saved = json.loads(out.stdout)
    assert saved["passwordSet"] is True and saved["serviceAccountPassword"] == ""
    assert saved["certificate"] == ldap.ca_pem and saved["enabled"] is False
    assert SVC_PW not in out.stdout + out.stderr

    # A secret on the command line is refused (ps shows it); unknown settings are named.
    out = admin("auth-provider", "set", "openldap", "--set", "serviceAccountPassword=x")
    assert out.returncode == 2 and "--secret-from-file" in one_error_line(out)
    out = admin("auth-provider", "set", "openldap", "--set", "userSearchbase=x")
    assert out.returncode == 2 and "no setting 'userSearchbase'" in one_error_line(out)

    # The test: every step, with a login; then a wrong bind password (not saved) names bind.
    out = admin("auth-provider", "test", "openldap", "-u", "alice", "--password-stdin",
                input=USER_PW + "\n")
    assert out.returncode == 0, out.stderr
    stages = [line.split()[0] for line in out.stdout.splitlines()[2:] if line.strip()]
    assert stages[-3:] == ["search", "group", "login"] and "bind" in stages, out.stdout
    out = admin("auth-provider", "test", "openldap", "--secret-from-env",
                "serviceAccountPassword=WRONG_BIND", env={"WRONG_BIND": "not-the-password"})
    assert out.returncode == 1
    assert "failed at bind" in one_error_line(out)
    assert "FAILED" in next(line for line in out.stdout.splitlines() if "bind" in line)
    assert admin.json("auth-provider", "show", "openldap")["passwordSet"] is True

    # Disabled: no directory login yet; enabled: alice logs in, whoami is her principal.
    login = ["login", server.url, "--ca-checksum", server.ca_checksum, "--provider", "openldap",
             "-u", "alice", "--password-stdin"]
    out = cli(*login, input=USER_PW + "\n")
    assert out.returncode == 1 and "auth-provider enable openldap" in one_error_line(out)
    admin.ok("auth-provider", "enable", "openldap")
    listed = {p["id"]: p for p in admin.json("auth-provider", "list")}
    assert list(listed) == ["openldap", "activedirectory", "github", "oidc"]
    assert listed["openldap"]["enabled"] is True and listed["activedirectory"]["enabled"] is False
    out = cli(*login, input="not-her-password\n")
    assert out.returncode == 3 and "wrong username or password" in one_error_line(out)
    out = cli(*login, input=USER_PW + "\n")
    assert out.returncode == 0, out.stderr
    assert ALICE in out.stderr
    me = cli.json("whoami")
    assert me["username"] == ALICE and me["admin"] is False

    # A directory group bound to a project from the CLI: alice sees it through her group.
    cid = admin.json("clusters", "create", "ldap-shop")["id"]
    project = admin.json("projects", "create", "ldap-web", "--cluster", cid)
    assert project["id"] not in {p["id"] for p in cli.json("projects")}
    binding = admin.json("bindings", "create", "--project", project["id"], "--group", DEVS,
                         "--role", "project-member")
    assert binding["groupPrincipalId"] == DEVS
    assert project["id"] in {p["id"] for p in cli.json("projects")}

    report = admin.json("auth-provider", "refresh", "openldap")
    assert report["provider"] == "openldap" and report["users"] >= 1 and not report["error"]
    table = admin.ok("auth-provider", "show", "openldap")
    assert "passwordSet" in table and "PEM, 1 certificate" in table
    # What `show -o yaml` prints, `set --from-file` takes back (read-only fields skipped).
    (tmp_path / "shown.yaml").write_text(admin.ok("auth-provider", "show", "openldap",
                                                  "-o", "yaml"))
    out = admin("auth-provider", "set", "openldap", "-f", str(tmp_path / "shown.yaml"))
    assert out.returncode == 0 and "nothing changed" in out.stderr, out.stderr
    admin.ok("auth-provider", "disable", "openldap")


def test_active_directory_configured_with_set_options_and_logged_in(
        admin: Cli, cli: Cli, server: ServerProc, ldap: Slapd, tmp_path: Path) -> None:
    """Setting by setting (--set, --set-file for the CA), the AD-style tree of the same slapd."""
    (tmp_path / "ca.pem").write_text(ldap.ca_pem)
    (tmp_path / "bind-password").write_text(SVC_PW)
    admin.ok("auth-provider", "set", "activedirectory", "--set", "servers=127.0.0.1",
             "--set", f"port={ldap.tls_port}", "--set-file", f"certificate={tmp_path / 'ca.pem'}",
             "--set", f"serviceAccountDistinguishedName={AD_SVC}",
             "--secret-from-file", f"serviceAccountPassword={tmp_path / 'bind-password'}",
             "--set", f"userSearchBase=ou=Users,{AD_BASE}",
             "--set", f"groupSearchBase=ou=Groups,{AD_BASE}",
             "--set", "groupObjectClass=groupOfNames", "--set", "userNameAttribute=cn",
             "--set", f"refreshIntervalS={LONG_REFRESH_S}", "--set", "enabled=true")
    login = ["login", server.url, "--ca-checksum", server.ca_checksum, "--provider",
             "activedirectory", "--password-stdin", "-u"]
    out = cli(*login, "ben", input=USER_PW + "\n")  # userAccountControl 514: disabled
    assert out.returncode == 3 and "wrong username or password" in one_error_line(out)
    out = cli(*login, "ann@corp.example", input=USER_PW + "\n")
    assert out.returncode == 0, out.stderr
    assert cli.json("whoami")["username"] == f"activedirectory_user://cn=Ann Lee,ou=Users,{AD_BASE}"
    admin.ok("auth-provider", "disable", "activedirectory")


def _popen(cli: Cli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rancher_cli", *args], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "XDG_CONFIG_HOME": str(cli.home)})


def _user_code(proc: subprocess.Popen[str]) -> str:
    """The code the CLI asks the user to enter (its first line on stderr)."""
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "enter the code" in line, line
    return line.split("enter the code ")[1].split()[0]


def _device_login(cli: Cli, server: ServerProc, fake: Fake, provider: str,
                  user: str) -> tuple[int, str, str]:
    """``rancher login --provider <provider>`` with ``user`` entering the code it shows at the
    fake provider: (exit code, the code, stderr)."""
    proc = _popen(cli, "login", server.url, "--ca-checksum", server.ca_checksum,
                  "--provider", provider)
    try:
        code = _user_code(proc)
        requests.post(fake.url + "/test/login_as", json={"user": user}, timeout=10)
        requests.post(fake.url + "/login/device", json={"user_code": code}, timeout=10)
        _, err = proc.communicate(timeout=CLI_TIMEOUT_S)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, code, err


def test_github_device_login_through_the_cli(admin: Cli, cli: Cli, server: ServerProc,
                                            fake: Fake, tmp_path: Path) -> None:
    settings = github_config(fake, refreshIntervalS=LONG_REFRESH_S)
    del settings["clientSecret"]
    (tmp_path / "github.json").write_text(json.dumps(settings))
    out = admin("auth-provider", "set", "github", "-f", str(tmp_path / "github.json"),
                "--secret-from-env", "clientSecret=GH_SECRET", env={"GH_SECRET": CLIENT_SECRET})
    assert out.returncode == 0, out.stderr
    assert CLIENT_SECRET not in out.stdout + out.stderr
    out = admin("auth-provider", "test", "github")
    assert out.returncode == 0, out.stderr
    assert {"api", "client"} <= {line.split()[0] for line in out.stdout.splitlines() if line}

    rc, _, err = _device_login(cli, server, fake, "github", "bob")
    assert rc == 0, err
    assert cli.json("whoami")["username"] == BOB_GITHUB

    # Ctrl-C while waiting: stops at once, one line, 130, nothing saved.
    other = Cli(tmp_path / "interrupted")
    proc = _popen(other, "login", server.url, "--ca-checksum", server.ca_checksum,
                  "--provider", "github")
    try:
        _user_code(proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=CLI_TIMEOUT_S)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: device login stopped; nothing was saved"
    assert not other.config_file.exists()
    admin.ok("auth-provider", "disable", "github")


def test_oidc_device_login_through_the_cli(admin: Cli, cli: Cli, server: ServerProc,
                                          fake: Fake, tmp_path: Path) -> None:
    """``rancher login --provider oidc``: the issuer's device flow (RFC 8628); the user is the
    ID token's subject with the groups of its claim."""
    settings = oidc_config(fake, refreshIntervalS=LONG_REFRESH_S)
    del settings["clientSecret"]
    (tmp_path / "oidc.json").write_text(json.dumps(settings))
    out = admin("auth-provider", "set", "oidc", "-f", str(tmp_path / "oidc.json"),
                "--secret-from-env", "clientSecret=OIDC_SECRET",
                env={"OIDC_SECRET": CLIENT_SECRET})
    assert out.returncode == 0, out.stderr
    rc, code, err = _device_login(cli, server, fake, "oidc", "alice")
    assert rc == 0, err
    assert f"user_code={code}" in err  # the link that carries the code, when the issuer gives one
    assert cli.json("whoami")["username"] == ALICE_OIDC
    admin.ok("auth-provider", "disable", "oidc")
    out = cli("login", server.url, "--ca-checksum", server.ca_checksum, "--provider", "oidc")
    assert out.returncode != 0
    assert one_error_line(out) == (f"error: {server.url} does not take oidc logins (the provider "
                                   "is not enabled): ask an administrator to run `rancher "
                                   "auth-provider enable oidc`")


class SlowDownGitHub(BaseHTTPRequestHandler):
    """A GitHub whose token endpoint answers every device poll with slow_down (RFC 8628 3.5)."""

    INTERVAL_S = 1

    def do_POST(self) -> None:  # http.server's name for it
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/login/device/code":
            body = {"device_code": "dc-1", "user_code": "SLOW-0001", "expires_in": 60,
                    "interval": self.INTERVAL_S, "verification_uri": "http://gh/login/device"}
        else:
            body = {"error": "slow_down", "interval": self.INTERVAL_S + 5}
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


def test_github_slow_down_lengthens_the_interval_the_cli_is_given(
        admin: Cli, server: ServerProc) -> None:
    """The CLI polls at the interval the server gives it; the server must grow that interval
    by 5 s at each slow_down (else GitHub keeps answering slow_down and the login never ends)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SlowDownGitHub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        out = admin("auth-provider", "set", "github", "--set",
                    f"hostname=127.0.0.1:{httpd.server_address[1]}", "--set", "tlsEnabled=false",
                    "--set", "clientId=slow", "--secret-from-env", "clientSecret=SECRET",
                    "--set", "enabled=true", env={"SECRET": "slow-secret"})
        assert out.returncode == 0, out.stderr
        url, verify = server.url + "/v3-public/githubProviders/github", str(server.ca_path)
        start = requests.post(f"{url}?action=deviceCode", verify=verify, timeout=10).json()
        assert start["interval"] == SlowDownGitHub.INTERVAL_S
        intervals = []
        for _ in range(2):
            r = requests.post(f"{url}?action=deviceLogin", verify=verify, timeout=10,
                              json={"deviceHandle": start["deviceHandle"]})
            assert r.status_code == 202, r.text
            intervals.append(r.json()["interval"])
        assert intervals == [SlowDownGitHub.INTERVAL_S + 5, SlowDownGitHub.INTERVAL_S + 10]
    finally:
        httpd.shutdown()
        httpd.server_close()
        admin.ok("auth-provider", "disable", "github")
