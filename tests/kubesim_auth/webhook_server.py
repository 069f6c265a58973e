"""A demo TokenReview webhook, runnable as its own process for end-to-end tests:
``python -m tests.kubesim_auth.webhook_server <dir>`` writes ``<dir>/webhook.kubeconfig``
(server URL and CA, as kube-apiserver's ``--authentication-token-webhook-config-file``
expects), prints one JSON ready line, and serves until terminated.

Tokens (the demo users of the reference captures): ``webhook-token-bob`` is bob (uid
bob-uid, group webhook-devs, extra example.org/team=blue); ``webhook-token-carol`` is carol
in system:masters; anything else is not authenticated.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from kubesim.certs import make_pki

from .servers import https_server, server_context, webhook_kubeconfig

USERS: dict[str, dict[str, Any]] = {
    "webhook-token-bob": {
        "username": "bob",
        "uid": "bob-uid",
        "groups": ["webhook-devs"],
        "extra": {"example.org/team": ["blue"]},
    },
    "webhook-token-carol": {"username": "carol", "uid": "carol-uid", "groups": ["system:masters"]},
}


async def review(request: web.Request) -> web.Response:
    body = await request.json()
    user = USERS.get(str((body.get("spec") or {}).get("token", "")))
    status: dict[str, Any] = (
        {"authenticated": True, "user": user}
        if user
        else {"authenticated": False, "error": "unknown token"}
    )
    answer = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}
    return web.json_response(answer)


async def serve(directory: Path) -> None:
    pki = make_pki()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with https_server(review, server_context(pki, request_client_cert=False)) as base:
        path = webhook_kubeconfig(directory, f"{base}/authenticate", pki)
        sys.stdout.write(json.dumps({"ready": True, "kubeconfig": str(path)}) + "\n")
        sys.stdout.flush()
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
