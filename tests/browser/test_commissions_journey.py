"""Commissions in the browser, on the demo data: a manager reads the agreements, sets one up through the
form (a refused rate is shown beside its field and fixed), approves an entry on the ledger page and
reads a partner's statement for this quarter."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.async_api import expect

from contracts.quarters import Quarter
from runtime.testing import unique
from tests.browser.helpers import Platform, money, shot, sign_in

pytestmark = pytest.mark.timeout(600)


def this_quarter() -> str:
    return Quarter.calendar_of(datetime.now(UTC).date()).label


class TestCommissions:
    async def test_a_manager_sets_up_an_agreement_approves_and_reads_a_statement(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["manager"])
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Commissions").click()
        await page.wait_for_url(re.compile(r".*/commissions$"))
        agreements = page.get_by_test_id("agreements")
        await agreements.get_by_role("link", name=re.compile("Resale share")).first.wait_for()
        assert await agreements.locator("tbody tr").count() >= 10
        await shot(page, "commissions-overview")

        await page.get_by_test_id("new-agreement").click()
        form = page.get_by_test_id("agreement-form")
        okta = await form.locator("#f-partner_id option", has_text="Okta (").first.get_attribute("value")
        await form.locator("#f-partner_id").select_option(value=okta)
        name = f"Okta referral {unique('')}"
        await form.get_by_label("Agreement name").fill(name)
        await form.get_by_label("Flat rate, %").fill("120")
        await form.get_by_role("button", name="Create agreement").click()
        error = page.locator('[data-field="rate"]')
        await error.wait_for()
        assert "outside 0-100%" in await error.inner_text()
        assert await page.get_by_label("Agreement name").input_value() == name, "what was typed stays"
        await shot(page, "commissions-form-refused")
        await page.get_by_label("Flat rate, %").fill("15")
        await page.get_by_role("button", name="Create agreement").click()
        await page.get_by_test_id("agreement-name").wait_for()
        assert await page.get_by_test_id("agreement-name").inner_text() == name
        assert "15% of the deal amount when won, once" in await page.get_by_test_id("versions").inner_text()

        await page.goto("/commissions/ledger?status=accrued")
        ledger = page.get_by_test_id("ledger")
        first = ledger.locator('input[name="entry_id"]').first
        await first.check()
        await page.get_by_test_id("approve").click()
        notice = page.get_by_test_id("notice")
        await notice.wait_for()
        assert "1 entries approved" in await notice.inner_text()

        await page.goto("/commissions/statement")
        await page.get_by_label("Partner").select_option(label="Snowflake")
        await page.get_by_label("Period").fill(this_quarter())
        await page.get_by_role("button", name="Show").click()
        statement = page.get_by_test_id("statement")
        await statement.wait_for()
        text = await statement.inner_text()
        assert "Opening balance" in text and "Closing balance" in text and "Adjustments" in text
        assert await page.get_by_test_id("csv").get_attribute("href") is not None
        await shot(page, "commissions-statement")

    async def test_a_manager_launches_a_spif_and_sees_what_it_pays(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["manager"])
        await page.goto("/commissions")
        await page.get_by_test_id("new-spif").click()
        form = page.get_by_test_id("agreement-form")
        assert await form.get_by_label("SPIF: a fixed bonus per qualifying deal").is_checked()
        assert await form.get_by_test_id("spif-rule").is_visible()
        # The form's script hides the other kinds' fields once it has run: wait for it (under load the
        # page may be read before it has).
        await expect(form.get_by_label("Flat rate, %")).to_be_hidden()  # only the chosen kind's fields show
        snowflake = await form.locator("#f-partner_id option", has_text="Snowflake (").first.get_attribute("value")
        await form.locator("#f-partner_id").select_option(value=snowflake)
        name = f"Snowflake SPIF {unique('')}"
        await form.get_by_label("Agreement name").fill(name)
        # The window: the demo's last year of wins up to the end of this quarter (pre-filled as its end).
        start = Quarter.calendar_of(datetime.now(UTC).date()).range()[0].replace(year=datetime.now(UTC).year - 1)
        await form.get_by_label("In force from").fill(start.isoformat())
        await form.get_by_role("button", name="Create agreement").click()
        error = page.locator('[data-field="bonus"]')
        await error.wait_for()
        assert "Required" in await error.inner_text()
        await shot(page, "commissions-spif-refused")
        await page.get_by_label("Bonus per qualifying deal", exact=True).fill("250")
        await page.get_by_label("Smallest deal amount that qualifies", exact=True).fill("5000")
        await page.get_by_role("button", name="Create agreement").click()
        await page.get_by_test_id("agreement-name").wait_for()
        assert "SPIF: 250.00 per deal won of at least 5,000.00" in await page.get_by_test_id("versions").inner_text()

        await page.goto("/commissions")
        row = page.get_by_test_id("spif-row").filter(has_text=name)
        await row.wait_for()
        cells = [await c.inner_text() for c in await row.locator("td").all()]
        deals, earned = int(cells[5]), money(cells[6])
        assert deals >= 1 and earned == deals * 250, cells
        assert cells[4] == "running"
        await row.scroll_into_view_if_needed()
        await shot(page, "commissions-spifs")
