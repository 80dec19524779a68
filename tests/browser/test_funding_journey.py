"""Funding in the browser, on the demo data: a member opens the tracker, creates a fund request through
the form (a refused field is shown beside it and fixed), walks it through AWS's stages to pre-approval
with the approved amount, sees its deadlines with days left, adds a milestone and submits its claim (the
request enters Cash Claim); then the goals page and the dashboard's funding and goals cards."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from runtime.testing import unique
from tests.browser.conftest import Platform, money, shot, sign_in

pytestmark = pytest.mark.timeout(600)


class TestFunding:
    async def test_a_fund_request_from_draft_to_its_claim(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["member"])
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Funding").click()
        await page.wait_for_url(re.compile(r".*/funding$"))
        board = page.get_by_test_id("funding-board")
        await board.wait_for()
        assert await board.locator(".deal").count() >= 8, "the demo has requests in every open stage"
        assert "expires without a claim" in await page.get_by_test_id("funding-deadlines").inner_text()
        await shot(page, "funding-tracker")

        await page.get_by_text("New fund request").click()
        form = page.get_by_test_id("funding-form")
        await form.locator("#f-program").select_option(value="mdf")
        await form.locator("#f-requested").fill("12500.50")
        today = datetime.now(UTC).date()
        await form.locator("#f-activity_start").fill((today - timedelta(days=40)).isoformat())
        await form.locator("#f-activity_end").fill((today - timedelta(days=10)).isoformat())
        await form.get_by_role("button", name="Create draft").click()
        error = page.locator('[data-field="title"]')
        await error.wait_for()
        assert "Required" in await error.inner_text()
        assert await page.locator("#f-requested").input_value() == "12500.50", "what was typed stays"
        await shot(page, "funding-form-refused")
        title = f"Browser MDF {unique('')}"
        await page.get_by_test_id("funding-form").locator("#f-title").fill(title)
        await page.get_by_test_id("funding-form").get_by_role("button", name="Create draft").click()
        await page.get_by_test_id("request-title").wait_for()
        assert await page.get_by_test_id("request-title").inner_text() == title
        assert await page.get_by_test_id("request-stage").inner_text() == "Created (draft)"

        for label in ("Submitted", "Business Approval", "Finance Approval"):
            move = page.get_by_test_id("move-form")
            await move.locator("#f-to_stage").select_option(label=label)
            await move.get_by_role("button", name="Move").click()
            await page.get_by_test_id("notice").wait_for()
            assert await page.get_by_test_id("request-stage").inner_text() == label
        move = page.get_by_test_id("move-form")
        await move.locator("#f-to_stage").select_option(label="Pre-Approval")
        await move.locator("#f-approved").fill("12000")
        await move.get_by_role("button", name="Move").click()
        await page.get_by_test_id("notice").wait_for()
        assert money(await page.get_by_test_id("approved").inner_text()) == 12000
        deadlines = await page.get_by_test_id("request-deadlines").inner_text()
        assert "expires without a claim" in deadlines and re.search(r"in (19|20|21) days", deadlines), deadlines
        await shot(page, "funding-request-pre-approved")

        milestone = page.get_by_test_id("milestone-form")
        await milestone.locator("#f-name").fill("Event delivered")
        await milestone.locator("#f-end_date").fill((today - timedelta(days=10)).isoformat())
        await milestone.locator("#f-amount").fill("12000")
        await milestone.get_by_role("button", name="Add milestone").click()
        await page.get_by_test_id("milestone").first.wait_for()
        await page.get_by_test_id("milestones").get_by_role("button", name="Update claim").click()
        await page.get_by_test_id("notice").wait_for()
        assert await page.get_by_test_id("request-stage").inner_text() == "Cash Claim"
        assert await page.get_by_test_id("claim-status").first.inner_text() == "submitted"
        assert money(await page.get_by_test_id("claimed").inner_text()) == 12000
        history = await page.get_by_test_id("history").inner_text()
        assert "Pre-Approval" in history and "claim for Event delivered submitted" in history
        await shot(page, "funding-request-cash-claim")

    async def test_goals_competencies_and_the_dashboard_cards(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["viewer"])
        cards = page.get_by_test_id("funding-card")
        await cards.wait_for()
        assert "created in calendar" in await cards.inner_text()
        assert "AWS" in await page.get_by_test_id("goals-card").inner_text()
        await shot(page, "funding-dashboard-cards")
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Goals").click()
        await page.get_by_test_id("goals-aws").wait_for()
        assert await page.get_by_test_id("goal-progress").count() >= 6
        assert "renewal due" in await page.get_by_test_id("competencies").inner_text()
        await shot(page, "goals-page")
        competencies = page.get_by_test_id("competencies")
        await competencies.get_by_role("link", name="AWS Migration Consulting Competency").click()
        await page.get_by_test_id("checklist").wait_for()
        assert "4 AWS Certified Solutions Architects" in await page.get_by_test_id("checklist").inner_text()
        await shot(page, "competency-page")
