"""A small list+watch API server that can misbehave on demand (410 Gone, outages, silent
watches): the failure modes a real API server shows rarely and kubesim cannot be asked for.
It follows the Kubernetes list/watch contract for the three collections kube-api-auth reads.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Collection:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)


class FaultApi:
    def __init__(self) -> None:
        self.rv = 100
        self.expire_next_watches = 0  # that many next watches get a 410 ERROR event
        self.collections: dict[str, Collection] = {}
        self.changed = asyncio.Condition()
        self.outage = False  # every request answers 503
        self.outage_retry_after = ""  # the Retry-After header of those 503s
        self.required_token = ""  # when set, requests without this bearer token get 401
        self.silent_watches = False  # watches send nothing and never end
        self.requests: list[str] = []  # "list <path>" / "watch <path> <rv>"
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.streams: set[web.StreamResponse] = set()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{path:.*}", self.handle)
        self.runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        await self.drop_watches()
        if self.runner is not None:
            await self.runner.cleanup()

    async def put(self, path: str, obj: dict[str, Any], etype: str = "") -> None:
        coll = self.collections.setdefault(path, Collection())
        self.rv += 1
        obj = json.loads(json.dumps(obj))
        obj["metadata"]["resourceVersion"] = str(self.rv)
        name = obj["metadata"]["name"]
        kind = etype or ("MODIFIED" if name in coll.objects else "ADDED")
        coll.objects[name] = obj
        coll.events.append((self.rv, kind, obj))
        async with self.changed:
            self.changed.notify_all()

    async def remove(self, path: str, name: str) -> None:
        coll = self.collections.setdefault(path, Collection())
        obj = coll.objects.pop(name)
        self.rv += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.rv)}}
        coll.events.append((self.rv, "DELETED", obj))
        async with self.changed:
            self.changed.notify_all()

    async def drop_watches(self) -> None:
        for stream in list(self.streams):
            transport = stream._req.transport if stream._req is not None else None
            if transport is not None:
                transport.close()
        self.streams.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        if self.outage:
            headers = {"Retry-After": self.outage_retry_after} if self.outage_retry_after else None
            return web.json_response({"kind": "Status", "code": 503}, status=503, headers=headers)
        if self.required_token and (
            request.headers.get("Authorization") != f"Bearer {self.required_token}"
        ):
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        coll = self.collections.setdefault(path, Collection())
        if request.query.get("watch") not in ("1", "true"):
            self.requests.append(f"list {path}")
            return web.json_response(
                {
                    "kind": "List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self.rv)},
                    "items": list(coll.objects.values()),
                }
            )
        since = int(request.query.get("resourceVersion") or 0)
        self.requests.append(f"watch {path} {since}")
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        self.streams.add(resp)
        try:
            if self.expire_next_watches > 0:
                self.expire_next_watches -= 1
                gone = {
                    "type": "ERROR",
                    "object": {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "code": 410,
                        "reason": "Expired",
                        "message": "too old resource version",
                    },
                }
                await resp.write(json.dumps(gone).encode() + b"\n")
                return resp
            while True:
                if self.silent_watches:
                    await asyncio.sleep(3600)
                for rv, etype, obj in coll.events:
                    if rv > since:
                        await resp.write(
                            json.dumps({"type": etype, "object": obj}).encode() + b"\n"
                        )
                        since = rv
                async with self.changed:
                    await self.changed.wait()
        except ConnectionResetError:  # the client went away (or drop_watches)
            return resp
        finally:
            self.streams.discard(resp)
