"""A business review in the browser, on the demo data: the partner's owner plans a monthly review of
Datadog with its people, finds the agenda pre-filled with the partner's figures, writes notes, records
a decision, adds a follow-up that lands on the week's task list, marks the meeting held, and opens the
print view to send to the partner."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from runtime.testing import eventually, unique
from tests.browser.helpers import ARTIFACTS, Platform, shot, sign_in

pytestmark = pytest.mark.timeout(600)


class TestBusinessReview:
    async def test_plan_hold_and_print_a_review(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["manager"])
        await page.goto("/partners")
        await page.get_by_role("link", name="Datadog", exact=True).first.click()
        # The partner page trends the partner's activity and quality month by month.
        activity = page.get_by_test_id("partner-activity")
        assert "Leads" in await activity.inner_text()
        assert await activity.get_by_test_id("chart-activity-leads").count() == 1
        await activity.get_by_label("Lead quality (0-10)").fill("8")
        await activity.get_by_role("button", name="Save the month").click()
        await page.get_by_test_id("notice").wait_for()
        assert "8.0" in await page.get_by_test_id("activity-table").inner_text()
        await page.get_by_test_id("partner-activity").screenshot(path=str(ARTIFACTS / "partner-activity.png"))
        await page.get_by_role("link", name="Business reviews").click()
        await page.wait_for_url(re.compile(r".*/partners/[0-9a-f-]+/reviews$"))
        form = page.get_by_test_id("review-form")
        people = form.get_by_role("checkbox")
        if await people.count():
            await people.first.check()
        await form.get_by_label("Period reviewed").fill("2026-13")
        await form.get_by_role("button", name="Plan the review").click()
        assert "not a month" in await page.locator("main").inner_text()
        await page.get_by_label("Period reviewed").fill("")
        await page.get_by_role("button", name="Plan the review").click()
        await page.wait_for_url(re.compile(r".*/reviews/[0-9a-f-]+\?notice=.*"))
        agenda = page.get_by_test_id("agenda")
        text = await agenda.inner_text()
        for section in ("Revenue won", "Pipeline and open deals", "Commissions, both ways", "Funding",
                        "Certifications due"):
            assert section in text, section
        await shot(page, "review-planned")

        await page.get_by_label("Notes").fill("Datadog grew its pipeline; co-sell with AWS on two deals.")
        await page.get_by_role("button", name="Save the notes").click()
        await page.get_by_test_id("notice").wait_for()
        await page.get_by_label("Decision").fill("Joint webinar in January")
        await page.get_by_role("button", name="Record").click()
        await page.get_by_test_id("notice").wait_for()
        task = unique("Send the MDF plan ")
        follow = page.get_by_test_id("review-follow-ups")
        await follow.get_by_label("Follow-up").fill(task)
        due = (datetime.now(UTC).date() + timedelta(days=5)).isoformat()
        await follow.get_by_label("Due").fill(due)
        await follow.get_by_role("button", name="Add to the week's tasks").click()
        await page.get_by_test_id("notice").wait_for()
        assert task in await page.get_by_test_id("review-follow-ups").inner_text()
        await page.get_by_test_id("held-button").click()
        await page.get_by_test_id("notice").wait_for()
        assert "held" in await page.get_by_test_id("review-status").inner_text()
        await shot(page, "review-held")

        await page.get_by_test_id("print-link").click()
        printed = page.get_by_test_id("review-print")
        await printed.wait_for()
        body = await printed.inner_text()
        assert "Joint webinar in January" in body and task in body and "co-sell with AWS" in body
        await page.emulate_media(media="print")
        await shot(page, "review-print")
        await page.emulate_media(media="screen")

        # The follow-up is on the week's task list (the gateway's task read model catches up).
        async def on_the_week() -> bool:
            await page.goto("/week")
            return task in await page.locator("main").inner_text()

        await eventually(on_the_week, "the follow-up on the week's task list")
        await shot(page, "review-follow-up-on-the-week")

        # Enablement: a required module, a Datadog person certified, the partner's score.
        await page.goto("/enablement")
        form = page.get_by_test_id("module-form")
        module = unique("Co-selling with AWS ")
        await form.get_by_label("Name").fill(module)
        await form.get_by_label("Duration (minutes)").fill("90")
        await form.get_by_label("Required of every partner").check()
        await form.get_by_role("button", name="Add the module").click()
        await page.get_by_test_id("notice").wait_for()
        assert module in await page.get_by_test_id("modules").inner_text()
        await page.goto("/partners")
        await page.get_by_role("link", name="Datadog", exact=True).first.click()
        await page.get_by_role("link", name="Enablement").click()
        record = page.get_by_test_id("record-certification")
        if await record.get_by_label("Person").count():
            await record.get_by_label("Module").select_option(label=f"{module} (pass mark 70%)")
            await record.get_by_label("Assessment taken on").fill(datetime.now(UTC).date().isoformat())
            await record.get_by_label("Assessment score (%)").fill("88")
            await record.get_by_role("button", name="Save").click()
            await page.get_by_test_id("notice").wait_for()
            assert "passed" in await page.get_by_test_id("certifications").inner_text()
            assert "100%" in await page.get_by_test_id("enablement-score").inner_text()
        await shot(page, "enablement-partner")
        await page.goto("/enablement")
        await shot(page, "enablement-overview")
