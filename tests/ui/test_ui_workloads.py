"""A project member's workloads in a real browser: the member sees their project's Deployment
and its Pods with status, read through the server's proxy with the UI's session cookie, and a
pod's log streamed live (a line appended in the stand-in appears without a reload); the proxy
takes the cookie for reads only with the session's CSRF token and never passes it downstream."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.picture_stack import PictureStack
from tests.procs import wait_until
from tests.ui.conftest import Tab, shot

pytestmark = pytest.mark.simcluster
MEMBER, PASSWORD = "wendy", "wendy-password-for-ui-1"
PROJECT, NAMESPACE, DEPLOYMENT = "shop", "shop-web", "web"
REPLICAS = 2
LOG_LINE = "GET /checkout 200 (appended by the test)"
LIVE_WITHIN_MS = 5_000
PODS_RUNNING_WITHIN_S = 20.0


def _deployment() -> dict[str, Any]:
    labels = {"app": DEPLOYMENT}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE},
            "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web",
                                                           "image": "nginx:1.27"}]}}}}


def _member_project(stack: PictureStack) -> str:
    """The member, their project with one namespace and a Deployment in it; the project id."""
    admin = stack.admin
    assert admin is not None
    user = admin.call("POST", "/v3/users", {"username": MEMBER, "password": PASSWORD})
    project = admin.call("POST", "/v3/projects", {"clusterId": stack.cluster_id, "name": PROJECT})
    stack.kube("POST", "/api/v1/namespaces",
               {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    admin.call("PUT", f"/v3/clusters/{stack.cluster_id}/namespaces/{NAMESPACE}",
               {"projectId": project["id"]})
    admin.call("POST", "/v3/projectroletemplatebindings",
               {"projectId": project["id"], "userId": user["id"],
                "roleTemplateId": "project-member"})
    stack.kube("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", _deployment())

    def running() -> bool:
        pods = stack.kube("GET", f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
        return sum(p.get("status", {}).get("phase") == "Running" for p in pods) == REPLICAS
    wait_until(running, PODS_RUNNING_WITHIN_S, what="the deployment's pods running")
    return str(project["id"])


def test_member_sees_workloads_and_a_live_pod_log(browser: object, stack: PictureStack,
                                                  tmp_path: Path) -> None:
    project_id = _member_project(stack)
    member = Tab(browser, stack)
    try:
        page = member.login(MEMBER, PASSWORD)
        page.goto(f"{member.url}/ui/#/clusters/{stack.cluster_id}/projects")
        page.locator("article.project h3", has_text=PROJECT).wait_for()
        page.click("[data-testid=workloads-link]")
        page.locator("h1", has_text=f"Workloads of {PROJECT}").wait_for()
        assert project_id.split(":")[-1] in page.url
        row = page.locator(f"tr[data-deployment={DEPLOYMENT}] [data-testid=deployment-ready]")
        row.filter(has_text=f"{REPLICAS} / {REPLICAS}").wait_for()
        pods = page.locator("[data-testid=pods] tbody tr")
        assert pods.count() == REPLICAS
        assert page.locator("[data-testid=pod-status]").all_inner_texts() == ["Running"] * REPLICAS
        pod = pods.first.get_attribute("data-pod")
        assert pod is not None and pod.startswith(f"{DEPLOYMENT}-")

        pods.first.get_by_role("button", name=f"Log of pod {pod}").click()
        page.locator(".log-card .status", has_text="Following").wait_for()
        time.sleep(0.5)  # the log request is open through the proxy and the tunnel
        stack.sim_admin("pod-log", "append", NAMESPACE, pod, LOG_LINE)
        t0 = time.monotonic()
        page.locator("[data-testid=pod-log] .log-line", has_text=LOG_LINE).wait_for(
            timeout=LIVE_WITHIN_MS)
        assert time.monotonic() - t0 < LIVE_WITHIN_MS / 1000
        shot(page, tmp_path, "workloads")

        # Reads through the proxy need the session's CSRF token; changes are never taken
        # with the cookie.
        pods_path = f"/k8s/clusters/{stack.cluster_id}/api/v1/namespaces/{NAMESPACE}/pods"
        status = page.evaluate("async (p) => (await fetch(p)).status", pods_path)
        assert status == 401
        csrf = member.session()["csrfToken"]
        delete = page.evaluate(
            "async ([p, t]) => (await fetch(p, {method: 'DELETE', headers: "
            "{'X-CSRF-Token': t}})).status", [f"{pods_path}/{pod}", csrf])
        assert delete == 401
        assert all("401" in e for e in member.errors), member.errors  # only the refused fetches
    finally:
        member.close()
