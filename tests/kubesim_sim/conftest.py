"""Fixtures for the simulated cluster's tests: a real ``kubesim.store.Store`` with the sim
running on it (no HTTP server), and a polling helper with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubesim.sim import SimConfig, SimContext, start_sim, stop_sim
from kubesim.store import Store

WAIT_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.01
FAST_LEASE_S = 0.05
FAST_STATUS_S = 0.1

T = TypeVar("T")


async def wait_for(
    fn: Callable[[], T | None], timeout_s: float = WAIT_TIMEOUT_S, what: str = ""
) -> T:
    """Poll ``fn`` until it returns something truthy; fail after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or fn}")
        await asyncio.sleep(POLL_INTERVAL_S)


@pytest.fixture
def store() -> Store:
    s = Store()
    s.seed()
    return s


@pytest.fixture
async def sim(store: Store, tmp_path: Path) -> AsyncIterator[SimContext]:
    ctx = await start_sim(
        store,
        SimConfig(
            nodes=2,
            lease_interval_s=FAST_LEASE_S,
            status_interval_s=FAST_STATUS_S,
            scratch_root=str(tmp_path / "pods"),
        ),
    )
    try:
        yield ctx
    finally:
        await stop_sim(ctx)


def deployment(
    name: str, replicas: int, image: str = "nginx:1.27", ns: str = "default"
) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


class SimServer:
    """The sim's HTTP surface (pod subresources and admin routes) on a loopback port, without
    the API core: lets the streaming handlers be tested on their own."""

    def __init__(self, url: str, ctx: SimContext, store: Store) -> None:
        self.url = url
        self.ctx = ctx
        self.store = store


@pytest.fixture
async def sim_server(store: Store, sim: SimContext) -> AsyncIterator[SimServer]:
    from aiohttp import web

    from kubesim.sim import admin, streaming

    async def pod_sub(request: web.Request) -> web.StreamResponse:
        pod = store.get_item("", "pods", request.match_info["ns"], request.match_info["name"])
        if pod is None:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        return await streaming.handle(request.match_info["sub"], request, pod, sim)

    app = web.Application()
    app.router.add_routes(admin.routes(sim))
    app.router.add_route("*", "/api/v1/namespaces/{ns}/pods/{name}/{sub}", pod_sub)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield SimServer(f"http://127.0.0.1:{port}", sim, store)
    finally:
        await sim.streams.close_all()
        await runner.cleanup()


def make_pod(
    store: Store,
    name: str,
    containers: tuple[str, ...] = ("main",),
    ns: str = "default",
    annotations: dict[str, str] | None = None,
) -> None:
    md: dict[str, Any] = {"name": name, "namespace": ns}
    if annotations:
        md["annotations"] = annotations
    store.create_item(
        "",
        "pods",
        {
            "metadata": md,
            "spec": {"containers": [{"name": c, "image": "busybox:1.36"} for c in containers]},
        },
    )


async def running_pod(store: Store, name: str, ns: str = "default", **kw: Any) -> dict[str, Any]:
    make_pod(store, name, ns=ns, **kw)
    return await wait_for(
        lambda: (
            (p := store.get_item("", "pods", ns, name))
            and p["status"].get("phase") == "Running"
            and p
        ),
        what=f"pod {name} running",
    )
