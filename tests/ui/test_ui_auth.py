"""The Authentication page in a real browser: OpenLDAP configured through the page against a real
slapd (``tests/auth_providers/slapd.py``: LDAPS with a test CA, seeded users and a nested group),
its connection tested (a wrong bind password names the bind stage; the right one passes every step
and logs the test user in), saved (the bind password write-only: "set", never shown), enabled, its
groups refreshed; then the directory user logs in on the login page. The API's refusals are shown
in place."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.auth_providers.fake_oauth import CLIENT_ID, CLIENT_SECRET
from tests.auth_providers.slapd import OL_BASE, OL_SVC, SVC_PW, USER_PW, Slapd, slapd_binary
from tests.auth_providers.test_oidc_direct_path import running_fake
from tests.e2e.picture_stack import PictureStack
from tests.rest import Rest
from tests.ui.conftest import AXE_JS, Tab, axe_violations, shot

pytestmark = pytest.mark.simcluster
SHOTS_DIR_ENV = "UI_SCREENSHOTS_DIR"  # docs/ui refreshes, as in test_ui_a11y.py
OL = "/v3/authconfigs/openldap"
USER = "alice"  # in devs, which is in eng (a nested group)
GROUPS = {f"openldap_group://cn=devs,ou=groups,{OL_BASE}",
          f"openldap_group://cn=eng,ou=groups,{OL_BASE}"}


def _admin(stack: PictureStack) -> Rest:
    assert stack.admin is not None
    return stack.admin


@pytest.fixture(scope="module")
def slapd(stack: PictureStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A real slapd for this module; OpenLDAP is turned off and its users deleted after, so the
    other UI tests see the login page as it was."""
    if slapd_binary() is None:
        pytest.skip("slapd is not installed (scripts/test.sh installs slapd and ldap-utils)")
    admin = _admin(stack)
    before = {u["id"] for u in admin.call("GET", "/v3/users")["data"]}
    s = Slapd(tmp_path_factory.mktemp("slapd")).start()
    try:
        yield s
    finally:
        admin.call("PUT", OL, {"enabled": False})
        for u in admin.call("GET", "/v3/users")["data"]:
            if u["id"] not in before:
                admin.call("DELETE", f"/v3/users/{u['id']}")
        s.stop()


def _settings(page: Any) -> Any:
    return page.locator("section[data-provider=openldap] form[aria-label='OpenLDAP settings']")


def _save(page: Any, provider: str) -> None:
    """Click Save and wait for the form to be drawn again from the API's answer (the secret
    input empty again: it is never filled from the API)."""
    card = f"section[data-provider={provider}]"
    page.locator(f"{card} form.settings-form button[type=submit]").click()
    page.wait_for_function("(card) => { const i = document.querySelector(`${card} "
                           "input[data-secret]`); return i !== null && i.value === ''; }", arg=card)


def _run_test(page: Any, expect: str) -> Any:
    """Click Test connection and wait for a summary that contains ``expect``."""
    card = page.locator("section[data-provider=openldap]")
    card.locator("form[aria-label='Test the OpenLDAP connection'] button[type=submit]").click()
    summary = card.locator("[data-testid=test-summary]").filter(has_text=expect)
    summary.wait_for()
    return card.locator("[data-testid=test-result]")


@pytest.fixture
def axe_tab(browser: Any, stack: PictureStack) -> Iterator[Tab]:
    """A tab whose page axe-core can be injected into (it bypasses the CSP for that only)."""
    t = Tab(browser, stack, bypass_csp=True)
    try:
        yield t
    finally:
        t.close()


def _axe(page: Any) -> list[str]:
    return axe_violations(page) if AXE_JS.exists() else []  # test_ui_a11y.py says if missing


