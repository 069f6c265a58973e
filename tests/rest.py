"""A tiny synchronous client for the server's REST API in tests."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REQUEST_TIMEOUT_S = 15.0


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class Rest:
    def __init__(self, url: str, ca: Path, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=str(ca))
        self.token = token

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        tok = token or self.token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=REQUEST_TIMEOUT_S) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            e.close()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ApiError(e.code, parsed) from None
        return json.loads(raw) if raw else None

    def call_text(self, method: str, path: str) -> str:
        """A request whose answer is not JSON (manifests)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        req = urllib.request.Request(self.url + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=REQUEST_TIMEOUT_S) as resp:
                return str(resp.read().decode())
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace")
            e.close()
            raise ApiError(e.code, body) from None

    def login(self, username: str, password: str) -> str:
        out = self.call(
            "POST",
            "/v3-public/localProviders/local?action=login",
            {"username": username, "password": password},
        )
        return str(out["token"])
