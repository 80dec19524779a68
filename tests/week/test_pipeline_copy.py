"""The relationships service's copy of the pipeline: a redelivered event is applied once (one logged
change), an older snapshot never replaces a newer one, and malformed or unknown-version events are parked
in the dead letters with a reason while the next good event is applied."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from contracts import pipeline as p
from runtime import deadletter
from runtime.db import plain_dsn
from tests.support.bus import publish, settled
from tests.week.conftest import member, opportunity

pytestmark = pytest.mark.usefixtures("fresh")


async def rows(private_db, sql: str, *args):
    conn = await asyncpg.connect(plain_dsn(private_db["admin"]))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_duplicates_and_late_snapshots_change_nothing(nc, service, private_db):
    owner = member()
    t0 = datetime.now(UTC)
    o = opportunity(owner, version=2, created_at=t0 - timedelta(days=3), stage_entered_at=t0)
    moved = p.OpportunityStageChangedV1(opportunity=o, from_stage="Prospect", to_stage="Qualified", changed_by=owner,
                                        changed_at=t0)
    consumer = service.consumer_of(moved.subject)
    applied, duplicates = consumer.stats.applied, consumer.stats.duplicates
    await publish(nc, moved)
    await publish(nc, moved, msg_id=str(uuid.uuid4()))  # past the broker's de-duplication: the inbox catches it
    await publish(nc, p.OpportunityCreatedV1(opportunity=o.model_copy(update={"version": 1, "stage_name": "Prospect"})))
    await settled(nc, service)
    assert consumer.stats.applied - applied == 2 and consumer.stats.duplicates - duplicates == 1
    [deal] = await rows(private_db, "SELECT version, stage_name FROM relationships.pipeline_deal WHERE id = $1", o.id)
    assert (deal["version"], deal["stage_name"]) == (2, "Qualified")
    changes = await rows(private_db, "SELECT kind FROM relationships.pipeline_deal_change WHERE opportunity_id = $1 "
                                     "ORDER BY kind", o.id)
    assert [c["kind"] for c in changes] == ["created", "moved"]


async def test_hostile_events_are_dead_lettered_and_the_next_good_one_applied(nc, service, private_db):
    js = nc.jetstream()
    good = opportunity(member(), created_at=datetime.now(UTC))
    event = p.OpportunityCreatedV1(opportunity=good)
    consumer = service.consumer_of(event.subject)
    key = next(s.inbox_key for s in consumer.subs if s.subject == event.subject)
    body = json.loads(event.model_dump_json())
    bad_bodies = [
        b"\xff\xfe not json",
        json.dumps({**body, "schema_version": 7}).encode(),
        json.dumps({**body, "opportunity": {**body["opportunity"], "name": "nul\x00"}}).encode(),
        json.dumps({**body, "opportunity": {**body["opportunity"], "amount": "1e400"}}).encode(),
        json.dumps({**body, "opportunity": {**body["opportunity"], "version": "many"}}).encode(),
    ]
    before = len(await deadletter.list_all(js, consumer=key))
    for data in bad_bodies:
        await publish(nc, event, data=data, msg_id=str(uuid.uuid4()))
    await publish(nc, event)
    await settled(nc, service)
    letters = (await deadletter.list_all(js, consumer=key))[before:]
    assert len(letters) == len(bad_bodies) and all(x.reason for x in letters), [x.reason for x in letters]
    assert await rows(private_db, "SELECT 1 FROM relationships.pipeline_deal WHERE id = $1", good.id)


async def test_a_deleted_deal_is_kept_as_deleted_in_any_order_and_restored(nc, service, private_db):
    """The copy keeps a deleted deal's outcome as "deleted" (every open/won/lost query leaves it out); a
    duplicate or an older snapshot arriving after it changes nothing; the restore brings the real outcome back."""
    owner = member()
    t0 = datetime.now(UTC)
    o = opportunity(owner, version=1, created_at=t0, stage_entered_at=t0)
    deleted = p.OpportunityDeletedV1(opportunity=o.model_copy(update={"version": 2, "deleted_at": t0}))
    consumer = service.consumer_of(deleted.subject)
    duplicates = consumer.stats.duplicates
    await publish(nc, deleted)
    await publish(nc, deleted, msg_id=str(uuid.uuid4()))
    await publish(nc, p.OpportunityCreatedV1(opportunity=o))  # the older one, late
    await settled(nc, service)
    assert consumer.stats.duplicates - duplicates == 1
    query = "SELECT version, outcome FROM relationships.pipeline_deal WHERE id = $1"
    [deal] = await rows(private_db, query, o.id)
    assert (deal["version"], deal["outcome"]) == (2, p.DELETED_OUTCOME)
    await publish(nc, p.OpportunityRestoredV1(opportunity=o.model_copy(update={"version": 3})))
    await settled(nc, service)
    [deal] = await rows(private_db, query, o.id)
    assert (deal["version"], deal["outcome"]) == (3, o.outcome.value)
