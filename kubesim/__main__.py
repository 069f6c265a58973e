"""``python -m kubesim --port 0``: run the stand-in, print one JSON ready line."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from rancher_tunnel import logs
from rancher_tunnel.process import freeze_heap

from .options import parse_args
from .server import KubeSim


async def _run(argv: list[str] | None) -> None:
    options = parse_args(argv)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with KubeSim(options) as sim:
        freeze_heap()  # its start-up heap out of the collector's scans, as the server's
        line = {"ready": True, "url": sim.url, "kubeconfig": sim.kubeconfig_path}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    logs.configure("kubesim")
    asyncio.run(_run(argv))


if __name__ == "__main__":
    main()
