"""Relationships in a real browser, on the demo platform: a touch logged from the keyboard in seconds
(actions counted, time measured), the heatmap drilled into, the attention list, the dashboard card.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import Platform, shot, sign_in

# The platform starts with its demo data (a few minutes on a busy machine) before the first test.
pytestmark = pytest.mark.timeout(600)


async def _member(page, platform: Platform) -> None:
    email, password = platform.credentials()["member"]
    await sign_in(page, email, password)


class TestQuickLog:
    async def test_a_touch_is_logged_from_the_keyboard_in_seconds(self, page, platform: Platform):
        await _member(page, platform)
        await page.goto("/pipeline")  # any page: the dialog is on every page
        # A crucial contact going cold soonest whose name no other contact has (demo names can repeat).
        contacts = await page.request.get("/api/contacts?crucial=true&sort=cold_at&limit=20")
        target = None
        for candidate in (await contacts.json())["items"]:
            same = await (await page.request.get(f"/api/contacts?limit=2&q={candidate['name']}")).json()
            if same["total"] == 1:
                target = candidate
                break
        assert target is not None
        before = target["strength"]["score"]
        query = target["name"]  # unique: the search finds it alone, already highlighted
        keys = 0
        started = time.monotonic()
        await page.keyboard.press("l")
        keys += 1
        await page.get_by_role("combobox", name="With whom").wait_for()
        await page.keyboard.type(query)
        # Wait until the search for the whole name has answered (earlier letters answer first).
        await page.get_by_test_id("ql-option").filter(has_text=target["name"] + " — ").first.wait_for()
        await page.wait_for_function("document.querySelectorAll('[data-testid=ql-option]').length === 1")
        await page.keyboard.press("Enter")
        keys += 1
        await page.get_by_test_id("ql-chip").wait_for()
        await page.keyboard.press("Alt+c")           # a call
        keys += 1
        await page.keyboard.press("Enter")           # empty search: log it
        keys += 1
        await page.get_by_test_id("quicklog-toast").wait_for()
        elapsed = time.monotonic() - started
        toast = await page.get_by_test_id("quicklog-toast").inner_text()
        assert toast.startswith("Logged call with " + target["name"])
        await shot(page, "relationships-quicklog-done")
        print(f"\nquick-log: {keys} key presses besides the {len(query)} typed letters, {elapsed:.2f} s")
        # The "under ten seconds" of the brief is the person's effort, which the key count measures; the wall
        # time is printed, not asserted (it says more about the machine's load than about the page).
        assert keys == 4  # l, Enter (pick), Alt+C (a call), Enter (log) — besides typing the name
        after = await (await page.request.get(f"/api/contacts/{target['id']}")).json()
        assert after["contact"]["strength"]["score"] > before
        assert after["interactions"][0]["kind"] == "call"

    async def test_the_dialog_says_what_is_missing(self, page, platform: Platform):
        await _member(page, platform)
        await page.keyboard.press("l")
        await page.get_by_role("combobox", name="With whom").wait_for()
        await page.keyboard.press("Enter")
        assert await page.locator("#ql-error").inner_text() == "Pick at least one contact."
        await page.keyboard.press("Escape")
        assert not await page.locator("#quicklog").is_visible()
        await page.goto("/contacts")
        await page.get_by_label("Search").click()
        await page.keyboard.press("l")               # typing in a field does not open the dialog
        assert not await page.locator("#quicklog").is_visible()


class TestHeatmapAndAttention:
    async def test_the_heatmap_drills_down_to_a_contact(self, page, platform: Platform):
        email, password = platform.credentials()["admin"]
        await sign_in(page, email, password)
        await page.goto("/relationships")
        rows = page.locator("g.heat-row")
        assert await rows.count() >= 3
        first_label = await rows.first.locator("text.label").text_content() or ""
        assert first_label.startswith("Amazon Web Services")
        await shot(page, "relationships-heatmap")
        cell = rows.first.get_by_test_id("heat-cell").first
        await cell.click()
        await page.wait_for_url(re.compile(r".*/contacts/[0-9a-f-]+$"))
        await page.get_by_test_id("contact-strength").wait_for()
        assert await page.get_by_test_id("chart-strength").count() == 1
        await shot(page, "relationships-contact")
        await page.goto("/relationships?group=owner")
        assert await page.locator("g.heat-row").count() >= 3

    async def test_the_vp_sees_the_teams_week_with_reasons_and_what_falls_outside(self, page, platform: Platform):
        email, password = platform.credentials()["admin"]
        await sign_in(page, email, password)
        await page.goto("/attention")
        weeks = page.get_by_test_id("member-week")
        assert await weeks.count() >= 2
        reasons = await page.locator("ol.attention .reason").all_inner_texts()
        assert any(re.search(r"at stake; strength \d+, cold in \d+ days?; last touch \d+ days ago", r) for r in reasons)
        assert await page.get_by_test_id("outside-capacity").count() >= 1
        await shot(page, "relationships-attention")
        await page.goto("/")
        card = page.get_by_test_id("relationships")
        await card.get_by_test_id("chart-relationships").wait_for()
        assert await card.get_by_test_id("crucial-cooling").locator("li").count() >= 3
        await shot(page, "relationships-dashboard")
