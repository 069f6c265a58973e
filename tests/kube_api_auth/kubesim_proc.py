"""Run the Kubernetes stand-in (``python -m kubesim``) and real kubectl against it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
KUBECTL_TIMEOUT_S = 30.0


@dataclass
class KubeSim:
    proc: asyncio.subprocess.Process
    url: str
    kubeconfig: Path

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def start(workdir: Path, extra: Sequence[str] = ()) -> KubeSim:
    kubeconfig = workdir / "kubesim.kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kubesim",
        "--port",
        "0",
        "--kubeconfig-out",
        str(kubeconfig),
        "--cert-dir",
        str(workdir / "kubesim-certs"),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if not line:
        await proc.wait()
        raise RuntimeError(f"kubesim exited with {proc.returncode} before ready")
    ready = json.loads(line)
    return KubeSim(proc, ready["url"], Path(ready["kubeconfig"]))


async def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "kubectl",
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), KUBECTL_TIMEOUT_S
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    rc = proc.returncode if proc.returncode is not None else -1
    if check and rc != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({rc}): {err.decode()}")
    return rc, out.decode(), err.decode()
