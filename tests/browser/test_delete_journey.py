"""What a person sees deleting and restoring (issue 16): a deal deleted from its page leaves the board with an
Undo banner, Undo brings it back, the Deleted deals list restores it; a partner is deleted from its page and
restored from Show: Deleted; a partner with money on the commission ledger is refused with the reason. And the
board's tabs name the co-sell pipeline for every hyperscaler; the dashboard's quarter chart has weekly points
and a pace line that reads."""

from __future__ import annotations

import re

import pytest

from runtime.testing import unique
from tests.browser.helpers import ARTIFACTS, Platform, shot, sign_in

# The first browser test of a session waits for the demo seed, which takes minutes on a loaded machine.
pytestmark = pytest.mark.timeout(1500)


async def _post(page, path: str, body: dict) -> dict:
    """An API call as the signed-in person (the session cookie and the CSRF token /api/me gives)."""
    csrf = (await (await page.request.get("/api/me")).json())["csrf_token"]
    response = await page.request.post(path, data=body, headers={"x-csrf-token": csrf})
    assert response.status == 201, await response.text()
    return await response.json()


class TestDeleteAndRestore:
    async def test_a_deal_is_deleted_undone_deleted_again_and_restored(self, page, platform: Platform):
        email, password = platform.credentials()["member"]
        await sign_in(page, email, password)
        name = unique("Mistyped deal ")
        deal = await _post(page, "/api/opportunities", {"name": name, "customer": "Initech", "amount": "4200",
                                                         "owner": email})
        await page.goto(f"/opportunities/{deal['id']}")
        card = page.get_by_test_id("delete-deal")
        await card.locator("summary").click()
        await shot(page, "delete-deal-confirm")
        await card.get_by_test_id("confirm-delete").click()
        await page.wait_for_url(re.compile(r".*/pipeline\?.*deleted="))
        banner = page.get_by_test_id("undo-banner")
        assert name in await banner.inner_text() and "30 days" in await banner.inner_text()
        assert await page.get_by_role("link", name=name).count() == 0, "gone from the board"
        await shot(page, "delete-deal-undo-banner")
        await banner.get_by_test_id("undo").click()
        await page.wait_for_url(re.compile(rf".*/opportunities/{deal['id']}\?notice=Restored"))
        assert await page.get_by_test_id("deleted-banner").count() == 0

        await page.get_by_test_id("delete-deal").locator("summary").click()
        await page.get_by_test_id("confirm-delete").click()
        await page.wait_for_url(re.compile(r".*/pipeline\?.*deleted="))
        await page.get_by_test_id("undo-banner").get_by_role("link", name="Deleted deals").click()
        row = page.get_by_test_id("deleted-table").locator("tr", has_text=name)
        await row.wait_for()
        await shot(page, "deleted-deals-list")
        await row.get_by_role("button", name="Restore").click()
        await page.wait_for_url(re.compile(rf".*/opportunities/{deal['id']}\?notice=Restored"))
        await shot(page, "deal-restored")

    async def test_a_partner_is_deleted_and_restored_and_one_with_money_is_refused(self, page, platform: Platform):
        email, password = platform.credentials()["manager"]
        await sign_in(page, email, password)
        name = unique("Duplicate partner ")
        partner = await _post(page, "/api/partners", {"name": name, "type": "isv"})
        await page.goto(f"/partners/{partner['id']}")
        card = page.get_by_test_id("remove-partner")
        await card.locator("summary").click()
        await shot(page, "partner-archive-or-delete")
        await card.get_by_test_id("confirm-delete").click()
        await page.wait_for_url(re.compile(r".*/partners\?removed="))
        assert name in await page.get_by_test_id("undo-banner").inner_text()
        await shot(page, "partner-deleted-undo-banner")
        await page.get_by_label("Show").select_option("deleted")
        await page.wait_for_url(re.compile(r".*state=deleted"))
        row = page.get_by_test_id("partner-table").locator("tr", has_text=name)
        await row.wait_for()
        await shot(page, "partners-deleted-filter")
        await row.get_by_role("button", name="Restore").click()
        await page.wait_for_url(re.compile(rf".*/partners/{partner['id']}\?notice=Restored"))

        # A demo partner with commissions on the ledger: refused, with the reason on its page.
        await page.goto("/search?q=snowflake")
        await page.get_by_test_id("results-partners").get_by_role("link").first.click()
        await page.wait_for_url(re.compile(r".*/partners/[0-9a-f-]+$"))
        await page.get_by_test_id("remove-partner").locator("summary").click()
        await page.get_by_test_id("confirm-delete").click()
        error = page.get_by_test_id("error")
        await error.wait_for()
        assert "commission ledger" in await error.inner_text() and "archive it instead" in await error.inner_text()
        await shot(page, "partner-with-money-refused")


class TestLabelsAndChart:
    async def test_board_tabs_and_the_weekly_quarter_chart(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["viewer"])
        await page.goto("/pipeline")
        tabs = await page.get_by_role("navigation", name="Pipelines").get_by_role("link").all_inner_texts()
        assert "Co-sell" in tabs and not any("AWS" in t for t in tabs), tabs
        await page.goto("/")
        chart = page.get_by_test_id("chart-trend")
        await chart.wait_for()
        assert await chart.locator("circle.point").count() > 3, "a point per week, not per month"
        assert (await page.get_by_test_id("pace-today").text_content() or "").startswith("pace $")
        reading = await page.get_by_test_id("pace-reading").inner_text()
        assert "the pace to the target is" in reading and re.search(r"(behind|ahead of|on) pace", reading)
        await chart.scroll_into_view_if_needed()
        await shot(page, "dashboard-weekly-chart")
        ARTIFACTS.mkdir(exist_ok=True)
        await chart.screenshot(path=str(ARTIFACTS / "quarter-chart.png"))
