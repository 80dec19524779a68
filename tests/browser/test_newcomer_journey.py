"""What a new user tripped over (issue 16), as they would meet it in the browser with the demo data:
figures that say their scope and add up between the dashboard and the team page, numbers printed
right, hyperscalers' trailing revenue, an import that reports every problem at once, friendly error
pages and stage names. Screenshots land in test-artifacts/newcomer-*.png."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.browser.helpers import Platform, money, shot, sign_in

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(autouse=True)
def patient(page) -> None:
    # Seven sessions share two cores: a full-page screenshot of the dashboard can take over 15 s.
    page.set_default_timeout(60_000)

# What must never reach a page: a Decimal's exponent, a negative zero, a stage key.
# A number in exponent form standing on its own ("1E+1%", "2.5e3"), not hex inside a word ("8942b45e76").
EXPONENT = re.compile(r"(?<![\w.])\d+(?:\.\d+)?[eE][+-]?\d+(?!\w)")
NEGATIVE_ZERO = re.compile(r"[-\u2212][$€£]0\.00\b|[-\u2212][$€£]0\b")  # hyphen or minus sign


async def _main_text(page) -> str:
    return await page.locator("main").inner_text()


class TestFiguresSayWhatTheyCount:
    async def test_the_dashboard_names_its_scope_and_the_team_page_adds_up_to_it(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["admin"])
        scope = page.get_by_test_id("kpi-scope")
        await scope.wait_for()
        text = await scope.inner_text()
        assert "Resale" in text and "fiscal quarter" in text and "USD" in text, text
        table = page.get_by_test_id("by-pipeline")
        resale = money(await table.get_by_test_id("closed-won-resale").inner_text())
        cosell = money(await table.get_by_test_id("closed-won-cosell").inner_text())
        everything = money(await table.get_by_test_id("closed-won-all").inner_text())
        assert resale + cosell == everything and cosell > 0, "the demo wins deals in both pipelines"
        assert money(await page.get_by_test_id("closed-won").inner_text()) == resale
        strip = await page.get_by_test_id("win-rate").inner_text()
        won, lost = re.search(r"(\d+) won · (\d+) lost", strip).groups()
        assert f"{won} · {lost}" in await table.get_by_test_id("pipeline-resale").inner_text()
        await table.scroll_into_view_if_needed()
        await shot(page, "newcomer-dashboard-scope")

        await page.goto("/team")
        totals = page.get_by_test_id("team-totals")
        rows = totals.locator("tbody tr")
        shown = {}
        for i in range(await rows.count()):
            cells = [await c.inner_text() for c in await rows.nth(i).locator("th, td").all()]
            shown[cells[0]] = [money(c) for c in cells[1:]]
        assert shown["All pipelines"][2] == everything and shown["Resale"][2] == resale
        for label, (team, nobody, department) in shown.items():
            assert team + nobody == department, label
        members = page.locator('[data-testid="won-this-quarter"]')
        listed = sum([money((await members.nth(i).inner_text()).split("\n")[0])
                      for i in range(await members.count())], Decimal(0))
        assert listed == shown["All pipelines"][0], "the members' column adds up to the team row"
        await totals.scroll_into_view_if_needed()
        await shot(page, "newcomer-team-totals")


class TestNumbersPrintRight:
    async def test_commissions_statements_and_board_print_plain_figures(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["manager"])
        await page.goto("/commissions")
        text = await _main_text(page)
        assert not EXPONENT.search(text) and not NEGATIVE_ZERO.search(text), text[:2000]
        forecast = page.get_by_test_id("forecast-lines")
        caption = await page.get_by_test_id("forecast-count").inner_text()
        shown = await forecast.locator("tbody tr").count()
        stated = int(re.search(r"(\d+) lines?", caption)[1])
        assert caption.startswith("All ") and stated == shown, (caption, shown)
        rates = [await forecast.locator("tbody tr").nth(i).locator("td").nth(4).inner_text() for i in range(shown)]
        assert all(re.fullmatch(r"\d+(\.\d+)?%", r) for r in rates), rates
        stages = [await forecast.locator("tbody tr").nth(i).locator("td").nth(1).inner_text() for i in range(shown)]
        assert not any("_" in s for s in stages), stages
        await shot(page, "newcomer-commissions")

        # A statement with nothing paid says $0.00, never a minus sign before $0.00.
        await page.goto("/commissions/statement")
        options = page.locator('select[name="partner_id"] option')
        for i in range(1, min(await options.count(), 6)):
            value = await options.nth(i).get_attribute("value")
            await page.goto(f"/commissions/statement?partner_id={value}&period=2026-Q4")
            text = await _main_text(page)
            assert not NEGATIVE_ZERO.search(text) and not EXPONENT.search(text), text[:1500]
        await shot(page, "newcomer-statement")

        await page.goto("/pipeline")
        heads = await page.locator(".board h2").all_inner_texts()
        assert not any("€" in h for h in heads), heads
        await shot(page, "newcomer-board")


class TestHyperscalerRevenue:
    async def test_a_hyperscaler_partner_shows_its_trailing_won_revenue(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["viewer"])
        await page.goto("/partners?type=hyperscaler")
        links = page.locator('main table a[href^="/partners/"]')
        found = []
        for i in range(await links.count()):
            found.append(await links.nth(i).get_attribute("href"))
        assert found, "the demo has hyperscaler partners"
        revenues = []
        for href in found:
            await page.goto(href)
            revenues.append(await page.get_by_test_id("trailing-revenue").inner_text())
        assert any(r != "—" and money(r) > 0 for r in revenues), revenues
        await shot(page, "newcomer-hyperscaler-partner")


class TestImportCatchesEveryMistake:
    async def test_one_upload_names_every_problem_and_the_owner_typo(self, page, platform: Platform, tmp_path):
        await sign_in(page, *platform.credentials()["member"])
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Import").click()
        await page.wait_for_url(re.compile(r".*/import$"))
        bad = tmp_path / "deals.csv"
        bad.write_text("name,customer,partner,amount,owner\nThree problems,Acme,Nobody Partners Ltd,ten,tomm\n")
        await page.get_by_label("The file holds").select_option("opportunities")
        await page.get_by_label("CSV file").set_input_files(str(bad))
        await page.get_by_role("button", name="Import").click()
        summary = await page.get_by_test_id("import-summary").inner_text()
        assert summary.startswith("1 row read; 1 row needs fixing (3 problems)"), summary
        table = await page.get_by_test_id("row-errors").inner_text()
        for column in ("partner", "amount", "owner"):
            assert column in table, table
        assert "did you mean tom@example.com?" in table, table
        await shot(page, "newcomer-import-errors")


class TestNoRawInternals:
    async def test_wrong_links_are_pages_and_stages_have_names(self, page, platform: Platform):
        await sign_in(page, *platform.credentials()["member"])
        for path, heading in (("/no-such-page", "No such page"), ("/partners/not-a-uuid", "No such partner")):
            response = await page.goto(path)
            assert response.status == 404
            assert await page.get_by_role("heading", name=heading).is_visible()
            assert await page.get_by_role("navigation", name="Main").is_visible()
            assert "{" not in await _main_text(page)
        await shot(page, "newcomer-not-found")

        await page.goto("/")
        stuck = await page.get_by_test_id("stuck").inner_text()
        assert not re.search(r"days in [a-z]", stuck) and "_" not in stuck, stuck

        await page.goto("/opportunities/new")
        stage = page.get_by_label("Stage")
        assert await stage.evaluate("e => e.tagName") == "SELECT"
        options = await stage.locator("option").all_inner_texts()
        assert "Technical Validation" in options and "technical_validation" not in options
        owners = await page.get_by_label("Owner").locator("option").all_inner_texts()
        assert not any("Board" in o for o in owners), owners
        # The browser draws a date input in its own locale; beside it, the day as every page prints it.
        await page.get_by_label("Expected close").fill("2026-11-30")
        assert (await page.locator("[data-date-echo]").first.inner_text()).strip() == "30 Nov 2026"
        await shot(page, "newcomer-deal-form")
