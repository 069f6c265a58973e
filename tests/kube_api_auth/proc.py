"""Run ``python -m kube_api_auth`` as a real subprocess on a port chosen by the OS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


@dataclass
class Process:
    proc: asyncio.subprocess.Process
    url: str

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            return await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise


async def first_line(proc: asyncio.subprocess.Process, timeout_s: float, exited: str) -> bytes:
    """The first line a starting process prints: killed if silent for ``timeout_s``,
    RuntimeError(``exited`` formatted with its exit code) if it exits first."""
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if not line:
        await proc.wait()
        raise RuntimeError(exited.format(proc.returncode))
    return line


async def start(
    args: Sequence[str], env: Mapping[str, str] | None = None, drop_env: Sequence[str] = ()
) -> Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kube_api_auth",
        "--listen-port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        env={
            **{k: v for k, v in os.environ.items() if k not in drop_env},
            "LOG_FORMAT": "json",
            **(env or {}),
        },
    )
    line = await first_line(proc, START_TIMEOUT_S, "kube-api-auth exited with {} before listening")
    return Process(proc, json.loads(line)["listening"])


@contextlib.asynccontextmanager
async def running(
    args: Sequence[str], env: Mapping[str, str] | None = None, drop_env: Sequence[str] = ()
) -> AsyncIterator[Process]:
    """``start`` for the length of a block; on leaving it the process must exit cleanly (0)."""
    service = await start(args, env, drop_env)
    try:
        yield service
    finally:
        assert await service.stop() == 0
