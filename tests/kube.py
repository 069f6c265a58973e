"""Helpers for tests that drive real kubectl and the Kubernetes stand-in (kubesim) as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.kubesim_launch import kubesim_argv
from tests.procs import READY_TIMEOUT_S, STOP_TIMEOUT_S, _read_ready_line

KUBECTL_TIMEOUT_S = 60.0


@dataclass
class KubeSimProc:
    workdir: Path
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    _log: IO[str] | None = None

    def start(self) -> KubeSimProc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.workdir / "kubesim.log", "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            kubesim_argv(self.workdir / "admin.kubeconfig", self.args),
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "LOG_FORMAT": "json"},
        )
        self.info = _read_ready_line(self.proc, READY_TIMEOUT_S)
        return self

    @property
    def kubeconfig(self) -> Path:
        return Path(self.info["kubeconfig"])

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        if self._log:
            self._log.close()


def kubectl(
    kubeconfig: Path | str,
    *args: str,
    check: bool = True,
    input: str | None = None,
    timeout: float = KUBECTL_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        check=False,
    )
    if check and out.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
        )
    return out


def kubectl_json(kubeconfig: Path | str, *args: str) -> Any:
    return json.loads(kubectl(kubeconfig, *args, "-o", "json").stdout)
