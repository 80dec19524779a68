"""Opportunities through the pipeline service's commands, against real Postgres and NATS: stage
history, outcome events, validation, versions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import pipeline as c
from runtime.commands import send
from runtime.errors import CommandFailed
from runtime.testing import unique
from tests.pipeline.helpers import send_raw, staged_events


async def new_partner(nc, **kw) -> c.Partner:
    kw.setdefault("name", unique("ISV "))
    kw.setdefault("type", c.PartnerType.isv)
    return await send(nc, c.CreatePartner(**kw, actor="tester"))


class TestStageHistory:
    async def test_history_is_complete_after_a_series_of_moves(self, bus_client, pipeline_db):
        partner = await new_partner(bus_client)
        opp = await send(bus_client, c.CreateOpportunity(
            name="Warehouse rollout", customer="Initech", partner_id=partner.id, amount="120000.00",
            expected_close_date="2026-12-15", owner="maria", actor="maria"))
        assert (opp.pipeline, opp.stage, opp.probability, opp.outcome) == ("resale", "lead", 10, "open")
        moves = [("qualified", "maria"), ("proposal", "tom"), ("Negotiation", "maria"), ("proposal", "tom"),
                 ("negotiation", "tom"), ("won", "vp")]
        for stage, who in moves:
            opp = await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage=stage, actor=who))
        detail = await send(bus_client, c.GetOpportunity(opportunity_id=opp.id))
        got = [(h.from_stage, h.to_stage, h.changed_by) for h in detail.stage_history]
        assert got == [
            (None, "lead", "maria"), ("lead", "qualified", "maria"), ("qualified", "proposal", "tom"),
            ("proposal", "negotiation", "maria"), ("negotiation", "proposal", "tom"),
            ("proposal", "negotiation", "tom"), ("negotiation", "won", "vp"),
        ]
        times = [h.changed_at for h in detail.stage_history]
        assert times == sorted(times) and all(t.tzinfo is not None for t in times)
        assert detail.outcome == "won" and detail.closed_at == times[-1] and detail.version == 7

        events = await staged_events(pipeline_db, f"opportunity:{opp.id}")
        subjects = [s for s, _ in events]
        assert subjects == ["pipeline.opportunity.created.v1"] + ["pipeline.opportunity.stage_changed.v1"] * 6 + [
            "pipeline.opportunity.won.v1"]
        versions = [p["opportunity"]["version"] for s, p in events if "opportunity" in p]
        assert versions == list(range(1, 8))
        won = c.OpportunityWonV1.model_validate(events[-1][1])
        assert won.amount == Decimal("120000.00") and won.partner_id == partner.id and won.owner == "maria"
        assert won.deal_model == c.DealModel.resale and won.customer == "Initech"
        assert events[-1][1]["amount"] == "120000.00", "money travels as a string"

    async def test_moving_to_the_same_stage_changes_nothing(self, bus_client):
        opp = await send(bus_client, c.CreateOpportunity(name="Same", customer="X", amount="10"))
        again = await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage="lead"))
        assert again.version == opp.version
        detail = await send(bus_client, c.GetOpportunity(opportunity_id=opp.id))
        assert len(detail.stage_history) == 1

    async def test_cosell_launch_emits_won_and_launched_and_reopen_voids_it(self, bus_client, pipeline_db):
        opp = await send(bus_client, c.CreateOpportunity(
            name="Migration", customer="Umbrella", amount="30000", deal_model="cosell", hyperscaler="aws"))
        assert opp.pipeline == "cosell" and opp.stage == "prospect"
        for stage in ("Qualified", "Technical Validation", "Business Validation", "Committed", "Launched"):
            opp = await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage=stage))
        assert opp.outcome == "won" and opp.launched_at is not None
        opp = await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage="committed"))
        assert opp.outcome == "open" and opp.closed_at is None and opp.launched_at is None
        opp = await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage="closed_lost",
                                                       closed_lost_reason="Price"))
        assert opp.ace and opp.ace.closed_lost_reason == "Price"
        subjects = [s.rsplit(".", 2)[-2] for s, _ in await staged_events(pipeline_db, f"opportunity:{opp.id}")]
        assert subjects.count("won") == 1 and subjects.count("launched") == 1
        assert subjects.count("reopened") == 1 and subjects[-1] == "lost"


class TestRecordedLater:
    async def test_moves_can_be_recorded_after_the_fact_in_order(self, bus_client, pipeline_db):
        now = datetime.now(UTC)
        opp = await send(bus_client, c.CreateOpportunity(name="Late", customer="C", amount="10",
                                                         created_at=now - timedelta(days=100)))
        assert opp.created_at == now - timedelta(days=100)
        opp = await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage="proposal",
                                                       occurred_at=now - timedelta(days=60)))
        won = await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage="won",
                                                       occurred_at=now - timedelta(days=40)))
        assert won.closed_at == now - timedelta(days=40)
        events = await staged_events(pipeline_db, f"opportunity:{opp.id}")
        assert c.OpportunityWonV1.model_validate(events[-1][1]).won_at == now - timedelta(days=40)
        for at, field in ((now - timedelta(days=50), "occurred_at"), (now + timedelta(days=2), "occurred_at")):
            with pytest.raises(CommandFailed) as info:
                await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage="lost", occurred_at=at))
            assert (info.value.error.kind, info.value.error.field) == ("invalid", field)
        with pytest.raises(CommandFailed) as info:
            await send(bus_client, c.CreateOpportunity(name="F", customer="C", amount="1",
                                                       created_at=now + timedelta(days=1)))
        assert info.value.error.field == "created_at"


class TestValidation:
    @pytest.mark.parametrize(("fields", "field"), [
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "1e20"}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"stage": "Signed"}, "stage"),
        ({"pipeline": "nope"}, "pipeline"),
        ({"pipeline": "DROP TABLE"}, "pipeline"),
        ({"expected_close_date": "1066-10-14"}, "expected_close_date"),
        ({"deal_model": "barter"}, "deal_model"),
        ({"partner_id": str(uuid.uuid4())}, "partner_id"),
        ({"ace": {"review_status": "Maybe"}}, "ace.review_status"),
        ({"ace": {"next_steps": "x" * 256}}, "ace.next_steps"),
        ({"surprise": 1}, "surprise"),
    ])
    async def test_bad_input_is_invalid_with_the_field(self, bus_client, fields, field):
        body = {"name": "Deal", "customer": "Cust", "amount": "100.00", **fields}
        reply = await send_raw(bus_client, c.CreateOpportunity.subject, body)
        assert not reply["ok"] and reply["error"]["kind"] == "invalid", reply
        assert reply["error"]["field"] == field

    @pytest.mark.parametrize("data", [b"", b"not json", b"[]", b"null", b'{"name": {"$gt": ""}}', b"\xff\xfe"])
    async def test_malformed_commands_are_invalid(self, bus_client, data):
        reply = await send_raw(bus_client, c.CreateOpportunity.subject, data)
        assert not reply["ok"] and reply["error"]["kind"] == "invalid"

    async def test_unknown_opportunity_is_not_found(self, bus_client):
        for command in (c.GetOpportunity(opportunity_id=uuid.uuid4()),
                        c.MoveOpportunity(opportunity_id=uuid.uuid4(), stage="won"),
                        c.UpdateOpportunity(opportunity_id=uuid.uuid4(), name="x")):
            with pytest.raises(CommandFailed) as info:
                await send(bus_client, command)
            assert info.value.error.kind == "not_found"

    async def test_a_stale_version_is_a_conflict(self, bus_client):
        opp = await send(bus_client, c.CreateOpportunity(name="V", customer="C", amount="5"))
        await send(bus_client, c.UpdateOpportunity(opportunity_id=opp.id, amount="6", expected_version=1))
        with pytest.raises(CommandFailed) as info:
            await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage="won", expected_version=1))
        assert info.value.error.kind == "conflict"

    async def test_update_changes_only_what_was_sent_and_null_clears(self, bus_client):
        opp = await send(bus_client, c.CreateOpportunity(name="U", customer="C", amount="5", owner="tom",
                                                         expected_close_date="2026-12-01"))
        updated = await send(bus_client, c.UpdateOpportunity(opportunity_id=opp.id, owner=None, amount="7.50"))
        assert updated.owner is None and updated.amount == Decimal("7.50")
        assert updated.expected_close_date == opp.expected_close_date and updated.version == 2
        with pytest.raises(CommandFailed) as info:
            await send(bus_client, c.UpdateOpportunity(opportunity_id=opp.id, amount=None))
        assert info.value.error.field == "amount"


class TestListing:
    async def test_filters_sorting_and_paging(self, bus_client):
        await send(bus_client, c.UpdatePipelineSettings(fiscal_year_start_month=1))
        owner = unique("owner-")
        partner = await new_partner(bus_client)
        made = []
        for i, (amount, close) in enumerate([("300", "2026-02-10"), ("100", "2026-05-01"), ("200", "2026-03-31")]):
            made.append(await send(bus_client, c.CreateOpportunity(
                name=f"L{i}", customer="C", amount=amount, owner=owner, partner_id=partner.id,
                expected_close_date=close)))
        await send(bus_client, c.MoveOpportunity(opportunity_id=made[1].id, stage="won"))
        page = await send(bus_client, c.ListOpportunities(owner=owner, sort="-amount", limit=2))
        assert [o.amount for o in page.items] == [Decimal("300.00"), Decimal("200.00")] and page.total == 3
        rest = await send(bus_client, c.ListOpportunities(owner=owner, sort="-amount", limit=2, offset=2))
        assert [o.amount for o in rest.items] == [Decimal("100.00")]
        q1 = await send(bus_client, c.ListOpportunities(owner=owner, quarter="2026-Q1"))
        assert {o.name for o in q1.items} == {"L0", "L2"}
        won = await send(bus_client, c.ListOpportunities(partner_id=partner.id, stage="won"))
        assert [o.name for o in won.items] == ["L1"]
        assert (await send(bus_client, c.ListOpportunities(owner=owner, source="aws"))).total == 0
        hostile = await send(bus_client, c.ListOpportunities(q="%' OR 1=1 --", owner=owner))
        assert hostile.total == 0
