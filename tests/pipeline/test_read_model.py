"""The gateway's pipeline read model: a burst of one opportunity's events in order, out-of-order snapshots,
and a rebuild by replay that gives the same KPIs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, text

from contracts import pipeline as c
from gateway.read_models import partners as partners_rm
from gateway.read_models import pipeline as rm
from gateway.rebuild import rebuild
from runtime import deadletter
from runtime.commands import send
from runtime.db import create_engine, session_factory
from runtime.testing import eventually, unique
from tests.pipeline.helpers import settings_for
from tests.support.snapshots import partner_snapshot


def snapshot(version: int, stage: str, owner: str, **kw) -> c.Opportunity:
    now = datetime.now(UTC)
    stage_def = c.RESALE_STAGE_SET.stage(stage)
    values = dict(id=kw.pop("id"), version=version, name="Race", pipeline="resale", stage=stage,
                  stage_name=stage_def.name, probability=stage_def.probability, outcome=stage_def.outcome,
                  partner_id=None, customer="C", amount=Decimal("1000.00"), currency="USD", expected_close_date=None,
                  owner=owner, deal_model="resale", source="manual", created_at=now, updated_at=now,
                  stage_entered_at=now)
    values.update(kw)
    return c.Opportunity.model_validate(values)


async def open_by_stage(session, owner: str) -> dict[str, tuple[int, Decimal]]:
    rows = await session.execute(select(rm.OpenAgg.stage, rm.OpenAgg.deals, rm.OpenAgg.amount)
                                 .where(rm.OpenAgg.owner == owner))
    return {s: (int(d), a) for s, d, a in rows.tuples() if d}


class TestOrderPerAggregate:
    async def test_a_burst_of_create_update_and_stage_change_events_is_applied_in_order(
            self, pipeline_db, gateway_app, bus_client):
        """The created, updated and stage-changed events of many opportunities, published back to back
        on their three subjects, reach the read model through one durable consumer (gateway__PIPELINE) in
        publish order: each opportunity ends at its last snapshot and is counted once (with a consumer
        per subject and no lock, two of them raced on a new opportunity and counted it twice)."""
        js = bus_client.jetstream()
        info = await js.consumer_info(c.STREAM.name, "gateway__PIPELINE")
        assert {c.OpportunityCreatedV1.subject, c.OpportunityUpdatedV1.subject,
                c.OpportunityStageChangedV1.subject} <= set(info.config.filter_subjects or ())
        owner = unique("burst-")
        now = datetime.now(UTC)
        ids = [uuid.uuid4() for _ in range(20)]
        steps = [
            lambda oid: c.OpportunityCreatedV1(opportunity=snapshot(1, "lead", owner, id=oid)),
            lambda oid: c.OpportunityUpdatedV1(opportunity=snapshot(2, "lead", owner, id=oid, amount="1500.00")),
            lambda oid: c.OpportunityStageChangedV1(opportunity=snapshot(3, "proposal", owner, id=oid,
                                                                         amount="1500.00"),
                                                    from_stage="lead", to_stage="proposal", changed_by="x",
                                                    changed_at=now),
            lambda oid: c.OpportunityUpdatedV1(opportunity=snapshot(4, "proposal", owner, id=oid, amount="2000.00")),
            lambda oid: c.OpportunityStageChangedV1(opportunity=snapshot(5, "negotiation", owner, id=oid,
                                                                         amount="2000.00"),
                                                    from_stage="proposal", to_stage="negotiation", changed_by="x",
                                                    changed_at=now),
        ]
        for step in steps:
            for oid in ids:
                event = step(oid)
                await js.publish(event.subject, event.model_dump_json().encode(),
                                 headers={"Nats-Msg-Id": str(event.event_id)})
        engine = create_engine(pipeline_db["gateway"], trace_sql=False)
        sessions = session_factory(engine)
        try:
            async def settled() -> bool:
                async with sessions() as session:
                    versions = (await session.scalars(select(rm.OpportunityView.version)
                                                      .where(rm.OpportunityView.id.in_(ids)))).all()
                return len(versions) == len(ids) and set(versions) == {5}

            await eventually(settled, what="every opportunity at its last snapshot")
            async with sessions() as session:
                assert await open_by_stage(session, owner) == {"negotiation": (20, Decimal("40000.00"))}
        finally:
            await engine.dispose()

    async def test_snapshots_in_any_order_end_in_the_newest(self, pipeline_db, gateway_app):
        engine = create_engine(pipeline_db["gateway"], trace_sql=False)
        sessions = session_factory(engine)
        owner, oid = unique("order-"), uuid.uuid4()
        now = datetime.now(UTC)
        v = [c.OpportunityCreatedV1(opportunity=snapshot(1, "lead", owner, id=oid)),
             c.OpportunityStageChangedV1(opportunity=snapshot(2, "negotiation", owner, id=oid), from_stage="lead",
                                         to_stage="negotiation", changed_by="x", changed_at=now),
             c.OpportunityStageChangedV1(opportunity=snapshot(3, "won", owner, id=oid, closed_at=now),
                                         from_stage="negotiation", to_stage="won", changed_by="x", changed_at=now)]
        try:
            for batch in ([v[2]], [v[0], v[1]], [v[1]]):
                async with sessions() as session, session.begin():
                    await rm.on_opportunities(session, batch)
            async with sessions() as session:
                assert await open_by_stage(session, owner) == {}
                k = await rm.kpis(session, as_of=now.date(), owner=owner)
                assert (k.won, k.forecast.closed_won) == (1, Decimal("1000.00"))
        finally:
            await engine.dispose()

    async def test_deleted_and_restored_snapshots_in_any_order_end_in_the_newest(self, pipeline_db, gateway_app):
        """A deleted deal counts nowhere, a restored one counts again; a duplicate or a late older snapshot
        changes nothing, whatever the order the events arrive in."""
        engine = create_engine(pipeline_db["gateway"], trace_sql=False)
        sessions = session_factory(engine)
        owner, oid = unique("deleted-"), uuid.uuid4()
        now = datetime.now(UTC)
        created = c.OpportunityCreatedV1(opportunity=snapshot(1, "proposal", owner, id=oid))
        deleted = c.OpportunityDeletedV1(opportunity=snapshot(2, "proposal", owner, id=oid, deleted_at=now))
        restored = c.OpportunityRestoredV1(opportunity=snapshot(3, "proposal", owner, id=oid))
        try:
            async def apply(*batches: list) -> dict:
                for batch in batches:
                    async with sessions() as session, session.begin():
                        await rm.on_opportunities(session, batch)
                async with sessions() as session:
                    return await open_by_stage(session, owner)

            assert await apply([deleted], [created], [created, deleted]) == {}  # deleted first, then the older
            assert await apply([restored], [deleted]) == {"proposal": (1, Decimal("1000.00"))}
            async with sessions() as session:
                assert (await rm.aggregate_drift(session)) == dict.fromkeys(await rm.aggregate_drift(session), 0)
        finally:
            await engine.dispose()


class TestOneBatch:
    async def test_nulls_a_batch_moving_no_aggregate_and_a_repeat(self, pipeline_db, gateway_app):
        """A batch's rows and aggregate changes go in as one statement of arrays: NULLs in every optional
        column come out NULL, a batch whose changes move no aggregate (a rename: every aggregate's arrays
        empty) still writes its rows, and a batch with nothing newer writes nothing."""
        engine = create_engine(pipeline_db["gateway"], trace_sql=False)
        sessions = session_factory(engine)
        owner, bare, named = unique("batch-"), uuid.uuid4(), uuid.uuid4()
        created = [c.OpportunityCreatedV1(opportunity=snapshot(1, "lead", None, id=bare, customer="x" * 250)),
                   c.OpportunityCreatedV1(opportunity=snapshot(1, "proposal", owner, id=named))]
        renamed = c.OpportunityUpdatedV1(opportunity=snapshot(2, "proposal", owner, id=named, name="Renamed"),
                                         changed=("name",))
        try:
            for batch in (created, [renamed], [renamed, created[1]]):
                async with sessions() as session, session.begin():
                    await rm.on_opportunities(session, batch)
            async with sessions() as session:
                rows = {r.id: r for r in await session.scalars(select(rm.OpportunityView).where(
                    rm.OpportunityView.id.in_([bare, named])))}
                a, b = rows[bare], rows[named]
                optional = ("owner", "partner_id", "expected_close_date", "hyperscaler", "closed_at", "launched_at",
                            "external_id", "previous_stage")
                assert [getattr(a, n) for n in optional] == [None] * len(optional)
                assert a.customer == "x" * 200 and a.version == 1
                assert (b.name, b.version, b.stage) == ("Renamed", 2, "proposal")
                assert await open_by_stage(session, owner) == {"proposal": (1, Decimal("1000.00"))}
                assert (await rm.aggregate_drift(session)) == dict.fromkeys(await rm.aggregate_drift(session), 0)
        finally:
            await engine.dispose()


class TestPartnerBatch:
    async def test_a_batch_of_partner_events_ends_in_the_newest_of_each(self, pipeline_db, gateway_app):
        """Partner events are applied a batch at a time (one statement): several versions of one partner in
        a batch, in any order, end in the newest; a later batch with an older version changes nothing; an
        owner left out is NULL; a deleted partner is hidden (`archived`)."""
        engine = create_engine(pipeline_db["gateway"], trace_sql=False)
        sessions = session_factory(engine)
        first, second = uuid.uuid4(), uuid.uuid4()
        owner = unique("partners-")

        def tier_changed(version: int, tier: c.PartnerTier) -> c.PartnerTierChangedV1:
            return c.PartnerTierChangedV1(
                partner=partner_snapshot(version, owner, id=first, name="First", tier=tier),
                from_tier=c.PartnerTier.bronze, to_tier=tier, trailing_revenue=Decimal("1.00"), currency="USD")

        created = c.PartnerCreatedV1(partner_id=first, name="First", type=c.PartnerType.isv,
                                     tier=c.PartnerTier.bronze, status=c.PartnerStatus.active, owner=None,
                                     version=1)
        deleted = c.PartnerDeletedV1(partner=partner_snapshot(2, None, id=second, name="Second",  # type: ignore[arg-type]
                                                              deleted_at=datetime.now(UTC)))
        try:
            older = tier_changed(2, c.PartnerTier.silver)
            for batch in ([tier_changed(3, c.PartnerTier.gold), created, deleted, older], [older]):
                async with sessions() as session, session.begin():
                    await partners_rm.on_partners(session, batch)
            async with sessions() as session:
                rows = {r.id: r for r in await session.scalars(select(partners_rm.PartnerView).where(
                    partners_rm.PartnerView.id.in_([first, second])))}
            assert (rows[first].version, rows[first].tier, rows[first].owner) == (3, "gold", owner)
            assert (rows[second].version, rows[second].archived, rows[second].owner) == (2, True, None)
        finally:
            await engine.dispose()


class TestRebuild:
    async def test_a_replay_rebuilds_the_same_kpis(self, api, bus_client, pipeline_db, pipeline_nats):
        owner = unique("owner-")
        partner = await send(bus_client, c.CreatePartner(name=unique("R "), type="isv", owner=owner))
        for amount, stage in (("1000", "won"), ("2000", "proposal"), ("3000", "lost")):
            opp = await send(bus_client, c.CreateOpportunity(name="R", customer="C", amount=amount, owner=owner,
                                                             partner_id=partner.id))
            await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage=stage))

        settings = await send(bus_client, c.GetPipelineSettings())

        async def settled():
            k = (await api.get("/api/kpis/pipeline", params={"owner": owner})).json()
            caught_up = k["settings_version"] == settings.version  # earlier tests' settings changes, too
            # The open deal at its last stage: across deals the relay keeps no order, so the two closed
            # deals can be in before the open one's move to proposal (a read then would differ from the replay).
            open_stages = [s["stage"] for s in k["pipeline_by_stage"]]
            return caught_up and k["won"] == 1 and k["lost"] == 1 and open_stages == ["proposal"] and k

        before = await eventually(settled, what="the read model")
        applied = await rebuild(settings_for(pipeline_db["gateway"], pipeline_nats))
        assert applied["gateway__pipeline_opportunity_created_v1"] >= 3
        # (Only this owner's figures: other tests write snapshots into the read model without the stream.)
        assert (await api.get("/api/kpis/pipeline", params={"owner": owner})).json() == before


class TestAggregates:
    async def test_incremental_aggregates_equal_a_recount_from_the_rows(self, api, bus_client, pipeline_db):
        """Whatever the package's tests did so far (moves back and forth, reopenings, races, backdating),
        the aggregates the KPIs read equal a recount from the stored opportunities."""
        owner = unique("owner-")
        opp = await send(bus_client, c.CreateOpportunity(name="A", customer="C", amount="10", owner=owner))
        for stage in ("won", "proposal", "lost", "lead"):
            await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage=stage))

        async def settled():
            r = await api.get("/api/kpis/pipeline", params={"owner": owner})
            return [s["stage"] for s in r.json()["pipeline_by_stage"]] == ["lead"]

        await eventually(settled, what="the last move")
        engine = create_engine(pipeline_db["gateway"], trace_sql=False)
        try:
            async with session_factory(engine)() as session:
                drift = await rm.aggregate_drift(session)
                assert set(drift) >= set(rm.AGGREGATES) and not any(drift.values()), drift
            async with session_factory(engine)() as session, session.begin():
                await rm.recount(session)
                assert not any((await rm.aggregate_drift(session)).values())
                await session.rollback()
        finally:
            await engine.dispose()


class TestPartnerArr:
    async def test_the_kept_arr_equals_the_arr_counted_from_months_and_rolls_over(self, api, bus_client,
                                                                                  pipeline_db):
        owner = unique("owner-")
        await send(bus_client, c.UpdatePipelineSettings(fx_rates={"EUR": "1.25"}))
        try:
            partner = await send(bus_client, c.CreatePartner(name=unique("Arr "), type="msp", owner=owner))
            for amount, currency in (("1000.10", "USD"), ("333.33", "EUR"), ("10", "EUR")):
                opp = await send(bus_client, c.CreateOpportunity(name="A", customer="C", amount=amount,
                                                                 currency=currency, partner_id=partner.id))
                await send(bus_client, c.MoveOpportunity(opportunity_id=opp.id, stage="won"))

            async def arr():
                k = (await api.get("/api/kpis/pipeline", params={"owner": owner})).json()
                return k["arr_by_partner"] and Decimal(k["arr_by_partner"][0]["arr"])

            # 1000.10 + round((333.33 + 10) x 1.25, 2) = 1000.10 + 429.16 = 1429.26
            assert await eventually(lambda: _equals(arr, Decimal("1429.26")), what="the ARR") == Decimal("1429.26")
            engine = create_engine(pipeline_db["gateway"], trace_sql=False)
            sessions = session_factory(engine)
            try:
                today = datetime.now(UTC).date()
                async with sessions() as session, session.begin():
                    kept = await rm.kpis(session, as_of=today, owner=owner)
                    await session.execute(text("DELETE FROM gateway.pipeline_arr_window"))
                    counted = await rm.kpis(session, as_of=today, owner=owner)
                    await session.rollback()
                assert kept.arr_by_partner == counted.arr_by_partner
                assert kept.arr_by_partner_type == counted.arr_by_partner_type
                # A month passes: the window on record is last month's; the next read rolls it over.
                async with sessions() as session, session.begin():
                    await session.execute(text(
                        "UPDATE gateway.pipeline_arr_window SET first_month = first_month - interval '1 month', "
                        "last_month = last_month - interval '1 month'"))
                    await session.execute(text("DELETE FROM gateway.pipeline_partner_arr"))
                    # ... and it is a new day: the KPIs kept for "today" are yesterday's.
                    await session.execute(text("UPDATE gateway.pipeline_kpi_snapshot SET as_of = as_of - 1"))
                assert await arr() == Decimal("1429.26")
                async with sessions() as session:
                    drift = await rm.aggregate_drift(session)
                    assert drift["partner_arr"] == 0
            finally:
                await engine.dispose()
            # New rates convert the kept ARR afresh.
            await send(bus_client, c.UpdatePipelineSettings(fx_rates={"EUR": "2"}))
            # 1000.10 + 686.66 = 1686.76
            await eventually(lambda: _equals(arr, Decimal("1686.76")), what="the ARR at the new rate")
        finally:
            await send(bus_client, c.UpdatePipelineSettings(fx_rates={}))


    async def test_a_batch_whose_arr_changes_are_all_zero_applies(self, api, bus_client, pipeline_db):
        """A won deal in a currency without an exchange rate, alone in its batch, changes no partner's
        ARR: nothing is written to the totals, and the event is applied (it used to fail on an empty
        parameter list, eight times, and be dead-lettered)."""
        settings = await send(bus_client, c.UpdatePipelineSettings(fx_rates={}))

        async def no_rates_applied():
            k = (await api.get("/api/kpis/pipeline")).json()
            return k["settings_version"] == settings.version

        # (A settings change rebuilds the kept ARR; the checks below must not straddle one.)
        await eventually(no_rates_applied, what="the settings without exchange rates")
        engine = create_engine(pipeline_db["gateway"], trace_sql=False)
        sessions = session_factory(engine)
        now = datetime.now(UTC)
        owner, partner = unique("arr-zero-"), uuid.uuid4()

        def won_in_eur(oid: uuid.UUID) -> c.OpportunityStageChangedV1:
            return c.OpportunityStageChangedV1(
                opportunity=snapshot(2, "won", owner, id=oid, currency="EUR", partner_id=partner, closed_at=now),
                from_stage="lead", to_stage="won", changed_by="x", changed_at=now)

        try:
            async with sessions() as session, session.begin():
                await rm.ensure_arr_window(session, now.date())  # the kept window: the path that failed
            async with sessions() as session, session.begin():
                await rm.on_opportunities(session, [won_in_eur(uuid.uuid4())])
            async with sessions() as session:
                assert await session.scalar(select(rm.PartnerArrTotal.arr)
                                            .where(rm.PartnerArrTotal.partner_id == partner)) is None
                drift = await rm.aggregate_drift(session)
                assert drift["partner_arr"] == 0, drift

            # The same through the bus: applied, not dead-lettered.
            event = won_in_eur(uuid.uuid4())
            js = bus_client.jetstream()
            await js.publish(event.subject, event.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": str(event.event_id)})

            async def won_twice():
                k = (await api.get("/api/kpis/pipeline", params={"owner": owner})).json()
                return k["won"] == 2

            await eventually(won_twice, what="the second won EUR deal in the KPIs")
            assert not [d for d in await deadletter.list_all(js) if owner.encode() in d.data]
        finally:
            await engine.dispose()


async def _equals(get, expected):
    value = await get()
    return value if value == expected else None


class TestHostileEvents:
    async def test_the_gateway_consumers_park_bad_events_and_shrug_off_repeats(self, api, bus_client):
        """Events on the pipeline's subjects that are not JSON, of an unknown version or out of bounds are
        dead-lettered by the gateway's consumers; a repeated or older snapshot changes nothing."""
        js = bus_client.jetstream()
        owner = unique("hostile-")
        oid = uuid.uuid4()
        now = datetime.now(UTC)
        newer = c.OpportunityStageChangedV1(opportunity=snapshot(2, "proposal", owner, id=oid), from_stage="lead",
                                            to_stage="proposal", changed_by="x", changed_at=now)
        older = c.OpportunityCreatedV1(opportunity=snapshot(1, "lead", owner, id=oid))
        bad_amount = json.loads(c.OpportunityCreatedV1(opportunity=snapshot(1, "lead", owner, id=uuid.uuid4()))
                                .model_dump_json())
        bad_amount["opportunity"]["amount"] = "-5.00"
        future_version = {**json.loads(older.model_dump_json()), "schema_version": 7}
        bodies = [
            (c.OpportunityCreatedV1.subject, f"not json {owner}".encode()),
            (c.OpportunityCreatedV1.subject, json.dumps(future_version).encode()),
            (c.OpportunityCreatedV1.subject, json.dumps(bad_amount).encode()),
            (c.OpportunityStageChangedV1.subject, newer.model_dump_json().encode()),
            (c.OpportunityStageChangedV1.subject, newer.model_dump_json().encode()),
            (c.OpportunityCreatedV1.subject, older.model_dump_json().encode()),
        ]
        for subject, data in bodies:
            await js.publish(subject, data, headers={"Nats-Msg-Id": str(uuid.uuid4())})

        async def parked():
            letters = await deadletter.list_all(js, consumer="gateway__pipeline_opportunity_created_v1")
            mine = [d for d in letters if owner.encode() in d.data]
            return len(mine) == 3 and mine

        letters = await eventually(parked, what="three dead letters")
        reasons = " | ".join(d.reason for d in letters)
        assert "not JSON" in reasons and "unknown schema_version 7" in reasons and "amount" in reasons

        async def settled():
            k = (await api.get("/api/kpis/pipeline", params={"owner": owner})).json()
            return [(s["stage"], s["deals"], s["amount"]) for s in k["pipeline_by_stage"]]

        assert await eventually(settled, what="the newest snapshot") == [("proposal", 1, "1000.00")]
