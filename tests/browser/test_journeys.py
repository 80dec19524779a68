"""What a person does in the browser: sign in, read the dashboard's charts, add a partner and a
deal, move the deal across stages and see the dashboard follow; a viewer who cannot edit; a wrong
password. Screenshots of the main pages land in test-artifacts/."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from runtime.testing import eventually, unique
from tests.browser.helpers import TABLET, Platform, money, shot, sign_in

pytestmark = pytest.mark.timeout(600)


async def _bars(page, chart: str) -> list[dict]:
    """The bars of a chart as the browser laid them out (not as the HTML says)."""
    rects = page.locator(f'[data-testid="chart-{chart}"] svg rect.bar')
    boxes = []
    for i in range(await rects.count()):
        box = await rects.nth(i).bounding_box()
        assert box is not None, "a bar that is not rendered"
        boxes.append(box)
    return boxes


async def _figure(page, testid: str) -> Decimal:
    return money(await page.get_by_test_id(testid).inner_text())


async def _dashboard_until(page, testid: str, predicate, what: str) -> Decimal:
    """Reload the dashboard until a figure satisfies `predicate`: read models follow events, which
    arrive a moment after the change that caused them."""
    async def shown() -> list[Decimal]:
        await page.goto("/")
        if await page.get_by_test_id(testid).count():
            value = await _figure(page, testid)
            if predicate(value):
                return [value]  # a list, so a figure of 0 that satisfies the predicate counts as shown
        return []

    return (await eventually(shown, f"the dashboard to show {what}", interval=0.25))[0]


class TestSignIn:
    async def test_a_wrong_password_is_refused(self, page, platform: Platform):
        email, _ = platform.credentials()["admin"]
        await page.goto("/")
        assert "/signin" in page.url, "an anonymous visitor is sent to sign in"
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill("not the password")
        await page.get_by_role("button", name="Sign in").click()
        error = page.get_by_test_id("signin-error")
        await error.wait_for()
        assert "Wrong email or password" in await error.inner_text()
        assert "/signin" in page.url
        await shot(page, "signin-refused")

    async def test_the_vp_signs_in_and_sees_the_dashboard_charts_drawn(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["admin"])
        assert await page.get_by_role("heading", name="Department dashboard").is_visible()
        nav = page.get_by_role("navigation", name="Main")
        for item in ("Dashboard", "Pipeline", "Partners", "Team", "Admin"):
            assert await nav.get_by_role("link", name=item).is_visible()
        # The demo partners are drawn as bars with real height, one per partner type in use.
        bars = await _bars(page, "partners-by-type")
        assert len(bars) >= 3 and all(b["height"] > 0 and b["width"] > 0 for b in bars)
        tallest = max(bars, key=lambda b: b["height"])
        assert tallest["height"] > 20, "the biggest type fills a good part of the chart"
        # The demo deals: every pipeline chart is drawn with real geometry.
        await page.get_by_test_id("closed-won").wait_for()
        closed = await page.locator('[data-testid="chart-attainment"] rect.closed').bounding_box()
        target = await page.locator('[data-testid="chart-attainment"] line.target').bounding_box()
        assert closed and closed["width"] > 0 and target and target["height"] > 0
        stages = page.locator('[data-testid="chart-stages"] rect.stage-amount')
        assert await stages.count() >= 3
        for i in range(await stages.count()):
            box = await stages.nth(i).bounding_box()
            assert box is not None and box["height"] > 0
        assert await page.locator('[data-testid="chart-trend"] path.line').count() == 1
        assert any(b["height"] > 0 for b in await _bars(page, "arr-by-type"))
        assert any(b["height"] > 0 for b in await _bars(page, "launches"))
        assert await page.get_by_role("link", name="REST API (OpenAPI)").is_visible()
        await shot(page, "dashboard")


class TestDealJourney:
    async def test_a_member_adds_a_partner_and_a_deal_moves_it_and_the_dashboard_follows(self, page,
                                                                                          platform: Platform):
        await sign_in(page, *platform.credentials()["member"])
        await page.goto("/")
        closed = page.get_by_test_id("closed-won")
        # Without any deal yet the dashboard shows its empty state instead of figures.
        before_won = await _figure(page, "closed-won") if await closed.count() else Decimal(0)
        if not await closed.count():
            assert await page.get_by_test_id("empty-pipeline").first.is_visible()

        # A partner, with the server's validation error shown beside the field first.
        await page.goto("/partners")
        await page.get_by_text("Add a partner").click()  # the form folds away once partners exist
        form = page.get_by_test_id("partner-form")
        await form.get_by_role("button", name="Add partner").click()
        assert await page.locator('[data-field="name"]').inner_text() == "Required."
        partner = unique("Acme Data ")
        form = page.get_by_test_id("partner-form")
        await form.get_by_label("Name").fill(partner)
        await form.get_by_label("Type").select_option("isv")
        await form.get_by_role("button", name="Add partner").click()
        await page.get_by_test_id("partner-name").wait_for()
        assert await page.get_by_test_id("partner-name").inner_text() == partner
        partner_id = re.search(r"/partners/([0-9a-f-]{36})", page.url)[1]
        await shot(page, "partner")

        # A deal for that partner; a bad amount is refused beside its field, then corrected.
        await page.goto("/opportunities/new")
        deal = unique("Acme renewal ")
        await page.get_by_label("Deal name").fill(deal)
        await page.get_by_label("Customer").fill("Acme Corp")
        await page.get_by_label("Partner").select_option(label=f"{partner} (isv)")
        await page.get_by_label("Amount").fill("forty thousand")
        await page.get_by_role("button", name="Add deal").click()
        assert "a number" in await page.locator('[data-field="amount"]').inner_text()
        await page.get_by_label("Amount").fill("48000")
        await page.get_by_role("button", name="Add deal").click()
        await page.get_by_test_id("deal-name").wait_for()
        assert await page.get_by_test_id("deal-name").inner_text() == deal
        assert "Lead" in await page.get_by_test_id("deal-stage").inner_text()

        # On the board, narrowed to the new partner: one stage on with the keyboard, then dragged to Won.
        await page.goto("/pipeline")
        await page.get_by_label("Partner").select_option(label=partner)
        async with page.expect_navigation():
            await page.get_by_role("button", name="Filter").click()
        assert partner_id in page.url
        card = page.locator(f'[data-testid="deal"][data-name="{deal}"]')
        await card.focus()
        async with page.expect_navigation():
            await page.keyboard.press("]")
        assert f"Moved {deal} to Qualified" in await page.get_by_test_id("notice").inner_text()
        card = page.get_by_test_id("column-qualified").locator(f'[data-name="{deal}"]')
        assert await card.count() == 1
        async with page.expect_navigation():
            await card.drag_to(page.get_by_test_id("column-won"))
        assert "to Won" in await page.get_by_test_id("notice").inner_text()
        assert await page.get_by_test_id("column-won").locator(f'[data-name="{deal}"]').count() == 1
        await shot(page, "pipeline")

        # The dashboard counts it as closed won this quarter.
        after = await _dashboard_until(page, "closed-won", lambda v: v == before_won + 48000,
                                       "the won deal in closed-won")
        assert after == before_won + 48000
        bars = await _bars(page, "arr-by-type")
        assert bars and all(b["height"] > 0 for b in bars)
        await shot(page, "dashboard-after-win")

        # The deal's page tells its story.
        await page.goto(f"/pipeline?partner={partner_id}")
        await page.get_by_test_id("column-won").get_by_role("link", name=deal).click()
        history = await page.get_by_test_id("stage-history").inner_text()
        assert "Won" in history and "Qualified" in history and "Lead" in history
        await shot(page, "opportunity")


class TestViewer:
    async def test_a_viewer_sees_no_edit_controls_and_a_forced_post_is_refused(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["viewer"])
        await page.goto("/pipeline")
        assert await page.get_by_test_id("add-deal").count() == 0
        assert await page.locator("form.move").count() == 0
        assert await page.locator('.deal[draggable="true"]').count() == 0
        await page.goto("/partners")
        assert await page.get_by_test_id("partner-form").count() == 0
        csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
        forced = await page.request.post("/partners", form={"name": unique("Viewer "), "type": "isv",
                                                            "csrf_token": csrf})
        assert forced.status == 403
        api = await page.request.post("/api/partners", data={"name": unique("Viewer "), "type": "isv"},
                                      headers={"x-csrf-token": csrf})
        assert api.status == 403
        await page.goto("/admin")
        assert "Not allowed" in await page.content()


class TestScreens:
    async def test_main_pages_render_at_laptop_and_tablet_widths(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["admin"])
        for path, name in (("/", "dashboard"), ("/pipeline", "pipeline"), ("/partners", "partners"),
                           ("/team", "team"), ("/admin", "admin"), ("/admin/audit", "audit")):
            response = await page.goto(path)
            assert response is not None and response.status == 200, path
            await shot(page, f"{name}-laptop")
            await page.set_viewport_size(TABLET)
            # Nothing wider than the screen except the board, which scrolls inside itself.
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} scrolls sideways at tablet width by {overflow}px"
            await shot(page, f"{name}-tablet")
            await page.set_viewport_size({"width": 1366, "height": 900})
        docs = await page.goto("/docs")
        assert docs is not None and docs.status == 200
        await page.locator(".swagger-ui").wait_for()
        assert re.search(r"PartnerOps API", await page.content())
