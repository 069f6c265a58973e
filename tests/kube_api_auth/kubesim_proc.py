"""Run the Kubernetes stand-in (``python -m kubesim``) and real kubectl against it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.kube_api_auth.proc import first_line
from tests.kubesim_launch import QUIET_ENV, kubesim_argv

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
        *kubesim_argv(kubeconfig, extra, cert_dir=workdir / "kubesim-certs"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **QUIET_ENV},
    )
    line = await first_line(proc, START_TIMEOUT_S, "kubesim exited with {} before ready")
    ready = json.loads(line)
    return KubeSim(proc, ready["url"], Path(ready["kubeconfig"]))


@contextlib.asynccontextmanager
async def running(workdir: Path, extra: Sequence[str] = ()) -> AsyncIterator[KubeSim]:
    """``start`` for the length of a block, stopped on leaving it."""
    sim = await start(workdir, extra)
    try:
        yield sim
    finally:
        await sim.stop()


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
