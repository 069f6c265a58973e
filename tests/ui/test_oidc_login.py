"""The redirect logins clicked through in a real browser: OpenID Connect and GitHub configured
over the REST API against the fake authorization server (``tests/auth_providers/fake_oauth.py``,
a real process on loopback), the login page's button clicked, the browser sent to the provider's
authorize page (the fake approves at once, for the user it was told to log in: no form) and back
through the server's callback to the UI, logged in as that user with the session cookie
HttpOnly, Secure and SameSite=Strict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.auth_providers.fake_oauth import CLIENT_ID, CLIENT_SECRET
from tests.auth_providers.test_oidc_direct_path import Fake, oidc_config, running_fake
from tests.e2e.picture_stack import PictureStack
from tests.rest import Rest
from tests.ui.conftest import Tab, shot

pytestmark = pytest.mark.simcluster
LONG_REFRESH_S = 86_400  # no refresh runs during these tests
PROVIDERS = ("oidc", "github")


def github_config(fake: Fake) -> dict[str, Any]:
    return {"enabled": True, "hostname": fake.url.removeprefix("http://"), "tlsEnabled": False,
            "apiPath": "/api/v3", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
            "refreshIntervalS": LONG_REFRESH_S}


def _admin(stack: PictureStack) -> Rest:
    assert stack.admin is not None
    return stack.admin


@pytest.fixture(scope="module")
def fake(stack: PictureStack) -> Iterator[Fake]:
    """The fake provider, with OIDC and GitHub turned on for this module only: the other UI
    tests (screenshots, accessibility) see the login page as it was, and not these users."""
    admin = _admin(stack)
    before = {u["id"] for u in admin.call("GET", "/v3/users")["data"]}
    with running_fake() as f:
        admin.call("PUT", "/v3/authconfigs/oidc", oidc_config(f, LONG_REFRESH_S))
        admin.call("PUT", "/v3/authconfigs/github", github_config(f))
        try:
            yield f
        finally:
            for provider in PROVIDERS:
                admin.call("PUT", f"/v3/authconfigs/{provider}", {"enabled": False})
            for u in admin.call("GET", "/v3/users")["data"]:
                if u["id"] not in before:
                    admin.call("DELETE", f"/v3/users/{u['id']}")


def click_through(tab: Tab, fake: Fake, provider: str, user: str) -> tuple[Any, list[str]]:
    """Open the login page, click the provider's button, and come back logged in; the URLs the
    browser navigated to on the way."""
    fake.post("/test/login_as", {"user": user})
    page = tab.page
    went: list[str] = []
    page.on("framenavigated", lambda frame: went.append(frame.url)
            if frame == page.main_frame else None)
    page.on("request", lambda req: went.append(req.url)
            if req.is_navigation_request() else None)
    page.goto(f"{tab.url}/ui/")
    page.locator("form.login").wait_for()
    button = page.locator(f"a[data-provider={provider}]")
    button.wait_for()
    button.click()
    page.wait_for_selector("[data-testid=logout]")
    return page, went


def session_cookie(tab: Tab) -> dict[str, Any]:
    [cookie] = [c for c in tab.context.cookies() if c["name"] == "R_SESS"]
    return dict(cookie)


def test_oidc_login_button_through_the_issuer_and_back_logged_in(
        tab: Tab, fake: Fake, stack: PictureStack, tmp_path: Path) -> None:
    page, went = click_through(tab, fake, "oidc", "alice")
    assert page.locator("a[data-provider=oidc]").count() == 0  # the login form is gone
    assert page.inner_text("[data-testid=username]") == "alice"
    # The real redirects: the server's authorize, the issuer's authorize (PKCE), the callback.
    assert any(u.startswith(f"{tab.url}/v3-public/oidcProviders/oidc/authorize") for u in went)
    at_issuer = [u for u in went if u.startswith(f"{fake.url}/oidc/authorize?")]
    assert at_issuer and "code_challenge_method=S256" in at_issuer[0], went
    assert any(u.startswith(f"{tab.url}/v3-public/oidcProviders/oidc/callback?") for u in went)
    assert page.url.startswith(f"{tab.url}/ui/")
    cookie = session_cookie(tab)
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert "R_SESS" not in page.evaluate("document.cookie")
    session = tab.session()
    assert session["loggedIn"] and session["username"] == "oidc_user://sub-alice"
    assert session["isAdmin"] is False
    assert cookie["value"] not in str(session)
    # The state cookie of the login was cleared by the callback.
    assert not [c for c in tab.context.cookies() if c["name"] != "R_SESS"
                and "oidc" in c.get("path", "")]
    user = _admin(stack).call("GET", f"/v3/users/{session['userId']}")
    assert sorted(user["groups"]) == ["oidc_group://devs", "oidc_group://staff"]
    shot(page, tmp_path, "oidc-logged-in")
    assert tab.errors == []


def test_github_login_button_through_github_and_back_logged_in(
        tab: Tab, fake: Fake, stack: PictureStack) -> None:
    page, went = click_through(tab, fake, "github", "bob")
    assert page.inner_text("[data-testid=username]") == "Bob"
    assert any(u.startswith(f"{fake.url}/login/oauth/authorize?") for u in went), went
    cookie = session_cookie(tab)
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    session = tab.session()
    assert session["loggedIn"] and session["username"] == "github_user://1002"
    user = _admin(stack).call("GET", f"/v3/users/{session['userId']}")
    assert sorted(user["groups"]) == ["github_org://502", "github_team://702"]
    # Logging out ends it: back to the login page with both buttons.
    page.click("[data-testid=logout]")
    page.locator("a[data-provider=github]").wait_for()
    assert page.locator("a[data-provider=oidc]").count() == 1
    assert not [c for c in tab.context.cookies() if c["name"] == "R_SESS"]
    assert tab.errors == []
