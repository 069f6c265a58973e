"""``rancher login`` and every way it goes wrong, each with its exit code and one line."""

from __future__ import annotations

import json
import stat
import time

import pytest

from tests.procs import ServerProc, free_port

from .conftest import ADMIN_PASSWORD, Cli, one_error_line

pytestmark = pytest.mark.timeout(90)


def test_login_pins_the_ca_and_saves_credentials_0600(cli: Cli, server: ServerProc) -> None:
    out = cli("login", server.url, "--ca-checksum", server.ca_checksum, "-u", "admin",
              input=f"{ADMIN_PASSWORD}\n")  # the password from the (hidden) prompt
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(cli.config_file.stat().st_mode) == 0o600
    saved = json.loads(cli.config_file.read_text())
    assert saved["server"] == server.url and "BEGIN CERTIFICATE" in saved["ca_pem"]
    assert ADMIN_PASSWORD not in cli.config_file.read_text()
    me = cli.json("whoami")
    assert me["username"] == "admin" and me["admin"] is True
    # or with the CA file
    other = Cli(cli.home.parent / "cacert")
    other.ok("login", server.url, "--cacert", str(server.ca_path), "-u", "admin", "-p",
             ADMIN_PASSWORD)
    assert other.json("whoami")["username"] == "admin"


def test_untrusted_or_mismatched_ca_is_refused_with_5(cli: Cli, server: ServerProc) -> None:
    out = cli("login", server.url, "-u", "admin", "-p", ADMIN_PASSWORD)
    assert out.returncode == 5
    assert server.ca_checksum in one_error_line(out)  # says which checksum to check and pass
    out = cli("login", server.url, "--ca-checksum", "0" * 64, "-u", "admin", "-p", "x")
    assert out.returncode == 5 and "refusing to trust" in one_error_line(out)
    assert not cli.config_file.exists()


def test_usage_mistakes_exit_2(cli: Cli, server: ServerProc) -> None:
    out = cli("login", server.url.replace("https://", "http://"))
    assert out.returncode == 2 and "HTTPS" in one_error_line(out)
    assert cli("clusters", "ls", "-o", "xml").returncode == 2
    assert cli("no-such-command").returncode == 2


def test_wrong_password_exits_3(cli: Cli, server: ServerProc) -> None:
    out = cli("login", server.url, "--ca-checksum", server.ca_checksum, "-u", "admin",
              "-p", "wrong-password")
    assert out.returncode == 3 and "wrong username or password" in one_error_line(out)


def test_not_logged_in_exits_3(cli: Cli) -> None:
    out = cli("clusters")
    assert out.returncode == 3 and "rancher login" in one_error_line(out)


def test_revoked_and_expired_tokens_exit_3(admin: Cli, cli: Cli, server: ServerProc) -> None:
    token = admin.json("tokens", "create", "--description", "for-cli")
    cli.ok("login", server.url, "--ca-checksum", server.ca_checksum, "--token", token["token"])
    assert cli.json("whoami")["username"] == "admin"
    admin.ok("tokens", "delete", token["id"])
    out = cli("clusters")
    assert out.returncode == 3 and "expired or was revoked" in one_error_line(out)
    short = admin.json("tokens", "create", "--ttl", "1")
    cli.ok("login", server.url, "--ca-checksum", server.ca_checksum, "--token", short["token"])
    time.sleep(1.2)
    out = cli("whoami")
    assert out.returncode == 3 and "rancher login" in one_error_line(out)
    out = cli("login", server.url, "--ca-checksum", server.ca_checksum, "--token",
              short["token"])
    assert out.returncode == 3 and "refused this token" in one_error_line(out)


def test_server_down_exits_4_and_debug_shows_the_traceback(admin: Cli) -> None:
    saved = json.loads(admin.config_file.read_text())
    saved["server"] = f"https://127.0.0.1:{free_port()}"
    admin.config_file.write_text(json.dumps(saved))
    out = admin("clusters")
    assert out.returncode == 4 and "cannot reach the server" in one_error_line(out)
    out = admin("--debug", "clusters")
    assert out.returncode == 4 and "Traceback" in out.stderr


def test_logout_revokes_the_token(admin: Cli) -> None:
    token_id = json.loads(admin.config_file.read_text())["token_id"]
    assert any(t["id"] == token_id and t["current"] for t in admin.json("tokens"))
    admin.ok("logout")
    assert not admin.config_file.exists()
    assert admin("whoami").returncode == 3
