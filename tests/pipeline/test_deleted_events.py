"""The gateway's copy of the pipeline under the delete and restore events (issue 16), through its real
consumers: malformed and hostile bodies are dead-lettered with a reason and never applied partly, a body
at the limits is applied, a duplicate is absorbed by the inbox, and snapshots in any order end in the
newest (a restore before its delete, a delete of an unknown record, a late older snapshot)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from contracts import pipeline as c
from contracts.base import Event
from gateway.read_models import pipeline as rm
from runtime.db import create_engine, session_factory
from runtime.testing import unique
from tests.pipeline.helpers import sql
from tests.pipeline.test_read_model import open_by_stage, snapshot
from tests.support.bus import all_parked, publish, settled
from tests.support.snapshots import (
    DELETE_RESTORE_MODELS,
    OPPORTUNITY_MODELS,
    at_the_limit,
    hostile_bodies,
    partner_snapshot,
)

MODELS = DELETE_RESTORE_MODELS


def sample(model: type[Event], owner: str, *, id: uuid.UUID | None = None, version: int = 2, **kw) -> Event:
    """A valid event of `model` (deleted ones carry deleted_at, as the pipeline sends them)."""
    id = id or uuid.uuid4()
    if model in (c.OpportunityDeletedV1, c.PartnerDeletedV1):
        kw.setdefault("deleted_at", datetime.now(UTC))
    if model in OPPORTUNITY_MODELS:
        return model(opportunity=snapshot(version, "proposal", owner, id=id, **kw))
    return model(partner=partner_snapshot(version, owner, id=id, **kw))


def hostile(model: type[Event], good: dict) -> list[bytes]:
    key = "opportunity" if model in OPPORTUNITY_MODELS else "partner"
    return [*hostile_bodies(good, key),
            json.dumps({**good, key: {**good[key], "name": "x" * 201}}).encode()]  # past the read model's 200



async def opportunity_row(pipeline_db, oid: uuid.UUID) -> tuple[int, str] | None:
    rows = await sql(pipeline_db, "SELECT version, outcome FROM gateway.pipeline_opportunity WHERE id = $1", oid)
    return (rows[0]["version"], rows[0]["outcome"]) if rows else None


async def partner_row(pipeline_db, pid: uuid.UUID) -> tuple[int, bool] | None:
    rows = await sql(pipeline_db, "SELECT version, archived FROM gateway.pipeline_partner WHERE id = $1", pid)
    return (rows[0]["version"], rows[0]["archived"]) if rows else None


async def open_deals(pipeline_db, owner: str) -> dict[str, tuple[int, Decimal]]:
    engine = create_engine(pipeline_db["gateway"], trace_sql=False)
    try:
        async with session_factory(engine)() as session:
            return await open_by_stage(session, owner)
    finally:
        await engine.dispose()


class TestEveryConsumer:
    def test_the_table_covers_every_delete_and_restore_consumed(self, gateway_app, pipeline_service):
        """Every delete or restore subject the gateway consumes is in the table; the pipeline service (their
        producer) consumes none of them, so it needs no table of its own."""
        def consumed(service) -> set[str]:
            return {s for consumer in service.consumers for s in consumer.subjects
                    if s.startswith("pipeline.") and (".deleted." in s or ".restored." in s)}

        assert consumed(gateway_app.state.running) == {m.subject for m in MODELS}
        assert consumed(pipeline_service) == set()

    @pytest.mark.parametrize("model", MODELS, ids=lambda m: m.subject)
    async def test_malformed_and_hostile_go_to_the_dead_letters(self, model, gateway_app, bus_client,
                                                                pipeline_db):
        owner = unique("hostile-del-")
        event = sample(model, owner)
        await all_parked(bus_client, gateway_app.state.running, event,
                         hostile(model, json.loads(event.model_dump_json())))
        # Nothing of them was applied, not even partly.
        table = "pipeline_opportunity" if model in OPPORTUNITY_MODELS else "pipeline_partner"
        assert not await sql(pipeline_db, f"SELECT 1 FROM gateway.{table} WHERE owner = $1", owner)

    @pytest.mark.parametrize("model", MODELS, ids=lambda m: m.subject)
    async def test_a_body_at_the_limits_is_applied(self, model, gateway_app, bus_client, pipeline_db):
        """A name of the read model's full 200 characters in a body of exactly MAX_EVENT_BYTES bytes."""
        service = gateway_app.state.running
        consumer = service.consumer_of(model.subject)
        event = sample(model, unique("limit-del-"), name="n" * 200)
        data = at_the_limit(json.loads(event.model_dump_json()))
        applied = consumer.stats.applied
        await publish(bus_client, event, data=data)
        await settled(bus_client, service)
        assert consumer.stats.applied - applied == 1
        if model in OPPORTUNITY_MODELS:
            row = await opportunity_row(pipeline_db, event.opportunity.id)
            assert row == (2, c.DELETED_OUTCOME if model is c.OpportunityDeletedV1 else "open")
        else:
            assert await partner_row(pipeline_db, event.partner.id) == (2, model is c.PartnerDeletedV1)

    @pytest.mark.parametrize("model", MODELS, ids=lambda m: m.subject)
    async def test_a_valid_event_delivered_twice_is_applied_once(self, model, gateway_app, bus_client):
        service = gateway_app.state.running
        consumer = service.consumer_of(model.subject)
        event = sample(model, unique("twice-del-"))
        applied, duplicates = consumer.stats.applied, consumer.stats.duplicates
        await publish(bus_client, event)
        await publish(bus_client, event, msg_id=str(uuid.uuid4()))  # past the broker's de-duplication
        await settled(bus_client, service)
        assert consumer.stats.applied - applied == 1 and consumer.stats.duplicates - duplicates == 1


