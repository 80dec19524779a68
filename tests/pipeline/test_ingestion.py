"""External opportunities from sync workers over JetStream into the pipeline service: idempotent by
(source, external id), newer-wins by last-modified, duplicates and out-of-order delivery harmless,
bad events dead-lettered with the reason."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import DBAPIError

from contracts import pipeline as c
from contracts import sync
from runtime import deadletter
from runtime.commands import send
from runtime.db import create_engine, session_factory
from runtime.testing import eventually, unique
from services.pipeline.ingestion.service import apply_external
from services.pipeline.opportunities.repository import OpportunityRepository
from tests.pipeline.helpers import external, publish, sql

DURABLE = "pipeline__sync_opportunity_external_upserted_v1"


def consumer(pipeline_service):
    return pipeline_service.consumer_of(sync.OpportunityExternalUpsertedV1.subject)


async def processed(pipeline_service, before: tuple[int, int, int], n: int) -> bool:
    s = consumer(pipeline_service).stats
    return (s.applied + s.duplicates + s.dead_lettered) - sum(before) >= n


def counts(pipeline_service) -> tuple[int, int, int]:
    s = consumer(pipeline_service).stats
    return s.applied, s.duplicates, s.dead_lettered


async def stored(db, external_id: str) -> list:
    return await sql(db, "SELECT id, stage, amount, name, source_modified_at, version, owner, partner_id "
                         "FROM pipeline.opportunity WHERE source = 'aws' AND external_id = $1", external_id)


async def history(db, opportunity_id) -> list[tuple[str | None, str]]:
    rows = await sql(db, "SELECT from_stage, to_stage FROM pipeline.opportunity_stage_change "
                         "WHERE opportunity_id = $1 ORDER BY id", opportunity_id)
    return [(r["from_stage"], r["to_stage"]) for r in rows]


async def send_and_wait(nc, pipeline_service, *events, raw: list[bytes] = ()) -> None:
    before = counts(pipeline_service)
    js = nc.jetstream()
    for e in events:
        # A fresh message id per publish: only the pipeline's own idempotency stands in the way.
        await publish(js, e, msg_id=str(uuid.uuid4()))
    for data in raw:
        await publish(js, data=data)
    await eventually(lambda: processed(pipeline_service, before, len(events) + len(raw)), what="events processed")


class TestIdempotency:
    async def test_the_same_event_twice_leaves_one_opportunity(self, bus_client, pipeline_service, pipeline_db):
        event = external(stage="Technical Validation", amount="75000.00")
        await send_and_wait(bus_client, pipeline_service, event, event)
        rows = await stored(pipeline_db, event.external_id)
        assert len(rows) == 1 and rows[0]["stage"] == "technical_validation"
        assert rows[0]["amount"] == Decimal("75000.00") and rows[0]["version"] == 1
        # The same state again under a new event id (a worker re-sending): stale, nothing changes.
        await send_and_wait(bus_client, pipeline_service, event.model_copy(update={"event_id": uuid.uuid4()}))
        rows = await stored(pipeline_db, event.external_id)
        assert len(rows) == 1 and rows[0]["version"] == 1
        assert await history(pipeline_db, rows[0]["id"]) == [(None, "technical_validation")]

    async def test_an_older_event_after_a_newer_one_changes_nothing(self, bus_client, pipeline_service, pipeline_db):
        t0 = datetime.now(UTC) - timedelta(hours=2)
        older = external(stage="Qualified", amount="10000.00", last_modified=t0)
        newer = older.model_copy(update={"event_id": uuid.uuid4(), "stage": "Committed", "amount": Decimal("12000.00"),
                                         "last_modified": t0 + timedelta(minutes=30), "name": "Renamed"})
        await send_and_wait(bus_client, pipeline_service, newer)
        await send_and_wait(bus_client, pipeline_service, older)
        rows = await stored(pipeline_db, older.external_id)
        assert len(rows) == 1
        row = rows[0]
        assert (row["stage"], row["amount"], row["name"]) == ("committed", Decimal("12000.00"), "Renamed")
        assert row["source_modified_at"] == newer.last_modified and row["version"] == 1
        assert await history(pipeline_db, row["id"]) == [(None, "committed")]

    async def test_a_shuffled_burst_of_versions_ends_in_the_newest(self, bus_client, pipeline_service, pipeline_db):
        t0 = datetime.now(UTC) - timedelta(hours=1)
        stages = ["Prospect", "Qualified", "Technical Validation", "Business Validation", "Committed", "Launched"]
        base = external(stage=stages[0], last_modified=t0)
        versions = [base.model_copy(update={"event_id": uuid.uuid4(), "stage": s, "amount": Decimal(1000 * (i + 1)),
                                            "last_modified": t0 + timedelta(minutes=i)})
                    for i, s in enumerate(stages)]
        shuffled = versions + versions[:3]
        random.Random(7).shuffle(shuffled)
        await send_and_wait(bus_client, pipeline_service, *shuffled)
        rows = await stored(pipeline_db, base.external_id)
        assert len(rows) == 1 and rows[0]["stage"] == "launched" and rows[0]["amount"] == Decimal("6000.00")
        steps = await history(pipeline_db, rows[0]["id"])
        assert steps[-1][1] == "launched" and all(a != b for a, b in steps)
        assert len(steps) == rows[0]["version"], "one history row per applied stage change"

    async def test_an_update_keeps_our_owner_and_partner_when_the_worker_does_not_know_them(
            self, bus_client, pipeline_service, pipeline_db):
        partner = await send(bus_client, c.CreatePartner(name=unique("AWS "), type="hyperscaler"))
        first = external(partner_id=partner.id, owner="maria", last_modified=datetime.now(UTC) - timedelta(minutes=5))
        await send_and_wait(bus_client, pipeline_service, first)
        second = first.model_copy(update={"event_id": uuid.uuid4(), "partner_id": None, "owner": None,
                                          "last_modified": datetime.now(UTC), "ace": c.AceState(
                                              review_status="Action Required", reviewer_comments="Add the use case",
                                              next_steps="Call the PDM")})
        await send_and_wait(bus_client, pipeline_service, second)
        row = (await stored(pipeline_db, first.external_id))[0]
        assert (row["owner"], row["partner_id"], row["version"]) == ("maria", partner.id, 2)
        detail = await send(bus_client, c.GetOpportunity(opportunity_id=row["id"]))
        assert detail.ace.review_status == "Action Required" and detail.source == "aws" and detail.hyperscaler == "aws"
        assert [n.text for n in detail.next_steps_history] == ["Call the PDM"]


class TestDeadLetters:
    @pytest.mark.parametrize(("change", "reason"), [
        ({"stage": "Negotiating"}, "is not a stage of pipeline 'cosell'"),
        ({"partner_id": str(uuid.uuid4())}, "no partner with id"),
        ({"last_modified": (datetime.now(UTC) + timedelta(days=3)).isoformat()}, "is in the future"),
        ({"pipeline": "nope"}, "no pipeline 'nope'"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"currency": "DOGE"}, "currency"),
        ({"external_id": "has spaces\nand newlines"}, "external_id"),
        ({"last_modified": "2026-01-01T00:00:00"}, "last_modified"),
        ({"source": "oracle"}, "source"),
        ({"schema_version": 9}, "unknown schema_version 9"),
        ({"name": None}, "name"),
    ])
    async def test_bad_events_are_dead_lettered_with_the_reason(self, bus_client, pipeline_service, change, reason):
        body = json.loads(external().model_dump_json())
        body.update(change)
        marker = unique("x")
        body["customer"] = marker
        await send_and_wait(bus_client, pipeline_service, raw=[json.dumps(body).encode()])

        async def letter():
            for d in await deadletter.list_all(bus_client.jetstream(), consumer=DURABLE):
                if marker.encode() in d.data:
                    return d
            return None

        found = await eventually(letter, what="the dead letter")
        assert reason in found.reason, found.reason
        assert found.subject == sync.OpportunityExternalUpsertedV1.subject

    @pytest.mark.parametrize("data", [b"", b"{", b"[1, 2]", b"\xff\xfe\x00", b'{"schema_version": "1"}',
                                      b"x" * 100_000])
    async def test_malformed_bodies_are_dead_lettered(self, bus_client, pipeline_service, data):
        before = consumer(pipeline_service).stats.dead_lettered
        await send_and_wait(bus_client, pipeline_service, raw=[data])
        assert consumer(pipeline_service).stats.dead_lettered == before + 1

    async def test_a_pipeline_change_is_refused_and_the_stored_one_kept(self, bus_client, pipeline_service,
                                                                         pipeline_db):
        first = external(last_modified=datetime.now(UTC) - timedelta(minutes=1))
        await send_and_wait(bus_client, pipeline_service, first)
        before = consumer(pipeline_service).stats.dead_lettered
        moved = first.model_copy(update={"event_id": uuid.uuid4(), "pipeline": "resale", "stage": "Won",
                                         "last_modified": datetime.now(UTC)})
        await send_and_wait(bus_client, pipeline_service, moved)
        assert consumer(pipeline_service).stats.dead_lettered == before + 1
        assert (await stored(pipeline_db, first.external_id))[0]["stage"] == "qualified"


class TestSharedDeals:
    """A deal made in PartnerOps and shared to ACE comes back as the record's first version, naming the
    deal: the deal becomes that record (no second deal), and later versions update it."""

    async def test_the_first_version_links_the_deal_and_later_ones_update_it(self, bus_client, pipeline_service,
                                                                              pipeline_db):
        deal = await send(bus_client, c.CreateOpportunity(
            name="Shared deal", customer="Initech", amount=Decimal("24000.00"), deal_model=c.DealModel.cosell,
            pipeline="cosell", stage="qualified", actor="tests"))
        t0 = datetime.now(UTC) - timedelta(minutes=10)
        first = external(stage="Qualified", amount="24000.00", last_modified=t0,
                         name="Shared deal").model_copy(update={"deal_id": deal.id})
        later = first.model_copy(update={"event_id": uuid.uuid4(), "stage": "Committed",
                                         "last_modified": t0 + timedelta(minutes=5)})
        await send_and_wait(bus_client, pipeline_service, first, later)
        rows = await stored(pipeline_db, first.external_id)
        assert [r["id"] for r in rows] == [deal.id] and rows[0]["stage"] == "committed"
        detail = await send(bus_client, c.GetOpportunity(opportunity_id=deal.id))
        assert detail.source is c.Source.aws and detail.hyperscaler is c.Hyperscaler.aws

    async def test_a_deal_deleted_meanwhile_makes_the_record_a_deal_of_its_own(self, bus_client, pipeline_service,
                                                                                 pipeline_db):
        event = external(stage="Prospect").model_copy(update={"deal_id": uuid.uuid4()})
        await send_and_wait(bus_client, pipeline_service, event)
        assert len(await stored(pipeline_db, event.external_id)) == 1

    async def test_a_deal_linked_to_another_record_is_not_linked_twice(self, bus_client, pipeline_service,
                                                                        pipeline_db):
        first = external(stage="Prospect")
        await send_and_wait(bus_client, pipeline_service, first)
        [row] = await stored(pipeline_db, first.external_id)
        before = consumer(pipeline_service).stats.dead_lettered
        other = external(stage="Prospect").model_copy(update={"deal_id": row["id"]})
        await send_and_wait(bus_client, pipeline_service, other)
        assert consumer(pipeline_service).stats.dead_lettered == before + 1
        assert await stored(pipeline_db, other.external_id) == []
        assert len(await stored(pipeline_db, first.external_id)) == 1


class TestOneBatch:
    """`apply_external` on one batch, in one transaction (the consumer's unit): its rows, stage history and next
    steps go in as one statement each (arrays), so NULLs, order and a record seen twice must come out as they
    were sent."""

    async def apply(self, pipeline_db, events):
        engine = create_engine(pipeline_db["pipeline"], pool_size=1, trace_sql=False)
        try:
            async with session_factory(engine)() as session, session.begin():
                return await apply_external(session, events)
        finally:
            await engine.dispose()

    async def test_an_empty_batch_writes_nothing(self, pipeline_db):
        before = await sql(pipeline_db, "SELECT (SELECT count(*) FROM pipeline.opportunity) AS o, "
                                        "(SELECT count(*) FROM pipeline.outbox) AS e")
        assert await self.apply(pipeline_db, []) == Counter()
        assert await sql(pipeline_db, "SELECT (SELECT count(*) FROM pipeline.opportunity) AS o, "
                                      "(SELECT count(*) FROM pipeline.outbox) AS e") == before

    async def test_nulls_and_a_record_created_and_moved_in_one_batch(self, pipeline_db):
        t0 = datetime.now(UTC) - timedelta(hours=1)
        bare = external(source="gcp", stage="Qualified", last_modified=t0, owner=None, partner_id=None,
                        expected_close_date=None, ace=None, gcp=None)
        first = external(stage="Prospect", last_modified=t0, owner="ana", expected_close_date=date(2027, 1, 31),
                         ace={"next_steps": "Call the buyer"})
        moved = first.model_copy(update={"event_id": uuid.uuid4(), "stage": "Committed", "last_modified": t0
                                         + timedelta(minutes=5), "ace": c.AceState(next_steps="Send the quote")})
        assert await self.apply(pipeline_db, [bare, first, moved]) == Counter(created=2, updated=1)

        [row] = await sql(pipeline_db, "SELECT * FROM pipeline.opportunity WHERE source = 'gcp' AND external_id = $1",
                          bare.external_id)
        assert (row["stage"], row["version"], row["name"]) == ("qualified", 1, bare.name)
        assert [row[n] for n in ("owner", "partner_id", "expected_close_date", "ace", "gcp", "closed_at",
                                 "launched_at", "deleted_at")] == [None] * 8
        assert row["hyperscaler"] == "gcp" and row["source_modified_at"] == t0
        assert await sql(pipeline_db, "SELECT 1 FROM pipeline.opportunity_next_step WHERE opportunity_id = $1",
                         row["id"]) == []
        [history_row] = await sql(pipeline_db, "SELECT from_stage, changed_by FROM pipeline.opportunity_stage_change "
                                               "WHERE opportunity_id = $1", row["id"])
        assert (history_row["from_stage"], history_row["changed_by"]) == (None, "sync:gcp")

        [row] = await stored(pipeline_db, first.external_id)
        assert (row["stage"], row["version"], row["owner"]) == ("committed", 2, "ana")
        assert await history(pipeline_db, row["id"]) == [(None, "prospect"), ("prospect", "committed")]
        steps = await sql(pipeline_db, "SELECT text FROM pipeline.opportunity_next_step WHERE opportunity_id = $1 "
                                       "ORDER BY id", row["id"])
        assert [s["text"] for s in steps] == ["Call the buyer", "Send the quote"]
        [ace] = await sql(pipeline_db, "SELECT ace FROM pipeline.opportunity WHERE id = $1", row["id"])
        assert json.loads(ace["ace"])["next_steps"] == "Send the quote"

    async def test_a_stored_record_updated_in_a_batch_keeps_what_the_event_leaves_out(self, pipeline_db):
        t0 = datetime.now(UTC) - timedelta(hours=1)
        first = external(stage="Prospect", last_modified=t0, owner="ana", expected_close_date=date(2027, 1, 31))
        await self.apply(pipeline_db, [first])
        later = first.model_copy(update={"event_id": uuid.uuid4(), "owner": None, "expected_close_date": None,
                                         "amount": Decimal("123.45"), "last_modified": t0 + timedelta(minutes=1)})
        assert await self.apply(pipeline_db, [later]) == Counter(updated=1)
        [row] = await sql(pipeline_db, "SELECT owner, expected_close_date, amount, version, stage FROM "
                                       "pipeline.opportunity WHERE source = 'aws' AND external_id = $1",
                          first.external_id)
        # The owner is ours when the worker sends none; a close date the source cleared is cleared.
        assert tuple(row) == ("ana", None, Decimal("123.45"), 2, "prospect")

    async def test_the_foreign_keys_still_hold_in_the_one_statement(self, pipeline_db):
        """New opportunities and their history go in one statement, the history's foreign key checked at its
        end: history of an opportunity that is neither stored nor in the statement is refused."""
        engine = create_engine(pipeline_db["pipeline"], pool_size=1, trace_sql=False)
        now = datetime.now(UTC)
        try:
            async with session_factory(engine)() as session:
                with pytest.raises(DBAPIError, match="foreign key"):
                    async with session.begin():
                        await OpportunityRepository(session).write([], [], [dict(
                            opportunity_id=uuid.uuid4(), from_stage=None, to_stage="qualified", changed_by=None,
                            changed_at=now)], [])
        finally:
            await engine.dispose()
