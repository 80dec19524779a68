"""Tier benefits: the tier table (pipeline settings: thresholds, and per tier its benefits and commission
rate) is the one place tiers are defined; a tier change says what the partner gains and loses, on the
partner page and in the portal's tier progress; agreements that follow the tier are shown beside it;
admins edit the table (audited), others cannot; bad and hostile tables are refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from contracts import pipeline as pc
from contracts.quarters import Quarter
from gateway.auth import Role
from runtime.testing import eventually
from tests.portal.conftest import Portal
from tests.portal.helpers import call

D = Decimal
SETTINGS = "/api/pipeline/settings"


class TestTheTable:
    def test_a_move_says_what_is_gained_and_lost_both_ways(self):
        table = pc.TierBenefitTable()
        up = pc.tier_change(table, pc.PartnerTier.silver, pc.PartnerTier.gold)
        assert up.gains == ["Monthly business review", "Named partner manager", "Joint account planning"]
        assert up.loses == ["Quarterly business review"] and (up.rate_from, up.rate_to) == (D(15), D(20))
        down = pc.tier_change(table, pc.PartnerTier.gold, pc.PartnerTier.silver)
        assert (down.gains, down.loses) == (up.loses, up.gains)
        same = pc.tier_change(table, pc.PartnerTier.bronze, pc.PartnerTier.bronze)
        assert same.gains == same.loses == []

    @pytest.mark.parametrize("tier", [
        {"benefits": ["Portal\x00"]}, {"benefits": ["two\nlines"]}, {"benefits": [""]}, {"benefits": ["x" * 201]},
        {"benefits": [f"b{i}" for i in range(21)]}, {"commission_rate": "101"}, {"commission_rate": "-1"},
        {"commission_rate": "1e9"}, {"commission_rate": "NaN"}, {"benefits": [{"deep": ["x"]}]}, {"surprise": 1},
    ])
    def test_hostile_rows_are_refused(self, tier):
        with pytest.raises(ValidationError):
            pc.TierBenefitTable.model_validate({"gold": tier})

    def test_settings_sent_before_the_table_existed_still_read(self):
        old = pc.PipelineSettings().model_dump(mode="json")
        del old["tier_benefits"]
        assert pc.PipelineSettings.model_validate(old).tier_benefits == pc.TierBenefitTable()


class TestWhereItShows:
    async def test_the_portal_shows_the_tier_and_what_the_next_one_gains(self, portal: Portal):
        summary = (await call(portal.a.user, "GET", "/api/portal/summary")).json()
        progress = summary["progress"]
        assert progress["tier"] == "bronze" and progress["commission_rate"] == "10"
        assert progress["benefits"] == list(pc.TierBenefitTable().bronze.benefits)
        change = progress["next_change"]
        assert change["to_tier"] == "silver" and change["gains"] == ["Quarterly business review",
                                                                       "Co-marketing funds (MDF) on request"]
        page = await call(portal.a.user, "GET", "/portal", accept="text/html")
        assert "At silver you gain" in page.text and "commission 15% instead of 10%" in page.text

    async def test_the_partner_page_shows_gains_losses_and_agreements_that_follow_the_tier(self, portal: Portal):
        g = portal.gateway
        page = await call(g.people[Role.viewer], "GET", f"/partners/{portal.a.id}", accept="text/html")
        assert 'data-testid="tier-benefits"' in page.text and "What bronze gives" in page.text
        assert "Up to silver:</strong>" in page.text and "gains Quarterly business review" in page.text
        assert 'data-testid="tier-down"' not in page.text  # nothing below bronze
        rates = {"bronze": "5", "silver": "10", "gold": "15", "platinum": "20"}
        made = await call(g.people[Role.member], "POST", "/api/commissions/agreements", {
            "partner_id": portal.a.id, "name": "Tier share", "direction": "payable", "currency": "USD",
            "effective_from": "2026-01-01", "terms": {"rate": {"kind": "partner_tier", "rates": rates}}})
        assert made.status_code == 201, made.text
        page = await call(g.people[Role.viewer], "GET", f"/partners/{portal.a.id}", accept="text/html")
        follows = page.text.split('data-testid="tier-agreements"', 1)[1].split("</div>", 1)[0]
        assert "Tier share" in follows and "<strong>bronze 5%</strong>" in follows and "(at silver: 10%)" in follows
        assert "differs from the tier table" in follows  # 5% against the table's 10%
        form = await call(g.people[Role.member], "GET", "/commissions/agreements/new", accept="text/html")
        assert 'id="f-rate_gold" name="rate_gold"' in form.text and 'value="20"' in form.text  # from the table

    async def test_admins_edit_the_table_audited_others_cannot_and_bad_tables_are_refused(self, portal: Portal):
        g = portal.gateway
        table = pc.TierBenefitTable().model_dump(mode="json")
        table["silver"] = {"benefits": ["Quarterly business review", "Joint webinar"], "commission_rate": "12.5"}
        for role in (Role.member, Role.manager):
            assert (await call(g.people[role], "PATCH", SETTINGS, {"tier_benefits": table})).status_code == 403
        for bad in ({**table, "gold": {"benefits": ["\x00"]}}, {**table, "gold": {"commission_rate": "250"}},
                    {**table, "diamond": {"benefits": []}}, {"silver": "everything"}):
            r = await call(g.people[Role.admin], "PATCH", SETTINGS, {"tier_benefits": bad})
            assert r.status_code == 422, (bad, r.text)
        saved = await call(g.people[Role.admin], "PATCH", SETTINGS, {"tier_benefits": table})
        assert saved.status_code == 200, saved.text
        assert saved.json()["tier_benefits"]["silver"]["commission_rate"] == "12.5"
        progress = (await call(portal.a.user, "GET", "/api/portal/summary")).json()["progress"]
        assert progress["next_change"]["gains"] == ["Quarterly business review", "Joint webinar"]
        assert progress["next_change"]["loses"] == ["Partner portal and deal registration", "Enablement library"]
        audit = (await call(g.people[Role.admin], "GET", "/api/audit", params={"entity": "pipeline"})).json()
        assert any(e["action"] == "pipeline.settings_changed" and "Joint webinar" in str(e["after"]) for e in audit)

        # The settings page: the table as text areas, a bad rate shown beside its field, a good one saved.
        admin = g.people[Role.admin]
        page = await admin.client.get("/admin/settings", headers={"accept": "text/html"})
        assert 'data-testid="tier-benefits-form"' in page.text and "Joint webinar" in page.text
        form = dict(re.findall(r'name="(expected_version|quarterly_target|reporting_currency|stuck_after_days|'
                               r'tier_window_days|silver|gold|platinum)"[^>]*value="([^"]*)"', page.text))
        form |= {"fiscal_year_start_month": "1", "fx_rates": "", "csrf_token": admin.csrf,
                 **{f"benefits_{t}": "Portal\nLibrary" for t in ("bronze", "silver", "gold", "platinum")},
                 "rate_bronze": "8", "rate_silver": "abc", "rate_gold": "18", "rate_platinum": "22"}
        refused = await admin.client.post("/admin/settings", data=form, headers={"accept": "text/html"})
        assert refused.status_code == 422 and 'id="rate_silver-error"' in refused.text
        ok = await admin.client.post("/admin/settings", data={**form, "rate_silver": "12"})
        assert ok.status_code == 303, ok.text[:500]
        now = (await call(admin, "GET", SETTINGS)).json()["tier_benefits"]
        assert now["gold"] == {"benefits": ["Portal", "Library"], "commission_rate": "18"}
        # Put the default table back for the other tests of this module.
        assert (await call(admin, "PATCH", SETTINGS, {"tier_benefits": pc.TierBenefitTable().model_dump(
            mode="json")})).status_code == 200


class TestASpifOnThePartnersStatement:
    async def test_the_partner_reads_its_spif_bonus_on_its_statement(self, portal: Portal):
        g, a = portal.gateway, portal.a
        start, end = Quarter.calendar_of(datetime.now(UTC).date()).range()
        made = await call(g.people[Role.member], "POST", "/api/commissions/agreements", {
            "partner_id": a.id, "name": "This quarter's SPIF", "direction": "payable", "currency": "USD",
            "effective_from": start.isoformat(), "effective_to": end.isoformat(),
            "terms": {"rate": {"kind": "spif", "bonus": "750.00", "min_amount": "10000.00"}}})
        assert made.status_code == 201, made.text
        won = await call(g.people[Role.member], "POST", f"/api/opportunities/{a.deal_id}/stage", {"stage": "won"})
        assert won.status_code == 200, won.text
        period = Quarter.calendar_of(datetime.now(UTC).date()).label

        async def bonus() -> bool:
            s = (await call(a.user, "GET", f"/api/portal/statements/{period}")).json()
            return any(x["spif_bonuses"] == "750.00" for x in s["sections"])

        await eventually(bonus, "A's SPIF bonus on its statement")
        lines = await call(a.user, "GET", f"/portal/statements/{period}", accept="text/html")
        assert "<td>SPIF bonus</td>" in lines.text
        overview = await call(a.user, "GET", "/portal", accept="text/html")
        assert "of which SPIF bonuses $750.00" in overview.text
        assert portal.b.marker not in overview.text and portal.b.marker not in lines.text
