"""The home and cluster pages in a real browser against real processes: a node made NotReady in
the stand-in shows on both pages without a reload; the cluster page's nodes, events (live,
filtered), health, projects and members; the kubeconfig download works with kubectl; the
authorized endpoint switch changes the setting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.picture_stack import PictureStack
from tests.kube import kubectl
from tests.ui.conftest import Tab, shot

pytestmark = pytest.mark.simcluster
LIVE_WITHIN_MS = 2_000
NODE = "node-2"


def _cluster_page(tab: Tab, stack: PictureStack, section: str = "nodes") -> None:
    page = tab.login()
    page.goto(f"{tab.url}/ui/#/clusters/{stack.cluster_id}/{section}")
    page.locator(".cluster-head .badge-active").wait_for()


def test_a_node_made_notready_shows_without_reload(tab: Tab, stack: PictureStack,
                                                   tmp_path: Path) -> None:
    page = tab.login()
    nodes = page.locator(f"article.cluster[data-cluster-id={stack.cluster_id}] "
                         "[data-testid=nodes]")
    assert nodes.inner_text() == "3 / 3"
    page.evaluate("window.__notReloaded = true")
    try:
        stack.sim_admin("node", "notready", NODE)
        t0 = time.monotonic()
        page.wait_for_function(
            "(sel) => document.querySelector(sel)?.textContent === '2 / 3'",
            arg=f"article.cluster[data-cluster-id={stack.cluster_id}] [data-testid=nodes]",
            timeout=LIVE_WITHIN_MS)
        home_s = time.monotonic() - t0
        page.click(f"article.cluster[data-cluster-id={stack.cluster_id}] h2 a")
        status = page.locator(f"tr[data-node={NODE}] [data-testid=node-status]")
        assert status.inner_text() == "NotReady"
        conditions = page.locator(f"tr[data-node={NODE}] td.conditions").inner_text()
        assert "Ready: Unknown" in conditions or "Ready: False" in conditions
        stack.sim_admin("node", "ready", NODE)
        page.locator(f"tr[data-node={NODE}] [data-testid=node-status]",
                     has_text="Ready").filter(has_not_text="Not").wait_for(timeout=LIVE_WITHIN_MS)
        page.locator("[data-testid=nodes-ready]", has_text="3 / 3").wait_for()
        assert page.evaluate("window.__notReloaded") is True  # the same document all along
        shot(page, tmp_path, "cluster-nodes")
    finally:
        stack.sim_admin("node", "ready", NODE)
    assert home_s < LIVE_WITHIN_MS / 1000
    assert tab.errors == []


def test_events_are_live_and_filtered(tab: Tab, stack: PictureStack, tmp_path: Path) -> None:
    _cluster_page(tab, stack, "events")
    page = tab.page
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    made = (("ui-warn", "Warning", "UiWarning"), ("ui-norm", "Normal", "UiNormal"))
    for name, etype, reason in made:
        stack.kube("POST", "/api/v1/namespaces/default/events", {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": f"{name}-pod", "namespace": "default"},
            "reason": reason, "message": f"{reason} message", "type": etype, "count": 1,
            "firstTimestamp": ts, "lastTimestamp": ts, "source": {"component": "ui-test"}})
    table = page.locator("[data-testid=events-table]")
    table.locator("tr", has_text="UiWarning").wait_for(timeout=LIVE_WITHIN_MS)
    table.locator("tr", has_text="UiNormal").wait_for(timeout=LIVE_WITHIN_MS)
    page.select_option("#ev-type", "Warning")
    page.locator("[data-testid=events-table] tr", has_text="UiNormal").wait_for(state="detached")
    assert table.locator("tr", has_text="UiWarning").count() == 1
    page.fill("#ev-text", "nothing-like-this")
    page.dispatch_event("#ev-text", "change")
    page.locator("[data-testid=events-empty]").wait_for()
    shot(page, tmp_path, "cluster-events")
    assert tab.errors == []


def test_health_projects_and_members(tab: Tab, stack: PictureStack, tmp_path: Path) -> None:
    _cluster_page(tab, stack, "health")
    page = tab.page
    health = page.locator("[data-testid=health]")
    health.get_by_text("healthy", exact=True).wait_for()
    assert "0.1.0" in health.inner_text() and " ms" in health.inner_text()
    page.click("#tab-projects")
    page.locator("article.project h3", has_text="Default").wait_for()
    page.locator("article.project h3", has_text="System").wait_for()
    assert page.locator("li[data-namespace=default]").count() == 1
    page.click("#tab-members")
    row = page.locator("tr", has_text="cluster-owner")
    row.wait_for()
    assert "admin" in row.inner_text()
    shot(page, tmp_path, "cluster-members")
    assert tab.errors == []


def test_kubeconfig_download_works_with_kubectl(tab: Tab, stack: PictureStack,
                                                tmp_path: Path) -> None:
    _cluster_page(tab, stack)
    page = tab.page
    with page.expect_download() as dl:
        page.click("[data-testid=kubeconfig]")
    path = tmp_path / "kubeconfig.yaml"
    dl.value.save_as(str(path))
    out = kubectl(path, "get", "nodes", "-o", "name").stdout
    assert "node/node-0" in out


def test_the_authorized_endpoint_switch(tab: Tab, stack: PictureStack) -> None:
    _cluster_page(tab, stack)
    page = tab.page
    assert stack.admin is not None
    path = f"/v3/clusters/{stack.cluster_id}/authorizedendpoint"
    stack.admin.call("PUT", path, {"enabled": False})
    page.reload()
    switch = page.locator("[data-testid=ace-switch]")
    switch.wait_for()
    assert not switch.is_checked()
    switch.check()
    page.locator(".status", has_text="Authorized endpoint enabled").wait_for()
    assert stack.admin.call("GET", path)["enabled"] is True
    page.locator("[data-testid=ace-switch]").uncheck()
    page.locator(".status", has_text="Authorized endpoint disabled").wait_for()
    assert stack.admin.call("GET", path)["enabled"] is False
