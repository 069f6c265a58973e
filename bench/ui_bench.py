"""Web UI benchmark (issue 13): one JSON line.

- ``home_ms_1000_clusters``: from navigating to the home page (logged in) until it shows 1,000
  cluster cards; the clusters are created in the store before the server starts (as
  ``bench/access_bench.py`` fills its store). Baseline: the same with 1 cluster.
- ``page_kib``: the home page's total transfer (encoded bytes of every response, from Chromium's
  network events) on a cold load in a fresh browser context, with 1,000 clusters; baseline with 1.
- ``live_update_p99_ms``: a node made NotReady / Ready in the stand-in (the admin call has
  returned) until the home page shows the new ready count, over ``--changes`` changes, against
  real stand-in, server and agent processes.

Targets: home <= 1,000 ms, page <= 400 KiB, live update p99 <= 1,500 ms."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright import sync_api

from rancher_server.auth.passwords import hash_password
from rancher_server.clusters.registration import create_cluster
from rancher_server.store import SQLiteStore
from tests.e2e.picture_stack import ADMIN_PASSWORD as STACK_PASSWORD
from tests.e2e.picture_stack import PictureStack
from tests.procs import ServerProc, free_port
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS

ADMIN_PASSWORD = "admin-password-for-ui-bench-1"
CLUSTERS = 1000
BASELINE_CLUSTERS = 1
CHANGES_DEFAULT = 40
REPEATS = 3  # home loads per size; the median is reported
SHOWN_TIMEOUT_MS = 60_000
LIVE_TIMEOUT_MS = 10_000
VIEWPORT = {"width": 1280, "height": 900}
NODE = "node-1"
KIB = 1024
P99 = 0.99


def fill_store(db: Path, clusters: int) -> None:
    store = SQLiteStore(db)
    try:
        store.create_user("admin", "Admin", hash_password(ADMIN_PASSWORD), is_admin=True)
        for i in range(clusters):
            create_cluster(store, f"bench-{i:04d}")
    finally:
        store.close()


def login(browser: Any, url: str, password: str) -> Any:
    ctx = browser.new_context(ignore_https_errors=True, viewport=VIEWPORT)
    page = ctx.new_page()
    page.goto(f"{url}/ui/")
    page.fill("#username", "admin")
    page.fill("#password", password)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("[data-testid=logout]")
    return ctx, page


def home_figures(browser: Any, work: Path, clusters: int) -> tuple[float, float]:
    """(median ms until the home page shows every card, KiB of a cold load)."""
    data = work / f"data-{clusters}"
    data.mkdir()
    fill_store(data / "rancher.db", clusters)
    server = ServerProc(data, work / f"server-{clusters}.log", port=free_port()).start()
    try:
        ctx, page = login(browser, server.url, ADMIN_PASSWORD)
        times = []
        for _ in range(REPEATS):
            page.goto("about:blank")
            t0 = time.perf_counter()
            page.goto(f"{server.url}/ui/#/")
            page.wait_for_function("(n) => document.querySelectorAll('article.cluster').length "
                                   ">= n", arg=clusters, timeout=SHOWN_TIMEOUT_MS)
            times.append((time.perf_counter() - t0) * 1000)
        cookies = ctx.cookies()
        ctx.close()
        cold = browser.new_context(ignore_https_errors=True, viewport=VIEWPORT)
        cold.add_cookies(cookies)
        page = cold.new_page()
        cdp = cold.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        sizes: dict[str, float] = {}
        cdp.on("Network.dataReceived",
               lambda e: sizes.__setitem__(e["requestId"], sizes.get(e["requestId"], 0)
                                           + e["encodedDataLength"]))
        cdp.on("Network.loadingFinished",
               lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
        page.goto(f"{server.url}/ui/#/")
        page.wait_for_function("(n) => document.querySelectorAll('article.cluster').length >= n",
                               arg=clusters, timeout=SHOWN_TIMEOUT_MS)
        page.wait_for_load_state("networkidle")
        cold.close()
        return statistics.median(times), sum(sizes.values()) / KIB
    finally:
        server.stop()


def live_updates(browser: Any, work: Path, changes: int) -> list[float]:
    stack = PictureStack(work / "live", nodes=3).start()
    try:
        assert stack.server is not None
        ctx, page = login(browser, stack.server.url, STACK_PASSWORD)
        sel = f"article.cluster[data-cluster-id={stack.cluster_id}] [data-testid=nodes]"
        page.wait_for_function("(s) => document.querySelector(s)?.textContent === '3 / 3'",
                               arg=sel, timeout=LIVE_TIMEOUT_MS)
        out = []
        for i in range(changes):
            verb, want = ("notready", "2 / 3") if i % 2 == 0 else ("ready", "3 / 3")
            stack.sim_admin("node", verb, NODE)
            t0 = time.perf_counter()
            page.wait_for_function("([s, w]) => document.querySelector(s)?.textContent === w",
                                   arg=[sel, want], timeout=LIVE_TIMEOUT_MS, polling="raf")
            out.append((time.perf_counter() - t0) * 1000)
        ctx.close()
        return out
    finally:
        stack.stop()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(P99 * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--changes", type=int, default=CHANGES_DEFAULT,
                    help="node condition changes timed for the live update figure")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as tmp, \
            sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        work = Path(tmp)
        base_ms, base_kib = home_figures(browser, work, BASELINE_CLUSTERS)
        home_ms, page_kib = home_figures(browser, work, CLUSTERS)
        live = live_updates(browser, work, args.changes)
        browser.close()
    print(json.dumps({
        "home_ms_1000_clusters": round(home_ms, 1), "home_ms_1_cluster_baseline": round(base_ms, 1),
        "page_kib": round(page_kib, 1), "page_kib_1_cluster_baseline": round(base_kib, 1),
        "live_update_p99_ms": round(p99(live), 1),
        "live_update_p50_ms": round(statistics.median(live), 1), "live_updates": len(live),
        "targets": {"home_ms_1000_clusters": 1000, "page_kib": 400, "live_update_p99_ms": 1500},
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