def test_openldap_configured_tested_enabled_and_its_user_logs_in(
        axe_tab: Tab, stack: PictureStack, slapd: Slapd, tmp_path: Path) -> None:
    tab, admin = axe_tab, _admin(stack)
    page = tab.login()
    page.click("nav >> text=Authentication")
    form = _settings(page)
    form.wait_for()
    assert page.locator("tr[data-provider=openldap] .badge-disabled").count() == 1
    form.get_by_label("Servers (host names or addresses, comma-separated)",
                      exact=True).fill("127.0.0.1")
    form.get_by_label("Port (0: the TLS mode's default)", exact=True).fill(str(slapd.tls_port))
    form.get_by_label("TLS", exact=True).select_option("ldaps")
    form.get_by_label("CA certificate (PEM; empty: the system's)", exact=True).fill(slapd.ca_pem)
    form.get_by_label("Service account DN", exact=True).fill(OL_SVC)
    password = form.get_by_label("Service account password", exact=True)
    password.fill("not-the-bind-password")
    form.get_by_label("User search base", exact=True).fill(f"ou=people,{OL_BASE}")
    form.get_by_label("Group search base (empty: the user search base)",
                      exact=True).fill(f"ou=groups,{OL_BASE}")
    form.get_by_label("Nested groups", exact=True).check()

    # The form as it is (not saved yet), with a wrong bind password: the bind stage fails.
    result = _run_test(page, "Failed at bind")
    assert result.locator("li.step-bad").count() == 1
    assert result.locator("li.step-bad[data-stage=bind]").count() == 1
    assert result.locator("li.step-ok[data-stage=tls]").count() == 1  # got that far
    assert admin.call("GET", OL)["passwordSet"] is False  # a test saves nothing

    # The right one, and a test login as the directory user: every step, the login with groups.
    password.fill(SVC_PW)
    card = page.locator("section[data-provider=openldap]")
    card.get_by_label("Test username (optional)", exact=True).fill(USER)
    card.get_by_label("Test user's password", exact=True).fill(USER_PW)
    result = _run_test(page, "Every step succeeded")
    assert result.locator("li.step-bad").count() == 0
    login_step = result.locator("li[data-stage=login]").inner_text()
    assert f"openldap_user://uid={USER},ou=people,{OL_BASE}" in login_step
    assert "2 groups" in login_step
    assert _axe(page) == []  # with the steps shown
    out_dir = Path(os.environ.get(SHOTS_DIR_ENV, tmp_path))
    shot(page, out_dir, "authentication")

    # Saved: the secret is stored, never shown, and the page says "set".
    _save(page, "openldap")
    assert card.locator("[data-testid=serviceAccountPassword-state]").inner_text() == "set"
    stored = admin.call("GET", OL)
    assert stored["passwordSet"] is True and stored["serviceAccountPassword"] == ""
    assert stored["servers"] == ["127.0.0.1"] and stored["port"] == slapd.tls_port
    assert stored["nestedGroupMembershipEnabled"] is True and stored["enabled"] is False
    # Save sent what the form changed, so the audit log names those fields.
    [update] = [e for e in admin.call("GET", "/v3/auditlogs?limit=20")["data"]
                if e["action"] == "authconfig.update"][:1]
    assert update["result"] == ("success certificate,groupSearchBase,nestedGroupMembershipEnabled,"
                                "port,servers,serviceAccountDistinguishedName,"
                                "serviceAccountPassword,userSearchBase")

    page.get_by_role("button", name="Enable OpenLDAP").click()
    page.locator("tr[data-provider=openldap] .badge-enabled").wait_for()
    assert admin.call("GET", OL)["enabled"] is True
    page.get_by_role("button", name="Disable OpenLDAP").wait_for()

    # The directory user logs in on the login page.
    page.click("[data-testid=logout]")
    page.locator("#top").wait_for(state="hidden")  # not the last user's name and nav
    page.get_by_role("button", name="OpenLDAP", exact=True).click()
    page.fill("#username", USER)
    page.fill("#password", USER_PW)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("[data-testid=logout]")
    assert page.inner_text("[data-testid=username]") == "Alice Test"
    assert page.locator("nav >> text=Authentication").count() == 0  # not an administrator
    session = tab.session()
    assert session["username"] == f"openldap_user://uid={USER},ou=people,{OL_BASE}"
    assert set(admin.call("GET", f"/v3/users/{session['userId']}")["groups"]) == GROUPS

    # Back as the administrator: a group refresh now reads that user from the directory.
    page.click("[data-testid=logout]")
    page = tab.login()
    page.goto(f"{tab.url}/ui/#/auth/openldap")
    page.locator("section[data-provider=openldap] [data-testid=refresh]").click()
    page.locator("[data-testid=refresh-result]").filter(has_text="Refreshed 1 user.").wait_for()
    assert _axe(page) == []  # enabled, with a refresh report
    assert tab.errors == []


