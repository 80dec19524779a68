"""Every consumer of the notifications service under malformed and hostile input: what can never be
processed goes to the dead letters with a reason, and nothing is alerted about it; deep nesting, NUL
characters, absurd numbers and dates, unknown versions and oversize bodies included."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import deadlines as dl
from contracts import pipeline as p
from contracts import schedules as s
from contracts import sync as sy
from contracts.base import Event
from runtime import deadletter
from services.notifications.handlers import SUBSCRIPTIONS
from tests.notifications.conftest import carried, cooling, deadline, deal, publish, settled, tick, won

MODELS = [sub.models[0] for sub in SUBSCRIPTIONS]


def sample(model: type[Event]) -> Event:
    o = deal()
    by_model: dict[type[Event], Event] = {
        p.OpportunityCreatedV1: p.OpportunityCreatedV1(opportunity=o),
        p.OpportunityUpdatedV1: p.OpportunityUpdatedV1(opportunity=o),
        p.OpportunityStageChangedV1: p.OpportunityStageChangedV1(opportunity=o, from_stage="lead", to_stage="proposal",
                                                                 changed_by=None, changed_at=datetime.now(UTC)),
        p.OpportunityDeletedV1: p.OpportunityDeletedV1(
            opportunity=o.model_copy(update={"deleted_at": datetime.now(UTC)})),
        p.OpportunityRestoredV1: p.OpportunityRestoredV1(opportunity=o),
        p.PipelineSettingsChangedV1: p.PipelineSettingsChangedV1(settings=p.PipelineSettings(version=1)),
        p.OpportunityWonV1: won(uuid.uuid4(), "100.00"),
        s.HourlyTickV1: tick(datetime.now(UTC)),
        dl.DeadlineChangedV1: dl.DeadlineChangedV1(deadline=deadline()),
        carried(3).__class__: carried(3),
        cooling().__class__: cooling(),
        sy.SyncRunFinishedV1: sy.SyncRunFinishedV1(
            source=p.ExternalSource.aws, catalog="AWS", kind="incremental", ok=True,
            finished_at=datetime.now(UTC), last_success_at=datetime.now(UTC)),
    }
    return by_model[model]


def hostile_bodies(good: dict) -> list[bytes]:
    deep = '{"a":' * 5000 + "{}" + "}" * 5000
    return [
        b"\xff\xfe not even text",
        b"[1, 2, 3]",
        json.dumps({**good, "schema_version": 99}).encode(),
        json.dumps({**good, "schema_version": "1"}).encode(),
        json.dumps({**good, "occurred_at": 1700000000}).encode(),
        json.dumps({**good, "occurred_at": "9999-12-31T00:00:00Z"}).encode(),
        json.dumps({**good, "event_id": "not-a-uuid"}).encode(),
        (json.dumps(good)[:-1] + ', "nested": ' + deep + "}").encode(),
        json.dumps({**good, "padding": "x" * 300_000}).encode(),  # past MAX_EVENT_BYTES, under the server limit
        json.dumps({**good, **_mangled(good)}).encode(),
    ]


def _mangled(good: dict) -> dict:
    out: dict = {}
    for key, value in good.items():
        if key == "amount":
            out[key] = "-1e30"
        elif key == "customer":
            out[key] = "x\u0000y"
        elif key == "opportunity":
            out[key] = {**value, "id": "'; DROP TABLE notifications.alert; --", "amount": "1e400",
                        "stage_entered_at": "2026-10-01T12:00:00"}
        elif key == "settings":
            out[key] = {**value, "fiscal_year_start_month": 13}
        elif key == "job":
            out[key] = "x" * 10_000
        elif key == "won_at":
            out[key] = "0001-01-01T00:00:00Z"
        elif key == "deadline":
            out[key] = {**value, "time_zone": "Mars/Olympus", "due_date": "99999-01-01"}
        elif key == "cold_at":
            out[key] = "2026-13-45T00:00:00Z"
        elif key == "task":
            out[key] = {**value, "carried": "many", "title": None}
    return out or {"event_id": None}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.subject)
async def test_malformed_and_hostile_go_to_the_dead_letters(model, service, bus_client):
    js = bus_client.jetstream()
    consumer = service.consumer_of(model.subject)
    key = next(sub.inbox_key for sub in consumer.subs if sub.subject == model.subject)
    good = json.loads(sample(model).model_dump_json())
    bodies = hostile_bodies(good)
    before = len(await deadletter.list_all(js, consumer=key))
    applied = consumer.stats.applied
    for body in bodies:
        await publish(bus_client, sample(model), data=body)
    await settled(bus_client, service)
    letters = (await deadletter.list_all(js, consumer=key))[before:]
    assert len(letters) == len(bodies), [x.reason for x in letters]
    assert all(x.reason and x.subject == model.subject for x in letters)
    assert consumer.stats.applied == applied


async def test_a_valid_event_after_the_hostile_ones_is_still_applied(service, bus_client):
    consumer = service.consumer_of(p.OpportunityWonV1.subject)
    applied = consumer.stats.applied
    await publish(bus_client, won(uuid.uuid4(), "10.00"))
    await settled(bus_client, service)
    assert consumer.stats.applied == applied + 1


def test_a_tick_takes_its_id_from_when_the_stream_stored_it():
    at = datetime(2026, 12, 7, 16, 0, 0, 120, tzinfo=UTC)
    first = s.HourlyTickV1.model_validate(s.HourlyTickV1.from_delivery({"schema_version": 1, "job": "hourly"}, at))
    again = s.HourlyTickV1.model_validate(s.HourlyTickV1.from_delivery({"schema_version": 1, "job": "hourly"}, at))
    later = s.HourlyTickV1.model_validate(s.HourlyTickV1.from_delivery({"schema_version": 1, "job": "hourly"},
                                                                       at + timedelta(hours=1)))
    assert first.event_id == again.event_id != later.event_id
    assert first.occurred_at == at
