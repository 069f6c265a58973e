"""Administration in a real browser: the server's public URL (its loopback warning, a change
saved and shown in the audit log at once), and the directory login buttons the login page shows
for the providers GET /v3-public/authProviders says are enabled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.picture_stack import PictureStack
from tests.ui.conftest import Tab, shot

pytestmark = pytest.mark.simcluster
PUBLIC_URL = "https://rancher.example.test:8443"


def test_server_url_setting_and_the_audit_log(tab: Tab, stack: PictureStack,
                                              tmp_path: Path) -> None:
    assert stack.server is not None and stack.admin is not None
    page = tab.login()
    page.click("nav >> text=Settings")
    url = page.locator("[data-testid=server-url]")
    url.wait_for()
    before = stack.admin.call("GET", "/v3/settings/server-url")["value"]
    assert url.input_value() == before
    page.locator("[data-testid=server-url-warning]").wait_for()  # a loopback address
    try:
        url.fill(PUBLIC_URL)
        page.click("form[aria-label='Server URL'] button[type=submit]")
        page.locator("[data-testid=server-url-warning]").wait_for(state="detached")
        assert stack.admin.call("GET", "/v3/settings/server-url")["value"] == PUBLIC_URL
        first = page.locator("[data-testid=audit] tbody tr").first
        first.filter(has_text="setting.update").wait_for()
        assert PUBLIC_URL in first.inner_text()
        shot(page, tmp_path, "settings")
        url.fill("ftp://nowhere")  # the API's refusal shown in place
        page.click("form[aria-label='Server URL'] button[type=submit]")
        page.locator("form[aria-label='Server URL'] .error").wait_for()
    finally:
        stack.admin.call("PUT", "/v3/settings/server-url", {"value": before})
    assert all("422" in e for e in tab.errors), tab.errors


def test_login_page_offers_the_enabled_directory_providers(tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    page.goto(f"{tab.url}/ui/")
    page.locator("#username").wait_for()
    assert page.locator(".providers button").count() == 0  # only local users: no choice

    providers = {"type": "collection", "data": [
        {"type": "localProvider", "id": "local"}, {"type": "openldapProvider", "id": "openldap"}]}

    def enabled(route: Any) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(providers))
    page.route("**/v3-public/authProviders", enabled)
    page.reload()
    ldap = page.get_by_role("button", name="OpenLDAP", exact=True)
    ldap.wait_for()
    assert page.get_by_role("button", name="Local user").get_attribute("aria-pressed") == "true"
    ldap.click()
    assert ldap.get_attribute("aria-pressed") == "true"
    shot(page, tmp_path, "login-directory")
    page.fill("#username", "carol")
    page.fill("#password", "not-configured")
    with page.expect_request("**/ui/session") as sent:
        page.click("form.login button[type=submit]")
    assert json.loads(sent.value.post_data or "{}")["provider"] == "openldap"
    # This server has no directory configured: the provider's refusal is shown in place.
    page.locator("#login-error").filter(has_text="").wait_for()
    assert page.inner_text("#login-error") != ""


def test_login_page_links_to_redirect_providers(tab: Tab) -> None:
    """GitHub and OpenID Connect log in at the provider: the page offers a link to the server's
    authorize endpoint (which redirects there), not a password form for them."""
    page = tab.page
    providers = {"type": "collection", "data": [
        {"type": "localProvider", "id": "local"},
        {"type": "githubProvider", "id": "github",
         "redirectUrl": "/v3-public/githubProviders/github/authorize"},
        {"type": "oidcProvider", "id": "oidc",
         "redirectUrl": "/v3-public/oidcProviders/oidc/authorize"},
        {"type": "oidcProvider", "id": "oidc", "redirectUrl": "https://evil.example/x"}]}

    def enabled(route: Any) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(providers))
    page.route("**/v3-public/authProviders", enabled)
    page.goto(f"{tab.url}/ui/")
    github = page.get_by_role("link", name="Log in with GitHub")
    github.wait_for()
    assert github.get_attribute("href") == "/v3-public/githubProviders/github/authorize"
    links = page.locator("a.button[data-provider]")
    assert links.count() == 2  # an off-site redirect URL is never offered
    assert page.get_by_role("link", name="Log in with OpenID Connect").get_attribute(
        "href") == "/v3-public/oidcProviders/oidc/authorize"
    # The password form stays for local users (no directory provider is enabled).
    assert page.locator(".providers button").count() == 0