def test_api_refusals_shown_in_place_and_secrets_write_only(tab: Tab, stack: PictureStack) -> None:
    page = tab.login()
    page.goto(f"{tab.url}/ui/#/auth/activedirectory")
    card = page.locator("section[data-provider=activedirectory]")
    card.locator("form[aria-label='Active Directory settings']").wait_for()
    assert page.locator("tr[data-provider=activedirectory] a[aria-current=page]").count() == 1
    # Enabling without servers: the API's 422 next to the button, nothing changed.
    card.get_by_role("button", name="Enable Active Directory").click()
    error = card.locator(".card-head .error").filter(has_text="an enabled provider needs")
    error.wait_for()
    assert "servers" in error.inner_text()
    assert _admin(stack).call("GET", "/v3/authconfigs/activedirectory")["enabled"] is False

    # GitHub's fields come from its GET answer; its client secret is write-only.
    page.click("tr[data-provider=github] a")
    github = page.locator("section[data-provider=github]")
    github.locator("form[aria-label='GitHub settings']").wait_for()
    secret = github.get_by_label("Client secret", exact=True)
    assert secret.get_attribute("type") == "password" and secret.input_value() == ""
    stored = _admin(stack).call("GET", "/v3/authconfigs/github")  # test_oidc_login may set it
    assert github.locator("[data-testid=clientSecret-state]").inner_text() == (
        "set" if stored["secretSet"] else "not set")
    host = github.get_by_label("Host (github.com or a GitHub Enterprise host)", exact=True)
    assert host.input_value() == stored["hostname"]
    assert github.get_by_label("HTTPS", exact=True).is_checked() is stored["tlsEnabled"]
    callback = github.locator("[data-testid=callback-url]").inner_text()
    assert callback == f"{tab.url}/v3-public/githubProviders/github/callback"
    assert all("422" in e for e in tab.errors), tab.errors


def test_oidc_configured_and_tested_through_the_page(tab: Tab, stack: PictureStack) -> None:
    """The redirect providers' form: OpenID Connect against the fake issuer (a real process on
    loopback): a wrong client secret fails at the client stage, the right one passes discovery,
    JWKS and client; saved, the secret is "set" and never shown. Left disabled."""
    admin = _admin(stack)
    with running_fake() as fake:
        page = tab.login()
        page.goto(f"{tab.url}/ui/#/auth/oidc")
        card = page.locator("section[data-provider=oidc]")
        form = card.locator("form[aria-label='OpenID Connect settings']")
        form.wait_for()
        form.get_by_label("Issuer URL", exact=True).fill(f"{fake.url}/oidc")
        form.get_by_label("Client ID", exact=True).fill(CLIENT_ID)
        secret = form.get_by_label("Client secret", exact=True)
        secret.fill("not-the-client-secret")
        test = card.locator("form[aria-label='Test the OpenID Connect connection']")
        summary = card.locator("[data-testid=test-summary]")
        test.locator("button[type=submit]").click()
        summary.filter(has_text="Failed at client").wait_for()
        assert card.locator("li.step-ok[data-stage=discovery]").count() == 1
        secret.fill(CLIENT_SECRET)
        test.locator("button[type=submit]").click()
        summary.filter(has_text="Every step succeeded").wait_for()
        assert card.locator("li.step-ok").count() == 3  # discovery, jwks, client
        _save(page, "oidc")
        assert card.locator("[data-testid=clientSecret-state]").inner_text() == "set"
        stored = admin.call("GET", "/v3/authconfigs/oidc")
        assert stored["issuer"] == f"{fake.url}/oidc" and stored["clientId"] == CLIENT_ID
        assert stored["secretSet"] is True and stored["clientSecret"] == ""
        assert stored["enabled"] is False
    assert tab.errors == []
