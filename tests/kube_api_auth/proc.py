"""Run ``python -m kube_api_auth`` as a real subprocess on a port chosen by the OS."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
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
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if not line:
        await proc.wait()
        raise RuntimeError(f"kube-api-auth exited with {proc.returncode} before listening")
    return Process(proc, json.loads(line)["listening"])
