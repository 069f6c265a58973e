"""The UI's session in a real browser: login sets an HttpOnly, Secure, SameSite=Strict cookie
the page's script cannot read; every change made with the cookie needs the session's CSRF token
(bearer clients are not affected); the pages carry a strict Content-Security-Policy and log no
console error; logout and a revoked token both end the session."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.picture_stack import PictureStack
from tests.rest import ApiError
from tests.ui.conftest import Tab, shot

pytestmark = pytest.mark.simcluster
BACK_TO_LOGIN_WITHIN_MS = 8_000  # the page checks its session every 5 s


def _get(stack: PictureStack, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    assert stack.server is not None
    ctx = ssl.create_default_context(cafile=str(stack.server.ca_path))
    req = urllib.request.Request(stack.server.url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as e:
        e.close()
        return e.code, dict(e.headers)


def test_login_shows_the_cluster_active_with_its_nodes(tab: Tab, stack: PictureStack,
                                                        tmp_path: Path) -> None:
    page = tab.login()
    card = page.locator(f"article.cluster[data-cluster-id={stack.cluster_id}]")
    card.locator(".badge-active").wait_for()
    assert card.locator("[data-testid=nodes]").inner_text() == "3 / 3"
    assert "v1.32" in card.inner_text()
    path = shot(page, tmp_path, "home")
    assert path.stat().st_size > 0
    assert tab.errors == []


def test_the_session_cookie_is_httponly_secure_strict(tab: Tab) -> None:
    page = tab.login()
    [cookie] = [c for c in tab.context.cookies() if c["name"] == "R_SESS"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert "R_SESS" not in page.evaluate("document.cookie")
    session = tab.session()
    assert session["loggedIn"] and session["username"] == "admin"
    assert cookie["value"] not in str(session)  # the page never sees the token


def test_csrf_token_required_for_changes_made_with_the_cookie(tab: Tab,
                                                              stack: PictureStack) -> None:
    page = tab.login()
    path = f"/v3/clusters/{stack.cluster_id}/authorizedendpoint"
    script = """async ([path, csrf]) => {
        const headers = {"Content-Type": "application/json"};
        if (csrf) headers["X-CSRF-Token"] = csrf;
        const body = JSON.stringify({enabled: false});
        const r = await fetch(path, {method: "PUT", headers, body});
        return [r.status, await r.json()];
    }"""
    status, body = page.evaluate(script, [path, ""])
    assert status == 403 and body["code"] == "CSRFRefused"
    status, _ = page.evaluate(script, [path, "0" * 64])
    assert status == 403
    status, body = page.evaluate(script, [path, tab.session()["csrfToken"]])
    assert status == 200 and body["enabled"] is False
    # A bearer client needs no CSRF token, and a GET with the cookie needs none either.
    assert stack.admin is not None
    assert stack.admin.call("PUT", path, {"enabled": False})["enabled"] is False
    assert page.evaluate("async (p) => (await fetch(p)).status", path) == 200


def test_csp_and_security_headers_on_the_pages(stack: PictureStack) -> None:
    for path in ("/ui/", "/ui/static/js/app.js", "/ui/static/app.css"):
        status, headers = _get(stack, path, {})
        assert status == 200, path
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "unsafe-inline" not in csp and "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
    status, _ = _get(stack, "/ui/static/../app.py", {})
    assert status == 404


def test_login_refused_from_another_origin_and_wrong_password_shown(tab: Tab) -> None:
    page = tab.page
    page.goto(f"{tab.url}/ui/")
    page.fill("#username", "admin")
    page.fill("#password", "not-the-password")
    page.click("form.login button[type=submit]")
    page.locator("#login-error", has_text="wrong username or password").wait_for()
    status = page.evaluate("""async () => (await fetch('/ui/session', {method: 'POST',
        headers: {'Content-Type': 'text/plain'}, body: '{}'})).status""")
    assert status == 415


def test_logout_revokes_the_token(tab: Tab, stack: PictureStack) -> None:
    page = tab.login()
    token_id = tab.session()["tokenId"]
    [cookie] = [c for c in tab.context.cookies() if c["name"] == "R_SESS"]
    page.click("[data-testid=logout]")
    page.locator("form.login").wait_for()
    assert not [c for c in tab.context.cookies() if c["name"] == "R_SESS"]
    assert stack.admin is not None
    with pytest.raises(ApiError) as gone:
        stack.admin.call("GET", f"/v3/tokens/{token_id}")
    assert gone.value.status == 404
    status, _ = _get(stack, "/v3/clusters", {"Cookie": f"R_SESS={cookie['value']}"})
    assert status == 401


def test_a_revoked_token_sends_the_page_back_to_login(tab: Tab, stack: PictureStack) -> None:
    page = tab.login()
    page.locator("article.cluster").first.wait_for()
    assert stack.admin is not None
    stack.admin.call("DELETE", f"/v3/tokens/{tab.session()['tokenId']}")
    page.locator("form.login").wait_for(timeout=BACK_TO_LOGIN_WITHIN_MS)
    assert "session has ended" in page.inner_text("#login-error")
