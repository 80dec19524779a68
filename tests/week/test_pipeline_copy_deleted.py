"""The relationships service's copy of the pipeline under the delete and restore events (issue 16), as
wide as the gateway's table: malformed and hostile bodies are dead-lettered with a reason and never applied
partly, a body at the limit is applied, a duplicate is absorbed by the inbox, and snapshots in any order
end in the newest (a restore before its delete, a delete of an unknown record, a late older snapshot)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from contracts import pipeline as p
from contracts.base import Event
from tests.support.bus import all_parked, publish, settled
from tests.support.snapshots import (
    DELETE_RESTORE_MODELS,
    OPPORTUNITY_MODELS,
    at_the_limit,
    hostile_bodies,
    partner_snapshot,
)
from tests.week.conftest import member, opportunity
from tests.week.test_pipeline_copy import rows

pytestmark = pytest.mark.usefixtures("fresh")

MODELS = DELETE_RESTORE_MODELS


def sample(model: type[Event], owner: str, *, id: uuid.UUID | None = None, version: int = 2) -> Event:
    """A valid event of `model` (deleted ones carry deleted_at, as the pipeline sends them)."""
    id = id or uuid.uuid4()
    deleted_at = datetime.now(UTC) if model in (p.OpportunityDeletedV1, p.PartnerDeletedV1) else None
    if model in OPPORTUNITY_MODELS:
        o = opportunity(owner, version=version, created_at=datetime.now(UTC), opportunity_id=id)
        return model(opportunity=o.model_copy(update={"deleted_at": deleted_at}))
    return model(partner=partner_snapshot(version, owner, id=id, deleted_at=deleted_at))



async def deal_row(private_db, oid: uuid.UUID) -> tuple[int, str] | None:
    found = await rows(private_db, "SELECT version, outcome FROM relationships.pipeline_deal WHERE id = $1", oid)
    return (found[0]["version"], found[0]["outcome"]) if found else None


async def partner_row(private_db, pid: uuid.UUID) -> tuple[int, bool] | None:
    found = await rows(private_db, "SELECT version, archived FROM relationships.pipeline_partner WHERE id = $1", pid)
    return (found[0]["version"], found[0]["archived"]) if found else None


def test_the_table_covers_every_delete_and_restore_consumed(service):
    consumed = {s for consumer in service.consumers for s in consumer.subjects
                if s.startswith("pipeline.") and (".deleted." in s or ".restored." in s)}
    assert consumed == {m.subject for m in MODELS}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.subject)
async def test_malformed_and_hostile_go_to_the_dead_letters(model, nc, service, private_db):
    owner = member()
    event = sample(model, owner)
    await all_parked(nc, service, event, hostile_bodies(json.loads(event.model_dump_json()),
                                                        "opportunity" if model in OPPORTUNITY_MODELS else "partner"))
    # Nothing of them was applied, not even partly.
    table = "pipeline_deal" if model in OPPORTUNITY_MODELS else "pipeline_partner"
    assert not await rows(private_db, f"SELECT 1 FROM relationships.{table} WHERE owner = $1", owner)
    assert not await rows(private_db, "SELECT 1 FROM relationships.pipeline_deal_change")


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.subject)
async def test_a_body_at_the_limit_is_applied(model, nc, service, private_db):
    consumer = service.consumer_of(model.subject)
    event = sample(model, member())
    applied = consumer.stats.applied
    await publish(nc, event, data=at_the_limit(json.loads(event.model_dump_json())))
    await settled(nc, service)
    assert consumer.stats.applied - applied == 1
    if model in OPPORTUNITY_MODELS:
        outcome = p.DELETED_OUTCOME if model is p.OpportunityDeletedV1 else "open"
        assert await deal_row(private_db, event.opportunity.id) == (2, outcome)
    else:
        assert await partner_row(private_db, event.partner.id) == (2, model is p.PartnerDeletedV1)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.subject)
async def test_a_valid_event_delivered_twice_is_applied_once(model, nc, service):
    consumer = service.consumer_of(model.subject)
    event = sample(model, member())
    applied, duplicates = consumer.stats.applied, consumer.stats.duplicates
    await publish(nc, event)
    await publish(nc, event, msg_id=str(uuid.uuid4()))  # past the broker's de-duplication
    await settled(nc, service)
    assert consumer.stats.applied - applied == 1 and consumer.stats.duplicates - duplicates == 1


async def _arrive(nc, service, *events: Event) -> None:
    """Each event taken in before the next: the order they arrive in."""
    for event in events:
        await publish(nc, event)
        await settled(nc, service)


async def test_a_delete_of_an_unknown_deal_is_kept_and_the_late_create_changes_nothing(nc, service, private_db):
    owner, oid = member(), uuid.uuid4()
    o = opportunity(owner, version=1, created_at=datetime.now(UTC), opportunity_id=oid)
    await _arrive(nc, service, sample(p.OpportunityDeletedV1, owner, id=oid, version=2),
                  p.OpportunityCreatedV1(opportunity=o))
    assert await deal_row(private_db, oid) == (2, p.DELETED_OUTCOME)


async def test_a_restore_before_its_delete_wins(nc, service, private_db):
    owner, oid = member(), uuid.uuid4()
    o = opportunity(owner, version=1, created_at=datetime.now(UTC), opportunity_id=oid)
    await _arrive(nc, service, p.OpportunityCreatedV1(opportunity=o),
                  sample(p.OpportunityRestoredV1, owner, id=oid, version=3),
                  sample(p.OpportunityDeletedV1, owner, id=oid, version=2))
    assert await deal_row(private_db, oid) == (3, "open")


async def test_a_newer_delete_after_a_restore_hides_it_and_older_ones_change_nothing(nc, service, private_db):
    owner, oid = member(), uuid.uuid4()
    o = opportunity(owner, version=1, created_at=datetime.now(UTC), opportunity_id=oid)
    await _arrive(nc, service, sample(p.OpportunityDeletedV1, owner, id=oid, version=2),
                  sample(p.OpportunityRestoredV1, owner, id=oid, version=3),
                  sample(p.OpportunityDeletedV1, owner, id=oid, version=4),
                  sample(p.OpportunityRestoredV1, owner, id=oid, version=3),
                  p.OpportunityUpdatedV1(opportunity=o))
    assert await deal_row(private_db, oid) == (4, p.DELETED_OUTCOME)


async def test_partners_follow_the_same_rule(nc, service, private_db):
    """A delete of an unknown partner is kept (hidden); a late create, an older restore and a restore
    before its delete behave as their versions say; an archived partner restored is shown again."""
    owner = member()
    unknown, early, archived = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await _arrive(nc, service,
                  sample(p.PartnerDeletedV1, owner, id=unknown, version=3),
                  p.PartnerCreatedV1(partner_id=unknown, name="Late", type=p.PartnerType.isv,
                                     tier=p.PartnerTier.gold, status=p.PartnerStatus.active, version=1),
                  sample(p.PartnerRestoredV1, owner, id=unknown, version=2),
                  sample(p.PartnerRestoredV1, owner, id=early, version=4),
                  sample(p.PartnerDeletedV1, owner, id=early, version=3),
                  p.PartnerArchivedV1(partner=partner_snapshot(2, owner, id=archived, archived=True)),
                  sample(p.PartnerRestoredV1, owner, id=archived, version=3))
    assert await partner_row(private_db, unknown) == (3, True)
    assert await partner_row(private_db, early) == (4, False)
    assert await partner_row(private_db, archived) == (3, False)
