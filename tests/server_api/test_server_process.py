"""The real server process on loopback over HTTPS: bootstrap admin, durability across kill -9,
no secret in the database, the CLI's user/binding commands seen by the running server at once,
and the kubeconfig command."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.procs import ServerProc

HTTP_TIMEOUT_S = 10
CLI_TIMEOUT_S = 60
USER_PASSWORD = "bob-password-12345"
LOGIN = "/v3-public/localProviders/local?action=login"


class Client:
    def __init__(self, server: ServerProc) -> None:
        self.base = server.url
        self.ctx = ssl.create_default_context(cafile=str(server.ca_path))

    def call(self, method: str, path: str, token: str | None = None,
             body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=HTTP_TIMEOUT_S) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def login(self, username: str, password: str) -> str:
        status, body = self.call("POST", LOGIN, body={"username": username, "password": password})
        assert status == 201, body
        return str(body["token"])


def cli(server: ServerProc, *args: str, stdin: str = "", check: bool = True) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "rancher_server", "--data-dir", str(server.data_dir), *args],
        input=stdin, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False,
    )
    if check:
        assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip().startswith(("{", "[")) else out


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProc]:
    monkeypatch.delenv("CATTLE_BOOTSTRAP_PASSWORD", raising=False)  # generated, shown once
    srv = ServerProc(data_dir=tmp_path / "data", log_path=tmp_path / "server.log")
    try:
        yield srv.start()
    finally:
        srv.stop()


def _db_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("rancher.db*"))


@pytest.mark.slow
def test_bootstrap_restart_and_no_secrets_in_db(server: ServerProc, tmp_path: Path) -> None:
    admin_password = server.info["bootstrap_password"]
    assert server.info["bootstrap_user"] == "admin" and len(admin_password) >= 16
    assert admin_password not in (tmp_path / "server.log").read_text()  # shown once, not logged
    c = Client(server)
    admin = c.login("admin", admin_password)
    status, bob = c.call("POST", "/v3/users", admin, {"username": "bob",
                                                       "password": USER_PASSWORD})
    assert status == 201
    status, cluster = c.call("POST", "/v3/clusters", admin, {"name": "prod"})
    assert status == 201
    status, _ = c.call("POST", "/v3/clusterroletemplatebindings", admin, {
        "clusterId": cluster["id"], "userId": bob["id"], "roleTemplateId": "cluster-member"})
    assert status == 201
    status, api_token = c.call("POST", "/v3/tokens", admin, {"description": "ci"})
    assert status == 201
    bob_token = c.login("bob", USER_PASSWORD)

    server.kill9()  # every write above was acknowledged: none may be lost
    raw = _db_bytes(server.data_dir)
    log_text = (tmp_path / "server.log").read_bytes()
    assert b'"login"' in log_text  # logins are logged ...
    for secret in (admin_password, USER_PASSWORD, admin.split(":")[1],
                   api_token["token"].split(":")[1], bob_token.split(":")[1],
                   cluster["registrationToken"]):
        assert secret.encode() not in raw
        assert secret.encode() not in log_text  # ... without secrets

    server.start()
    assert "bootstrap_password" not in server.info
    c = Client(server)
    status, clusters = c.call("GET", "/v3/clusters", bob_token)
    assert status == 200 and [x["id"] for x in clusters["data"]] == [cluster["id"]]
    assert clusters["data"][0]["state"] == "pending"
    assert c.call("GET", "/v3/users?me=true", api_token["token"])[0] == 200
    assert c.login("admin", admin_password)
    status, log = c.call("GET", "/v3/auditlogs?limit=1000", admin)
    assert status == 200 and sum(e["action"] == "login" for e in log["data"]) >= 3


@pytest.mark.slow
def test_cli_changes_apply_to_the_running_server(server: ServerProc) -> None:
    created = cli(server, "user", "create", "bob", "--group", "devs", "--password-stdin",
                  stdin=USER_PASSWORD + "\n")
    assert created["username"] == "bob" and "password" not in created
    assert "password_hash" not in created
    generated = cli(server, "user", "create", "carol")
    assert len(generated["password"]) >= 16
    c = Client(server)
    bob = c.login("bob", USER_PASSWORD)
    assert c.login("carol", generated["password"])
    cluster = server.create_cluster("edge")
    assert c.call("GET", "/v3/clusters", bob)[1]["data"] == []
    binding = cli(server, "binding", "create", "--cluster", cluster["id"], "--group", "devs",
                  "--role", "read-only")
    assert binding["subject"] == "devs"
    assert [x["id"] for x in c.call("GET", "/v3/clusters", bob)[1]["data"]] == [cluster["id"]]
    listed = cli(server, "user", "list")
    assert {u["username"] for u in listed} == {"admin", "bob", "carol"}
    assert all("password_hash" not in u for u in listed)
    cli(server, "user", "disable", "bob")  # another process: the server has no cache to go stale
    assert c.call("GET", "/v3/clusters", bob)[0] == 401
    cli(server, "user", "enable", "bob")
    cli(server, "user", "passwd", "bob", "--password-stdin", stdin="a-new-password-99\n")
    assert c.login("bob", "a-new-password-99")
    tokens = cli(server, "token", "list", "--user", "bob")
    assert tokens and all("secret_hash" not in t for t in tokens)
    cli(server, "token", "revoke", bob.split(":")[0])
    assert c.call("GET", "/v3/clusters", bob)[0] == 401
    bad = cli(server, "user", "create", "eve", "--group", "system:masters", check=False)
    assert bad.returncode == 1 and "system:" in bad.stderr


@pytest.mark.slow
def test_kubeconfig_command_writes_a_kubeconfig_for_kubectl(server: ServerProc,
                                                            tmp_path: Path) -> None:
    cli(server, "user", "create", "bob", "--password-stdin", stdin=USER_PASSWORD + "\n")
    cluster = server.create_cluster("prod")
    cli(server, "binding", "create", "--cluster", cluster["id"], "--user", "bob", "--role",
        "cluster-owner")
    out = tmp_path / "kubeconfig"
    cli(server, "kubeconfig", "--server", server.url, "--username", "bob", "--password-stdin",
        "-o", str(out), stdin=USER_PASSWORD + "\n")
    assert out.stat().st_mode & 0o777 == 0o600
    view = subprocess.run(["kubectl", "config", "view", "--raw", "-o", "json", "--kubeconfig",
                           str(out)], check=True, capture_output=True, text=True, timeout=30)
    doc = json.loads(view.stdout)
    assert doc["current-context"] == "prod"
    # The server's configured URL (its certificate's first name), not the address we dialled.
    want = f"{server.info['url']}/k8s/clusters/{cluster['id']}"
    assert doc["clusters"][0]["cluster"]["server"] == want
    token = doc["users"][0]["user"]["token"]
    c = Client(server)
    status, tokens = c.call("GET", "/v3/tokens", token)
    assert status == 200
    # The command's own login token was logged out; the kubeconfig's token remains.
    assert [t["description"] for t in tokens["data"]] == ["kubeconfig"]
    one = tmp_path / "one"
    cli(server, "kubeconfig", "--server", server.url, "--token", token, "--cluster",
        cluster["id"], "-o", str(one))
    assert yaml.safe_load(one.read_text())["contexts"][0]["name"] == "prod"
    wrong = cli(server, "kubeconfig", "--server", server.url, "--username", "bob",
                "--password-stdin", stdin="wrong-password\n", check=False)
    assert wrong.returncode == 1 and "401" in wrong.stderr


@pytest.mark.slow
def test_bootstrap_password_from_environment(tmp_path: Path) -> None:
    srv = ServerProc(data_dir=tmp_path / "data", log_path=tmp_path / "server.log",
                     env={"CATTLE_BOOTSTRAP_PASSWORD": "from-the-environment"})
    try:
        srv.start()
        assert "bootstrap_password" not in srv.info
        assert Client(srv).login("admin", "from-the-environment")
    finally:
        srv.stop()
