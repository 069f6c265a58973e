"""Benchmark of revocation against open proxied requests: how long a watch opened through the
proxy stays open after its token is revoked.

Method: the stand-in, the server, an imported agent and kube-api-auth run as real processes
(tests/e2e/ace_stack.py). A user with ``cluster-member`` creates one API token per trial, opens a
watch of ConfigMaps through ``/k8s/clusters/<id>/`` with it and waits for the answer's headers;
the token is then revoked through the REST API and the time until the watch's stream ends is
measured (``revoke_stream_cut_*``). Baseline in the same run: the time from the same revocation
until a new request with the token is refused (``revoke_new_request_*``), which is what the
stream guard's check interval adds to.

The last line printed is one JSON object. ``--quick`` (10 trials) finishes in well under a
minute."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from tests.e2e.ace_stack import ace_stack
from tests.rest import Rest

USER_PASSWORD = "user-password-for-bench-1"
CUT_TIMEOUT_S = 30.0
POLL_S = 0.01
TARGET_P99_S = 10.0


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * q))], 3)


async def trials(stack: dict[str, Any], n: int) -> dict[str, Any]:
    admin: Rest = stack["admin"]
    server = stack["server"]
    cid = stack["cluster"]
    user = admin.call("POST", "/v3/users", {"username": "watcher", "password": USER_PASSWORD})
    admin.call("POST", "/v3/clusterroletemplatebindings",
               {"clusterId": cid, "userId": user["id"], "roleTemplateId": "cluster-member"})
    me = Rest(server.url, server.ca_path)
    me.token = me.login("watcher", USER_PASSWORD)
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    base = f"{server.url}/k8s/clusters/{cid}/api/v1/namespaces/default/configmaps"
    cut: list[float] = []
    refused: list[float] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            tok = me.call("POST", "/v3/tokens", {"description": "bench", "ttl": 3600000})
            headers = {"Authorization": f"Bearer {tok['token']}"}
            deadline = time.monotonic() + CUT_TIMEOUT_S
            while True:  # the first request of a token waits for the user's access downstream
                async with http.get(base, headers=headers, ssl=ctx) as r:
                    await r.read()
                    if r.status == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("the watcher never got access")
                await asyncio.sleep(0.1)
            resp = await http.get(base, params={"watch": "true"}, headers=headers, ssl=ctx,
                                  timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
            assert resp.status == 200, resp.status

            async def stream_end(r: aiohttp.ClientResponse = resp) -> None:
                try:
                    while await r.content.readany():
                        pass
                except aiohttp.ClientError:
                    pass

            ended = asyncio.create_task(stream_end())
            await asyncio.sleep(0.2)
            assert not ended.done(), "the watch ended before the revocation"
            t0 = time.monotonic()
            admin.call("DELETE", f"/v3/tokens/{tok['id']}")
            revoked_at = time.monotonic()
            while True:
                async with http.get(base, headers=headers, ssl=ctx) as r:
                    await r.read()
                    if r.status == 401:
                        break
                await asyncio.sleep(POLL_S)
            refused.append(time.monotonic() - revoked_at)
            try:
                await asyncio.wait_for(ended, CUT_TIMEOUT_S)
            except TimeoutError:
                raise SystemExit("a watch outlived its token's revocation") from None
            cut.append(time.monotonic() - t0)
            resp.release()
    return {
        "revoke_stream_cut_p50_s": _p(cut, 0.5), "revoke_stream_cut_p99_s": _p(cut, 0.99),
        "revoke_new_request_p50_s": _p(refused, 0.5),
        "revoke_new_request_p99_s": _p(refused, 0.99),
        "trials": n, "target_revoke_stream_cut_p99_s": TARGET_P99_S,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 trials")
    ap.add_argument("--trials", type=int, default=50)
    args = ap.parse_args()
    n = 10 if args.quick else args.trials
    with ace_stack(Path(tempfile.mkdtemp(prefix="revoke-stream-bench-"))) as stack:
        result = asyncio.run(trials(stack, n))
    print(json.dumps({"bench": "revoke_stream", "quick": args.quick, **result}), flush=True)


if __name__ == "__main__":
    main()
