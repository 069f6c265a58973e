"""The ``rancher`` CLI as a process against a running server process (loopback, OS-chosen
ports), each CLI with its own config directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.procs import ServerProc

ADMIN_PASSWORD = "cli-admin-password-123"
CLI_TIMEOUT_S = 60.0


@dataclass
class Cli:
    home: Path  # XDG_CONFIG_HOME of this CLI user

    @property
    def config_file(self) -> Path:
        return self.home / "rancher-py" / "cli.json"

    def __call__(self, *args: str, input: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rancher_cli", *args],
            capture_output=True, text=True, input=input, timeout=CLI_TIMEOUT_S, check=False,
            env={**os.environ, "XDG_CONFIG_HOME": str(self.home),
                 "KUBECONFIG": str(self.home / "kube" / "config"), **(env or {})},
        )

    def ok(self, *args: str, input: str | None = None) -> str:
        out = self(*args, input=input)
        assert out.returncode == 0, (args, out.returncode, out.stderr)
        return out.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))

    def login(self, server: ServerProc, password: str = ADMIN_PASSWORD) -> None:
        self.ok("login", server.url, "--ca-checksum", server.ca_checksum,
                "--username", "admin", "--password", password)


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    """A failure is one line on stderr, no traceback."""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    work = tmp_path_factory.mktemp("cli-server")
    srv = ServerProc(work / "data", work / "server.log",
                     env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD})
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "config")


@pytest.fixture
def admin(tmp_path: Path, server: ServerProc) -> Cli:
    c = Cli(tmp_path / "admin-config")
    c.login(server)
    return c
