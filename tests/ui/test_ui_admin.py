"""Administration and access in a real browser: create a user (a refusal of the API shown in
place), a project, bind the user as its member; the user logs in and sees only that project;
role templates (built-ins and a custom one) and API tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.picture_stack import PictureStack
from tests.ui.conftest import Tab, shot

pytestmark = pytest.mark.simcluster
USER, PASSWORD = "alice", "alice-password-for-ui-1"
PROJECT = "team-a"


def test_user_project_member_sees_only_their_project(browser: object, tab: Tab,
                                                     stack: PictureStack, tmp_path: Path) -> None:
    page = tab.login()
    page.click("nav >> text=Users")
    users = page.locator("form[aria-label='Create a user']")
    users.get_by_label("Username", exact=True).fill(USER)
    users.get_by_label("Password", exact=True).fill(PASSWORD)
    page.click("form[aria-label='Create a user'] button[type=submit]")
    page.locator(f"tr[data-user={USER}]").wait_for()
    # The same again: the API's refusal is shown in the form.
    users.get_by_label("Username", exact=True).fill(USER)
    users.get_by_label("Password", exact=True).fill(PASSWORD)
    page.click("form[aria-label='Create a user'] button[type=submit]")
    error = page.locator("form[aria-label='Create a user'] .error")
    error.wait_for()
    assert USER in error.inner_text()
    shot(page, tmp_path, "users")

    page.goto(f"{tab.url}/ui/#/clusters/{stack.cluster_id}/projects")
    page.fill("form[aria-label='Create a project'] input", PROJECT)
    page.click("form[aria-label='Create a project'] button[type=submit]")
    page.locator("article.project h3", has_text=PROJECT).wait_for()
    page.click("#tab-members")
    form = page.locator("form[aria-label='Add a project member']")
    form.get_by_label("Project", exact=True).select_option(label=PROJECT)
    form.get_by_label("User", exact=True).select_option(label=USER)
    form.get_by_label("Project role", exact=True).select_option("project-member")
    form.locator("button[type=submit]").click()
    page.locator("tr", has_text=PROJECT).filter(has_text=USER).wait_for()

    member = Tab(browser, stack)
    try:
        mpage = member.login(USER, PASSWORD)
        mpage.locator(f"article.cluster[data-cluster-id={stack.cluster_id}]").wait_for()
        assert mpage.locator("nav >> text=Users").count() == 0  # not an administrator
        mpage.goto(f"{member.url}/ui/#/clusters/{stack.cluster_id}/projects")
        mpage.locator("article.project h3", has_text=PROJECT).wait_for()
        titles = mpage.locator("article.project h3").all_inner_texts()
        assert PROJECT in titles and "Default" not in titles and "System" not in titles
        # The member may not switch the authorized endpoint: the API's reason is shown.
        # click(), not check(): the refusal unchecks the box again, which check() would race.
        mpage.locator("[data-testid=ace-switch]").click()
        mpage.locator(".status", has_text="Authorized endpoint:").wait_for()
        assert mpage.locator("[data-testid=ace-switch]").is_checked() is False
    finally:
        member.close()


def test_role_templates_and_tokens(tab: Tab, tmp_path: Path) -> None:
    page = tab.login()
    page.click("nav >> text=Role templates")
    page.locator("tr[data-template=cluster-owner]").wait_for()
    form = page.locator("form[aria-label='Create a role template']")
    form.get_by_label("Name", exact=True).fill("ConfigMap readers")
    form.get_by_label("Resources", exact=True).fill("configmaps")
    form.get_by_label("Verbs", exact=True).fill("get, list")
    form.locator("button[type=submit]").click()
    page.locator("tr", has_text="ConfigMap readers").wait_for()
    shot(page, tmp_path, "roletemplates")
    page.click("nav >> text=API tokens")
    page.locator("tr", has_text="this session").wait_for()
    assert tab.errors == []
