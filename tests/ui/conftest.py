"""Browser tests of the web UI: Debian's chromium driven by Playwright for Python (through its
executable path: Playwright's own browser downloads cannot work here), against real processes:
the stand-in's simulated cluster, the server and a cluster agent (tests/e2e/picture_stack.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.picture_stack import ADMIN_PASSWORD, PictureStack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}
UI_TIMEOUT_MS = 10_000

try:
    from playwright import sync_api as playwright_sync
except ImportError:  # the test extras are not installed: every test here skips
    playwright_sync = None


def need_browser() -> None:
    if playwright_sync is None:
        pytest.skip("playwright is not installed (pip install '.[test]')")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PictureStack]:
    need_browser()
    s = PictureStack(tmp_path_factory.mktemp("ui"), nodes=3)
    try:
        yield s.start()
    finally:
        s.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    need_browser()
    assert playwright_sync is not None
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Tab:
    """One browser context (its own cookies) and page, with the console errors it logged."""

    def __init__(self, browser: Any, stack: PictureStack, width: int = VIEWPORT["width"],
                 bypass_csp: bool = False) -> None:
        assert stack.server is not None
        self.url = stack.server.url
        self.context = browser.new_context(ignore_https_errors=True, accept_downloads=True,
                                           viewport={**VIEWPORT, "width": width},
                                           bypass_csp=bypass_csp)
        self.context.set_default_timeout(UI_TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> Any:
        page = self.page
        page.goto(f"{self.url}/ui/")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("form.login button[type=submit]")
        page.wait_for_selector("[data-testid=logout]")
        return page

    def session(self) -> dict[str, Any]:
        """What the page's script may read about its session (never the token)."""
        result: dict[str, Any] = self.page.evaluate(
            "async () => (await fetch('/ui/session')).json()")
        return result

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, stack: PictureStack) -> Iterator[Tab]:
    t = Tab(browser, stack)
    try:
        yield t
    finally:
        t.close()


def shot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# -- accessibility: axe-core (npm, installed into tests/ui/vendor by scripts/test.sh) ------------
AXE_JS = Path(__file__).parent / "vendor" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_FAILING_IMPACTS = ("serious", "critical")


def axe_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now (the page's context
    must bypass the CSP: axe is injected as an inline script, which the UI's policy forbids)."""
    if not AXE_JS.exists():
        pytest.skip(f"{AXE_JS} is missing (scripts/test.sh installs axe-core with npm)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    found = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
                          ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, "
                          "nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)})))",
                          AXE_TAGS)
    return [f"{v['impact']} {v['id']}: {v['nodes']}" for v in found
            if v["impact"] in AXE_FAILING_IMPACTS]