async def searched(api, word: str) -> set[uuid.UUID]:
    """The deals and partners /api/search finds by `word`."""
    r = await api.get("/api/search", params={"q": word})
    assert r.status_code == 200, r.text
    return {uuid.UUID(hit["id"]) for kind in ("deals", "partners") for hit in r.json()[kind]}


def word() -> str:
    return f"w{uuid.uuid4().hex[:12]}"


class TestOrderByVersion:
    """Events published one after another, each taken in before the next: the order they arrive in. The KPIs
    and search follow the newest snapshot."""

    async def _arrive(self, nc, service, *events: Event) -> None:
        for event in events:
            await publish(nc, event)
            await settled(nc, service)

    async def test_a_delete_of_an_unknown_deal_is_kept_and_the_late_create_changes_nothing(
            self, gateway_app, bus_client, pipeline_db, api):
        owner, oid, name = unique("unknown-del-"), uuid.uuid4(), word()
        await self._arrive(bus_client, gateway_app.state.running,
                           sample(c.OpportunityDeletedV1, owner, id=oid, version=2, name=name),
                           c.OpportunityCreatedV1(opportunity=snapshot(1, "proposal", owner, id=oid, name=name)))
        assert await opportunity_row(pipeline_db, oid) == (2, c.DELETED_OUTCOME)
        assert await open_deals(pipeline_db, owner) == {}
        assert await searched(api, name) == set()

    async def test_a_restore_before_its_delete_wins(self, gateway_app, bus_client, pipeline_db, api):
        owner, oid, name = unique("restore-first-"), uuid.uuid4(), word()
        await self._arrive(bus_client, gateway_app.state.running,
                           c.OpportunityCreatedV1(opportunity=snapshot(1, "proposal", owner, id=oid, name=name)),
                           sample(c.OpportunityRestoredV1, owner, id=oid, version=3, name=name),
                           sample(c.OpportunityDeletedV1, owner, id=oid, version=2, name=name))
        assert await opportunity_row(pipeline_db, oid) == (3, "open")
        assert await open_deals(pipeline_db, owner) == {"proposal": (1, Decimal("1000.00"))}
        assert await searched(api, name) == {oid}

    async def test_a_newer_delete_after_a_restore_hides_it_and_older_ones_change_nothing(
            self, gateway_app, bus_client, pipeline_db, api):
        owner, oid, name = unique("redelete-"), uuid.uuid4(), word()
        await self._arrive(bus_client, gateway_app.state.running,
                           sample(c.OpportunityDeletedV1, owner, id=oid, version=2, name=name),
                           sample(c.OpportunityRestoredV1, owner, id=oid, version=3, name=name),
                           sample(c.OpportunityDeletedV1, owner, id=oid, version=4, name=name),
                           sample(c.OpportunityRestoredV1, owner, id=oid, version=3, name=name),
                           c.OpportunityUpdatedV1(opportunity=snapshot(1, "proposal", owner, id=oid, name=name)))
        assert await opportunity_row(pipeline_db, oid) == (4, c.DELETED_OUTCOME)
        assert await open_deals(pipeline_db, owner) == {}
        assert await searched(api, name) == set()
        engine = create_engine(pipeline_db["gateway"], trace_sql=False)
        try:
            async with session_factory(engine)() as session:
                drift = await rm.aggregate_drift(session)
                assert not any(drift.values()), drift
        finally:
            await engine.dispose()

    async def test_partners_follow_the_same_rule(self, gateway_app, bus_client, pipeline_db, api):
        """A delete of an unknown partner is kept (hidden); a late create, an older restore and a restore
        before its delete behave as their versions say."""
        service, owner, name = gateway_app.state.running, unique("partner-del-"), word()
        unknown, early, archived = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await self._arrive(bus_client, service,
                           sample(c.PartnerDeletedV1, owner, id=unknown, version=3, name=name),
                           c.PartnerCreatedV1(partner_id=unknown, name=name, type=c.PartnerType.isv,
                                              tier=c.PartnerTier.gold, status=c.PartnerStatus.active, version=1),
                           sample(c.PartnerRestoredV1, owner, id=unknown, version=2, name=name),
                           sample(c.PartnerRestoredV1, owner, id=early, version=4, name=name),
                           sample(c.PartnerDeletedV1, owner, id=early, version=3, name=name),
                           c.PartnerArchivedV1(partner=partner_snapshot(2, owner, id=archived, archived=True,
                                                                        name=name)),
                           sample(c.PartnerRestoredV1, owner, id=archived, version=3, name=name))
        assert await partner_row(pipeline_db, unknown) == (3, True)
        assert await partner_row(pipeline_db, early) == (4, False)
        assert await partner_row(pipeline_db, archived) == (3, False)
        assert await searched(api, name) == {early, archived}
