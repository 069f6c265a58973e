"""``kube-api-auth``: the TokenReview webhook of the authorized cluster endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence

from kube_api_auth import config as config_mod
from kube_api_auth import kubeapi
from kube_api_auth.service import FeederError, serve
from rancher_tunnel import logs


async def _main(cfg: config_mod.Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def ready(url: str) -> None:
        print(json.dumps({"listening": url}), flush=True)

    await serve(cfg, stop, on_listening=ready)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = config_mod.parse(argv)
    logs.configure("kube-api-auth")
    try:
        import uvloop

        runner: asyncio.Runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner, contextlib.suppress(KeyboardInterrupt):
        try:
            runner.run(_main(cfg))
        except kubeapi.KubeConfigError as exc:
            print(f"kube-api-auth: {exc}", file=sys.stderr)
            return 2
        except FeederError:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
