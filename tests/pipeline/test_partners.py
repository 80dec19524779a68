"""Partners through the pipeline service: create/update/archive, scorecard and rank, tiers from
trailing won revenue with one event per real change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import pipeline as c
from runtime.commands import send
from runtime.db import create_engine, session_factory
from runtime.errors import CommandFailed
from runtime.testing import unique
from services.pipeline.config.repository import ConfigRepository
from services.pipeline.partners import service as partners
from services.pipeline.partners.repository import PartnerRepository
from tests.pipeline.helpers import send_raw, staged_events

THRESHOLDS = {"silver": "50000.00", "gold": "150000.00", "platinum": "400000.00"}


async def win(nc, partner_id, amount: str, currency: str = "USD") -> c.Opportunity:
    opp = await send(nc, c.CreateOpportunity(name=unique("Deal "), customer="C", amount=amount, currency=currency,
                                             partner_id=partner_id))
    return await send(nc, c.MoveOpportunity(opportunity_id=opp.id, stage="won"))


async def tier_events(db, partner_id) -> list[tuple[str, str]]:
    events = await staged_events(db, f"partner:{partner_id}")
    return [(p["from_tier"], p["to_tier"]) for s, p in events if s == c.PartnerTierChangedV1.subject]


class TestLifecycle:
    async def test_create_update_archive(self, bus_client, pipeline_db):
        name = unique("Snowflake ")
        p = await send(bus_client, c.CreatePartner(name=name, type="isv", owner="maria", actor="vp"))
        assert (p.tier, p.tier_auto, p.status, p.version, p.archived) == ("bronze", True, "prospect", 1, False)
        p = await send(bus_client, c.UpdatePartner(partner_id=p.id, status="active", owner=None, expected_version=1))
        assert p.status == "active" and p.owner is None and p.version == 2 and p.name == name
        same = await send(bus_client, c.UpdatePartner(partner_id=p.id, status="active"))
        assert same.version == 2, "an update that changes nothing is not a new version"
        p = await send(bus_client, c.UpdatePartner(partner_id=p.id, tier="gold"))
        assert (p.tier, p.tier_auto) == ("gold", False)
        p = await send(bus_client, c.ArchivePartner(partner_id=p.id))
        assert p.archived and p.version == 4
        again = await send(bus_client, c.ArchivePartner(partner_id=p.id))
        assert again.version == 4
        with pytest.raises(CommandFailed) as info:
            await send(bus_client, c.UpdatePartner(partner_id=p.id, name="x"))
        assert info.value.error.kind == "conflict"
        listed = await send(bus_client, c.ListPartners(q=name))
        assert listed.total == 0
        listed = await send(bus_client, c.ListPartners(q=name, include_archived=True))
        assert [x.id for x in listed.items] == [p.id]
        subjects = [s for s, _ in await staged_events(pipeline_db, f"partner:{p.id}")]
        assert subjects == [c.PartnerCreatedV1.subject, c.PartnerUpdatedV1.subject, c.PartnerUpdatedV1.subject,
                            c.PartnerArchivedV1.subject]

    async def test_names_are_unique_regardless_of_case(self, bus_client):
        name = unique("Datadog ")
        await send(bus_client, c.CreatePartner(name=name, type="isv"))
        for command in (c.CreatePartner(name=name.upper(), type="msp"),):
            with pytest.raises(CommandFailed) as info:
                await send(bus_client, command)
            assert (info.value.error.kind, info.value.error.field) == ("conflict", "name")
        other = await send(bus_client, c.CreatePartner(name=unique("Other "), type="isv"))
        with pytest.raises(CommandFailed) as info:
            await send(bus_client, c.UpdatePartner(partner_id=other.id, name=name.lower()))
        assert info.value.error.kind == "conflict"

    @pytest.mark.parametrize(("body", "field"), [
        ({"name": "", "type": "isv"}, "name"),
        ({"name": "x" * 201, "type": "isv"}, "name"),
        ({"name": "X", "type": "spaceship"}, "type"),
        ({"name": "X", "type": "isv", "tier": "diamond"}, "tier"),
        ({"name": "X", "type": "isv", "status": "dead"}, "status"),
        ({"name": "X", "type": "isv", "scorecard": {"strategic_fit": 11, "revenue_potential": 1, "feasibility": 1,
                                                      "risk": 1}}, "scorecard.strategic_fit"),
        ({"name": "X", "type": "isv", "scorecard": {"strategic_fit": 5}}, "scorecard.revenue_potential"),
        ({"name": "X", "type": "isv", "scorecard": {"strategic_fit": -1, "revenue_potential": 1, "feasibility": 1,
                                                      "risk": 1}}, "scorecard.strategic_fit"),
        ({"name": "X", "type": "isv", "id": str(uuid.uuid4())}, "id"),
        ({"name": ["X"], "type": "isv"}, "name"),
    ])
    async def test_bad_partners_are_invalid_with_the_field(self, bus_client, body, field):
        reply = await send_raw(bus_client, c.CreatePartner.subject, body)
        assert not reply["ok"] and reply["error"]["kind"] == "invalid" and reply["error"]["field"] == field

    async def test_unknown_partner_is_not_found(self, bus_client):
        for command in (c.GetPartner(partner_id=uuid.uuid4()), c.ArchivePartner(partner_id=uuid.uuid4()),
                        c.UpdatePartner(partner_id=uuid.uuid4(), name="x"), c.RecomputeTiers(partner_id=uuid.uuid4())):
            with pytest.raises(CommandFailed) as info:
                await send(bus_client, command)
            assert info.value.error.kind == "not_found"


class TestScorecard:
    async def test_weighted_score_and_rank(self, bus_client):
        await send(bus_client, c.UpdatePipelineSettings(scorecard_weights=c.ScorecardWeights()))
        owner = unique("owner-")
        # 8x30 + 6x25 + 7x25 + 5x20 = 665 -> 6.65; 9x30 + 9x25 + 9x25 + 9x20 = 900 -> 9.00
        card_a = c.Scorecard(strategic_fit=8, revenue_potential=6, feasibility=7, risk=5)
        card_b = c.Scorecard(strategic_fit=9, revenue_potential=9, feasibility=9, risk=9)
        a = await send(bus_client, c.CreatePartner(name=unique("A "), type="isv", owner=owner, scorecard=card_a))
        b = await send(bus_client, c.CreatePartner(name=unique("B "), type="isv", owner=owner, scorecard=card_b))
        tie = await send(bus_client, c.CreatePartner(name=unique("T "), type="isv", owner=owner, scorecard=card_a))
        unscored = await send(bus_client, c.CreatePartner(name=unique("U "), type="isv", owner=owner))
        assert a.score == Decimal("6.65") and b.score == Decimal("9.00") and unscored.score is None
        listed = await send(bus_client, c.ListPartners(owner=owner, sort="-score"))
        assert [p.id for p in listed.items][:1] == [b.id] and listed.items[-1].id == unscored.id
        ranks = {p.id: p.rank for p in listed.items}
        assert ranks[b.id] < ranks[a.id] == ranks[tie.id] and ranks[unscored.id] is None

        # Other weights: 8x40 + 6x20 + 7x20 + 5x20 = 680 -> 6.80, and stored scores follow.
        await send(bus_client, c.UpdatePipelineSettings(scorecard_weights=c.ScorecardWeights(
            strategic_fit=40, revenue_potential=20, feasibility=20, risk=20)))
        try:
            assert (await send(bus_client, c.GetPartner(partner_id=a.id))).score == Decimal("6.80")
        finally:
            await send(bus_client, c.UpdatePipelineSettings(scorecard_weights=c.ScorecardWeights()))
        assert (await send(bus_client, c.GetPartner(partner_id=a.id))).score == Decimal("6.65")

    async def test_weights_must_add_up_to_100(self, bus_client):
        reply = await send_raw(bus_client, c.UpdatePipelineSettings.subject, {"scorecard_weights": {
            "strategic_fit": 50, "revenue_potential": 25, "feasibility": 25, "risk": 20}})
        assert reply["error"]["kind"] == "invalid" and reply["error"]["field"] == "scorecard_weights"


class TestTiers:
    async def test_recomputation_emits_one_event_per_real_change(self, bus_client, pipeline_db):
        await send(bus_client, c.UpdatePipelineSettings(tier_thresholds=THRESHOLDS, tier_window_days=365,
                                                        fx_rates={"EUR": "1.10"}))
        p = await send(bus_client, c.CreatePartner(name=unique("Tiered "), type="isv"))
        pinned = await send(bus_client, c.CreatePartner(name=unique("Pinned "), type="isv", tier="platinum"))
        await win(bus_client, p.id, "30000.00")                 # 30,000: still bronze
        assert await tier_events(pipeline_db, p.id) == []
        await win(bus_client, p.id, "20000.00", "EUR")          # + 22,000.00 = 52,000: silver
        assert await tier_events(pipeline_db, p.id) == [("bronze", "silver")]
        result = await send(bus_client, c.RecomputeTiers(partner_id=p.id))
        assert result.changed == [] and result.partners_checked == 1
        await send(bus_client, c.RecomputeTiers())
        assert await tier_events(pipeline_db, p.id) == [("bronze", "silver")], "no change, no event"
        big = await win(bus_client, p.id, "100000.00")          # 152,000: gold
        await win(bus_client, p.id, "1.00", "JPY")              # no JPY rate: counts for nothing
        assert (await send(bus_client, c.GetPartner(partner_id=p.id))).trailing_revenue == Decimal("152000.00")
        await send(bus_client, c.MoveOpportunity(opportunity_id=big.id, stage="negotiation"))  # 52,000: silver
        assert await tier_events(pipeline_db, p.id) == [("bronze", "silver"), ("silver", "gold"), ("gold", "silver")]
        events = await staged_events(pipeline_db, f"partner:{p.id}")
        last = c.PartnerTierChangedV1.model_validate(events[-1][1])
        assert last.trailing_revenue == Decimal("52000.00") and last.partner.tier == "silver"

        await win(bus_client, pinned.id, "500000.00")
        stored = await send(bus_client, c.GetPartner(partner_id=pinned.id))
        assert stored.tier == "platinum" and stored.trailing_revenue == Decimal("500000.00"), \
            "a pinned tier (hyperscalers usually are) still shows its trailing won revenue"
        assert await tier_events(pipeline_db, pinned.id) == []
        released = await send(bus_client, c.UpdatePartner(partner_id=pinned.id, tier_auto=True))
        assert released.tier == "platinum" and released.tier_auto   # 500,000 >= 400,000
        # Lower thresholds move the partner up: silver -> gold at 52,000, one event.
        await send(bus_client, c.UpdatePipelineSettings(tier_thresholds={"silver": "10000", "gold": "50000",
                                                                         "platinum": "1000000"}))
        try:
            assert (await tier_events(pipeline_db, p.id))[-1] == ("silver", "gold")
            assert len(await tier_events(pipeline_db, p.id)) == 4
        finally:
            await send(bus_client, c.UpdatePipelineSettings(tier_thresholds=THRESHOLDS))

    async def test_a_partner_the_transaction_holds_shows_the_recomputed_revenue(self, bus_client, pipeline_db):
        """Revenues are written with one statement, not through the partners' objects: an object the
        session already holds shows the new revenue all the same (the window moved past the only win)."""
        await send(bus_client, c.UpdatePipelineSettings(tier_window_days=365))
        p = await send(bus_client, c.CreatePartner(name=unique("Held "), type="isv", tier="gold"))
        await win(bus_client, p.id, "1000.00")
        engine = create_engine(pipeline_db["pipeline"], trace_sql=False)
        try:
            async with session_factory(engine)() as session, session.begin():
                held = await PartnerRepository(session).get(p.id)
                assert held is not None and held.trailing_revenue == Decimal("1000.00")
                settings = await ConfigRepository(session).settings()
                later = datetime.now(UTC) + timedelta(days=400)
                assert await partners.recompute(session, [p.id], settings, now=later) == []  # pinned: no change
                assert held.trailing_revenue == Decimal("0.00") and not session.dirty
                await session.rollback()
        finally:
            await engine.dispose()
        assert (await send(bus_client, c.GetPartner(partner_id=p.id))).trailing_revenue == Decimal("1000.00")

    async def test_a_hyperscaler_with_a_pinned_tier_keeps_its_trailing_revenue_on_the_daily_tick(self, bus_client):
        await send(bus_client, c.UpdatePipelineSettings(tier_window_days=365, fx_rates={"EUR": "1.10"}))
        aws = await send(bus_client, c.CreatePartner(name=unique("AWS "), type="hyperscaler", tier="platinum"))
        await win(bus_client, aws.id, "1000.00", "EUR")
        assert (await send(bus_client, c.GetPartner(partner_id=aws.id))).trailing_revenue == Decimal("1100.00")
        result = await send(bus_client, c.RecomputeTiers())
        assert result.partners_checked >= 1 and aws.id not in {x.partner_id for x in result.changed}
        after = await send(bus_client, c.GetPartner(partner_id=aws.id))
        assert after.trailing_revenue == Decimal("1100.00") and after.tier == "platinum" and not after.tier_auto

    @pytest.mark.parametrize("thresholds", [
        {"silver": "100", "gold": "50", "platinum": "1000"},
        {"silver": "0", "gold": "50", "platinum": "1000"},
        {"silver": "10", "gold": "10", "platinum": "1000"},
    ])
    async def test_thresholds_must_increase(self, bus_client, thresholds):
        reply = await send_raw(bus_client, c.UpdatePipelineSettings.subject, {"tier_thresholds": thresholds})
        assert reply["error"]["kind"] == "invalid"
