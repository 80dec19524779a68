"""The team's week in the browser, on the demo data: a member fills five lines of this week's update
with the keyboard only (key presses besides typed text are counted), a draft survives a closed tab, and
the VP reads the meeting view. Screenshots of the form and the meeting view land in test-artifacts/."""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import expect

from runtime.testing import eventually
from tests.browser.helpers import ARTIFACTS, Platform, shot, sign_in

pytestmark = pytest.mark.timeout(600)
KEY_BUDGET = 40


class Keys:
    """Presses keys on the page and counts them; typed text is typed, not counted."""

    def __init__(self, page) -> None:
        self.page = page
        self.presses: list[str] = []

    async def press(self, key: str) -> None:
        self.presses.append(key)
        await self.page.keyboard.press(key)

    async def type(self, text: str) -> None:
        await self.page.keyboard.type(text)


async def _update(page) -> dict:
    week = await page.get_by_test_id("update-form").get_attribute("data-week")
    r = await page.request.get(f"/api/week/meetings/{week}/updates/me")
    assert r.status == 200, await r.text()
    return json.loads(await r.text())


async def _focused(page) -> str:
    return await page.evaluate("document.activeElement && document.activeElement.className")


class TestTheWeek:
    async def test_a_member_fills_five_lines_by_keyboard_and_submits(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["member"])
        await page.goto("/week")
        lines = page.get_by_test_id("line")
        await lines.first.wait_for()
        suggested = await page.locator("li.line.suggested").count()
        assert suggested >= 3, "the demo member's deals and tasks pre-fill the form"
        assert await page.get_by_test_id("shortcuts").inner_text()
        await shot(page, "week-update-prefilled")
        await page.screenshot(path=str(ARTIFACTS / "week-update-prefilled-top.png"))
        assert await _focused(page) == "f-status", "the first field has the focus on arrival"

        keys = Keys(page)
        # Three pre-filled lines: status by its first letter, then note, next step, due date.
        for i, (status, note, step, due) in enumerate((
                ("a", "legal review of the order form", "send the redlines", "fri"),
                ("o", "PDM confirmed the joint plan", "book the QBR", "+7"),
                ("b", "waiting on the customer's security review", "", ""))):
            if i:
                await keys.press("Tab")  # from the previous line's due date to this line's status
            await keys.press(status)
            await keys.press("Tab")
            await keys.type(note)
            await keys.press("Tab")
            await keys.type(step)
            await keys.press("Tab")
            await keys.type(due)
        # Two lines of its own: Enter adds a line below and puts the cursor in it.
        for label, status, note, step in (("AWS re:Invent booth", "o", "badges ordered", "share the booth rota"),
                                          ("Hiring a partner SA", "a", "two candidates left", "")):
            await keys.press("Enter")
            assert await _focused(page) == "f-label"
            await keys.type(label)
            await keys.press("Tab")
            await keys.press(status)
            await keys.press("Tab")
            await keys.type(note)
            await keys.press("Tab")
            await keys.type(step)
            await keys.press("Tab")
        await keys.press("Control+Enter")
        state = page.get_by_test_id("save-state")
        await expect(state).to_have_text(re.compile(r"^Submitted"), timeout=30_000)
        assert len(keys.presses) <= KEY_BUDGET, keys.presses
        print(f"\nweekly update, five lines by keyboard: {len(keys.presses)} key presses besides typed text "
              f"(budget {KEY_BUDGET}): {' '.join(keys.presses)}")
        await shot(page, "week-update-submitted")

        update = await _update(page)
        assert update["status"] == "submitted"
        by_note = {ln["note"]: ln for ln in update["lines"] if ln["note"]}
        assert by_note["legal review of the order form"]["status"] == "at_risk"
        assert by_note["legal review of the order form"]["task_id"], "a next step becomes a task"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", by_note["legal review of the order form"]["next_step_due"])
        assert by_note["PDM confirmed the joint plan"]["status"] == "on_track"
        assert by_note["waiting on the customer's security review"]["status"] == "blocked"
        assert by_note["badges ordered"]["label"] == "AWS re:Invent booth"
        assert by_note["badges ordered"]["status"] == "on_track"
        assert by_note["two candidates left"]["status"] == "at_risk"
        assert "Submitted" in await state.inner_text()

    async def test_a_draft_survives_a_closed_tab(self, page, platform: Platform):
        member = [line.split() for line in (platform.data_dir / "demo-credentials.txt").read_text().splitlines()
                  if line.startswith("member")][1]
        await sign_in(page, member[1], member[2])
        context = page.context
        tab = await context.new_page()
        await tab.goto("/week")
        await tab.get_by_test_id("line").first.wait_for()
        await tab.locator("li.line .f-note").first.click()
        await tab.keyboard.type("typed just before the tab closed")
        await tab.close()  # at once: the last saves may still be on their way, or never sent
        again = await context.new_page()
        await again.goto("/week")
        await again.get_by_test_id("line").first.wait_for()
        assert await again.locator("li.line .f-note").first.input_value() == "typed just before the tab closed"
        # and the server has it too (the reopened page saves what the closed one had not sent)
        async def on_the_server() -> bool:
            return "typed just before the tab closed" in [ln["note"] for ln in (await _update(again))["lines"]]

        await eventually(on_the_server, "the draft to reach the server", interval=0.25)
        await again.close()

    async def test_the_vp_reads_the_meeting_view(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["admin"])
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Week").click()
        await page.wait_for_url(re.compile(r".*/week$"))
        await page.get_by_role("link", name="Meeting view").click()
        await page.get_by_test_id("who-submitted").wait_for()
        flagged = page.get_by_test_id("flagged")
        assert await flagged.count() >= 2, "tasks carried three times or more are flagged"
        assert "carried 4" in await flagged.first.inner_text()
        await shot(page, "week-meeting-view")
        await page.screenshot(path=str(ARTIFACTS / "week-meeting-view-top.png"))  # what the VP sees first
        await page.emulate_media(media="print")
        assert not await page.locator("header.topbar").is_visible()
        await shot(page, "week-meeting-view-print")
        await page.emulate_media(media="screen")
        await page.goto("/week/meetings")
        rows = page.get_by_test_id("meetings").locator("tbody tr")
        assert await rows.count() >= 5
        await rows.nth(2).get_by_role("link").first.click()
        await page.get_by_test_id("decisions").wait_for()
        assert "closed" in await page.get_by_test_id("meeting-status").inner_text()
        await shot(page, "week-past-meeting")
