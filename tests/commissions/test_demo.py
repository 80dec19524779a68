"""The demo seed through the real pipeline and commissions services: an agreement of every rule kind,
and this quarter's statements with something in every line; seeding twice changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from contracts import commissions as cc
from contracts.quarters import Quarter
from gateway.demo_commissions import seed_commissions
from gateway.demo_pipeline import seed_pipeline
from runtime import bus
from runtime.commands import send


def this_quarter() -> str:
    return Quarter.calendar_of(datetime.now(UTC).date()).label


async def test_the_demo_covers_every_rule_kind_and_makes_this_quarter_non_trivial(gw, private_nats):
    nc = await bus.connect(private_nats, name="demo-test")
    try:
        await seed_pipeline(nc)
        counts = await seed_commissions(nc)
        assert counts["agreements"] >= 10 and counts["billing_events"] >= 100

        agreements = (await send(nc, cc.ListAgreements(limit=500))).items
        terms = [v.terms for a in agreements for v in a.versions]
        kinds = {t.rate.kind for t in terms} | {t.rate.mode.value for t in terms if t.rate.kind == "tiered"}
        assert {"flat", "tiered", "partner_tier", "marginal", "whole_amount"} <= kinds
        assert {(t.basis, t.duration) for t in terms} >= {
            (cc.Basis.deal, cc.Duration.one_time), (cc.Basis.invoice, cc.Duration.one_time),
            (cc.Basis.invoice, cc.Duration.recurring), (cc.Basis.invoice, cc.Duration.lifetime)}
        assert any(t.cap_per_deal for t in terms) and any(t.cap_per_period for t in terms)
        assert {a.direction for a in agreements} == {cc.Direction.receivable, cc.Direction.payable}
        assert any(v.retroactive for a in agreements for v in a.versions)
        assert any(len(a.versions) > 1 and not a.versions[-1].retroactive for a in agreements)

        totals = {"opening": Decimal(0), "accruals": Decimal(0), "clawbacks": Decimal(0),
                  "adjustments": Decimal(0), "payments": Decimal(0)}
        for a in agreements:
            statement = await send(nc, cc.GetStatement(partner_id=a.partner_id, period=this_quarter()))
            for s in statement.sections:
                totals["opening"] += abs(s.opening_balance)
                totals["accruals"] += s.accruals
                totals["clawbacks"] += s.clawbacks
                totals["adjustments"] += abs(s.adjustments)
                totals["payments"] += s.payments
        assert all(v != 0 for v in totals.values()), totals

        entries_before = (await send(nc, cc.ListLedgerEntries(limit=1))).total
        again = await seed_commissions(nc)
        assert again["versions_added"] == 0 and again["entries_paid"] == 0
        assert (await send(nc, cc.ListLedgerEntries(limit=1))).total == entries_before
    finally:
        await nc.close()
