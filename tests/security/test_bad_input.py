"""Bad input gets a clear 4xx, never a 500 (issue 11, item 5): a huge integer TTL, deeply nested
JSON (REST and login), NaN, a header outside Latin-1; a damaged database stops the server at start
with a message saying what to do."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.procs import ServerProc, running

LOGIN_PATH = "/v3-public/localProviders/local?action=login"


def raw(server: ServerProc, method: str, path: str, body: bytes, headers: dict[str, Any]
        ) -> tuple[int, dict[str, Any]]:
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=15)
    try:
        conn.putrequest(method, path)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else {}
    finally:
        conn.close()


def test_bad_input_is_a_4xx_with_a_json_reason(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.start()
    with running(server):
        status, body = raw(server, "POST", LOGIN_PATH, json.dumps(
            {"username": "admin", "password": server.info["bootstrap_password"],
             "ttl": 10**400}).encode(), {"Content-Type": "application/json"})
        assert status in (201, 422), body  # clamped to the maximum, or refused: never a 500
        token = body.get("token") or ""
        json_ct = {"Content-Type": "application/json"}
        for path in (LOGIN_PATH, "/v3/tokens"):
            deep = b"[" * 50_000 + b"]" * 50_000
            status, body = raw(server, "POST", path, deep,
                               {**json_ct, "Authorization": f"Bearer {token}"})
            assert status in (400, 413), (path, status, body)
            assert body["type"] == "error" and body["message"]
        status, body = raw(server, "POST", "/v3/tokens", b'{"ttl": NaN}',
                           {**json_ct, "Authorization": f"Bearer {token}"})
        assert status == 400 and "NaN" in body["message"], body
        status, body = raw(server, "GET", "/v3/clusters", b"",
                           {"Authorization": "Bearer token-\xe9\xff:x".encode("latin-1")})
        assert status in (400, 401), body
        status, body = raw(server, "GET", "/v3/clusters", b"",
                           {"X-Note": "caf\u00e9".encode(), "Authorization": f"Bearer {token}"})
        assert status < 500, body


def test_a_damaged_database_stops_the_server_with_advice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rancher.db").write_bytes(b"SQLite format 3\x00" + b"\xde\xad" * 4096)
    out = subprocess.run(
        [sys.executable, "-m", "rancher_server", "--data-dir", str(data),
         "--listen", "127.0.0.1:0"],
        check=False, capture_output=True, text=True, timeout=30,
    )
    assert out.returncode != 0
    assert "damaged" in out.stderr and "backup" in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
