"""Login throttling an attacker cannot turn against the victim (issue 11, item 4): a source that
guesses the admin's password is slowed down, then refused; the admin, from another address, logs
in at once. A password typed into the username field never reaches the log or the audit table."""

from __future__ import annotations

import http.client
import json
import sqlite3
import ssl
import time
from pathlib import Path
from typing import Any

from rancher_server.auth.constants import (
    LOGIN_SLOWDOWN_STEP_S,
    LOGIN_USER_FREE_FAILURES,
    LOGIN_USER_SLOWDOWN_AFTER_FAILURES,
)
from tests.procs import ServerProc, free_port, running

LOGIN_PATH = "/v3-public/localProviders/local?action=login"
ATTACKER = "127.0.0.2"
VICTIM = "127.0.0.1"


def login_from(
    server: ServerProc, source: str, username: str, password: str
) -> tuple[int, dict[str, Any], dict[str, str], float]:
    """(status, body, headers, seconds) of one login sent from ``source``."""
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    conn = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=ctx, timeout=30, source_address=(source, 0)
    )
    started = time.monotonic()
    try:
        conn.request("POST", LOGIN_PATH, json.dumps({"username": username, "password": password}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = json.loads(resp.read() or b"{}")
        return resp.status, body, dict(resp.getheaders()), time.monotonic() - started
    finally:
        conn.close()


def test_a_guessing_source_is_refused_not_the_account(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.start()
    password = server.info["bootstrap_password"]
    with running(server):
        durations = []
        for _ in range(LOGIN_USER_FREE_FAILURES):
            status, body, _, took = login_from(server, ATTACKER, "admin", "wrong-guess")
            assert status == 401 and body["code"] == "Unauthorized"
            durations.append(took)
        # Slowed down before it is refused: the last failures waited at least the steps.
        assert durations[-1] >= LOGIN_SLOWDOWN_STEP_S * (
            LOGIN_USER_FREE_FAILURES - LOGIN_USER_SLOWDOWN_AFTER_FAILURES)
        # Refused now, even with the right password, with a JSON body and Retry-After.
        status, body, headers, _ = login_from(server, ATTACKER, "admin", password)
        assert status == 429 and body["type"] == "error" and int(headers["Retry-After"]) >= 1
        # The victim, from another address, logs in at once.
        status, body, _, took = login_from(server, VICTIM, "admin", password)
        assert status == 201 and body["token"].startswith("token-"), body
        assert took < 2.0
        # The attacker is still refused (the victim's success did not reset the attacker).
        status, _, _, _ = login_from(server, ATTACKER, "admin", password)
        assert status == 429


def test_password_typed_as_username_is_never_logged(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.port = free_port()
    server.start()
    secret = "Tr0ub4dor&3-typed-in-the-wrong-field"
    with running(server):
        status, _, _, _ = login_from(server, VICTIM, secret, "whatever")
        assert status == 401
        status, _, _, _ = login_from(server, VICTIM, "admin", "wrong")
        assert status == 401
        time.sleep(0.5)  # the refusal's audit entry is written by the batch writer
    log_text = (tmp_path / "server.log").read_text()
    assert secret not in log_text
    assert '"username": "admin"' in log_text  # an existing user's name is logged as is
    db = sqlite3.connect(tmp_path / "data" / "rancher.db")
    try:
        targets = [r[0] for r in db.execute("SELECT target FROM audit WHERE action='login'")]
    finally:
        db.close()
    assert "user:admin" in targets
    assert not any(secret in t for t in targets)
    assert any(t.startswith("user:sha256:") for t in targets)
