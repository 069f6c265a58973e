"""Usable by everyone: every page checked with axe-core (WCAG 2.1 A and AA: labels, contrast,
roles) at 1280 px and at 390 px wide with no serious or critical violation, no page wider than
the window at 390 px, a screenshot of each page at both widths, and keyboard use (skip link,
the cluster tabs with the arrow keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.picture_stack import PictureStack
from tests.ui.conftest import Tab, axe_violations, shot

pytestmark = pytest.mark.simcluster
WIDTHS = (1280, 390)
SHOTS_DIR_ENV = "UI_SCREENSHOTS_DIR"  # where the screenshots go as well (docs/ui refreshes)


def _pages(stack: PictureStack) -> list[tuple[str, str, str]]:
    """(name, hash, a selector that is there once the page has its data)."""
    c = stack.cluster_id
    return [
        ("home", "#/", f"article.cluster[data-cluster-id={c}] .badge-active"),
        ("cluster-nodes", f"#/clusters/{c}/nodes", "[data-testid=nodes-table]"),
        ("cluster-events", f"#/clusters/{c}/events", "[data-testid=events-table], "
                                                    "[data-testid=events-empty]"),
        ("cluster-health", f"#/clusters/{c}/health", "[data-testid=health]"),
        ("cluster-projects", f"#/clusters/{c}/projects", "article.project"),
        ("cluster-members", f"#/clusters/{c}/members", "form[aria-label='Add a project member']"),
        ("users", "#/users", "tr[data-user=admin]"),
        ("roletemplates", "#/roletemplates", "table"),
        ("tokens", "#/tokens", "table"),
        ("settings", "#/settings", "[data-testid=audit]"),
        ("auth", "#/auth", "form[aria-label='OpenLDAP settings']"),
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_passes_axe_and_fits(browser: object, stack: PictureStack, tmp_path: Path,
                                        width: int, request: pytest.FixtureRequest) -> None:
    import os
    out_dir = Path(os.environ.get(SHOTS_DIR_ENV, tmp_path))
    tab = Tab(browser, stack, width=width, bypass_csp=True)
    failures: dict[str, list[str]] = {}
    try:
        page = tab.page
        page.goto(f"{tab.url}/ui/")
        page.locator("#username").wait_for()
        failures["login"] = axe_violations(page)
        shot(page, out_dir, f"login-{width}")
        tab.login()
        for name, hash_, ready in _pages(stack):
            page.goto(f"{tab.url}/ui/{hash_}")
            page.locator(ready).first.wait_for()
            failures[name] = axe_violations(page)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                failures[name].append(f"wider than the window by {overflow} px")
            shot(page, out_dir, f"{name}-{width}")
    finally:
        tab.close()
    assert {k: v for k, v in failures.items() if v} == {}


def test_keyboard_skip_link_and_tabs(tab: Tab, stack: PictureStack) -> None:
    page = tab.login()
    page.goto(f"{tab.url}/ui/#/clusters/{stack.cluster_id}/nodes")
    page.locator("[data-testid=nodes-table]").wait_for()
    page.reload()
    page.locator("[data-testid=nodes-table]").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.evaluate("location.hash").endswith("/nodes")  # the router's hash untouched
    page.focus("#tab-nodes")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-events"
    page.keyboard.press("Enter")
    page.locator("#tab-events[aria-selected=true]").wait_for()
    assert tab.errors == []
