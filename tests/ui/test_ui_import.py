"""Import a cluster from the home page in a real browser: the form shows the commands the API
returned (never ones the page built), the loopback warning, and the new card turns Active by
itself when a real agent, started with the returned registration, connects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.picture_stack import PictureStack
from tests.kube import KubeSimProc
from tests.procs import AgentProc
from tests.ui.conftest import Tab, shot

pytestmark = pytest.mark.simcluster
NEW_CLUSTER = "imported-in-ui"
ACTIVE_WITHIN_MS = 30_000


def test_import_a_cluster_and_watch_it_turn_active(tab: Tab, stack: PictureStack,
                                                   tmp_path: Path) -> None:
    assert stack.server is not None
    page = tab.login()
    page.evaluate("window.__notReloaded = true")
    page.click("[data-testid=import-open]")
    form = page.locator("[data-testid=import]")
    form.get_by_label("Cluster name").fill(NEW_CLUSTER)
    with page.expect_response(lambda r: r.url.endswith("/v3/clusters")
                              and r.request.method == "POST") as answer:
        form.locator("button[type=submit]").click()
    created = json.loads(answer.value.text())
    assert answer.value.status == 201
    # What the API answered, shown as it is.
    page.locator("[data-testid=import-command]").wait_for()
    assert page.inner_text("[data-testid=import-command]") == created["importCommand"]
    assert (page.inner_text("[data-testid=insecure-import-command]")
            == created["insecureImportCommand"])
    assert created["warnings"]  # the test server's URL is a loopback address
    assert page.inner_text("[data-testid=import-warning]") == created["warnings"][0]
    card = page.locator(f"article.cluster[data-cluster-id={created['id']}]")
    card.locator(".badge-pending").wait_for()
    shot(page, tmp_path, "import")

    sim = KubeSimProc(tmp_path / "sim", ["--nodes", "1"]).start()
    agent = AgentProc({"CATTLE_SERVER": created["serverUrl"],
                       "CATTLE_TOKEN": created["registrationToken"],
                       "CATTLE_CA_CHECKSUM": created["caChecksum"],
                       "CATTLE_CREDENTIAL_FILE": str(tmp_path / "agent.credential")},
                      tmp_path / "agent.log", module="cluster_agent",
                      args=["import", "--kubeconfig", str(sim.kubeconfig)])
    try:
        agent.start()
        card.locator(".badge-active").wait_for(timeout=ACTIVE_WITHIN_MS)
        card.locator("[data-testid=nodes]", has_text="1 / 1").wait_for()
        assert page.evaluate("window.__notReloaded") is True  # the same document all along
    finally:
        agent.stop()
        sim.stop()
        assert stack.admin is not None
        stack.admin.call("DELETE", f"/v3/clusters/{created['id']}")
    assert tab.errors == []
