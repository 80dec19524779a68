"""Hostile bodies of the pipeline's snapshot events (delete and restore among them): shared by the tables
of every copy of the pipeline, each adding the limits of its own columns."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from contracts import pipeline as c
from runtime.failures import MAX_EVENT_BYTES

# The delete and restore events every copy of the pipeline applies, and those of them about deals.
DELETE_RESTORE_MODELS = [c.OpportunityDeletedV1, c.OpportunityRestoredV1, c.PartnerDeletedV1, c.PartnerRestoredV1]
OPPORTUNITY_MODELS = (c.OpportunityDeletedV1, c.OpportunityRestoredV1)


def partner_snapshot(version: int, owner: str, *, id: uuid.UUID, **kw: Any) -> c.Partner:
    """A partner as the pipeline's events carry it (`kw` overrides a field)."""
    values = dict(id=id, name="Deleted Partner", type=c.PartnerType.isv, tier=c.PartnerTier.gold,
                  status=c.PartnerStatus.active, owner=owner, created_at=datetime.now(UTC), version=version)
    values.update(kw)
    return c.Partner.model_validate(values)


def hostile_bodies(good: dict, key: str) -> list[bytes]:
    """One defect each, in a valid event `good` whose snapshot is `good[key]` ("opportunity" or "partner"):
    undecodable, out of bounds, of an unknown version, or a snapshot no producer sends."""
    snap = good[key]
    deep = '{"a":' * 5000 + "{}" + "}" * 5000

    def changed(**change: object) -> bytes:
        return json.dumps({**good, key: {**snap, **change}}).encode()

    bodies = [
        b"\xff\xfe not even text",
        b"[1, 2, 3]",
        b"",
        json.dumps({**good, "schema_version": 99}).encode(),
        json.dumps({**good, "schema_version": "1"}).encode(),
        json.dumps({**good, "event_id": "not-a-uuid"}).encode(),
        json.dumps({**good, "occurred_at": "9999-12-31T00:00:00Z"}).encode(),
        json.dumps({k: v for k, v in good.items() if k != key}).encode(),
        json.dumps({**good, key: [snap]}).encode(),
        (json.dumps(good)[:-1] + ', "nested": ' + deep + "}").encode(),
        json.dumps({**good, "padding": "x" * MAX_EVENT_BYTES}).encode(),  # past the limit, under the server's
        changed(name="nul\u0000byte"),
        changed(version=2**40),  # past a Postgres integer
        changed(version=-1),
        changed(version="many"),
        changed(id="'; DROP TABLE pipeline_deal; --"),
        changed(deleted_at="99999-01-01T00:00:00Z"),
        changed(deleted_at="2026-13-45T00:00:00Z"),
        changed(deleted_at="0001-01-01T00:00:00Z"),  # before the platform's earliest date
        changed(deleted_at="9999-12-31T00:00:00Z"),  # after its latest
        changed(deleted_at=0),  # a number, not a time (read as 1970 before)
        changed(deleted_at="2026-10-01T12:00:00"),  # no time zone
    ]
    if key == "partner":
        bodies += [changed(type="reseller-of-the-moon"), changed(tier="platinum+"), changed(status=None)]
    else:
        bodies += [changed(amount="1e400"), changed(amount="-5.00"), changed(amount="NaN"),
                   changed(currency="DOLLARS"), changed(outcome="vanished"), changed(stage_entered_at=1e30)]
    return bodies


def at_the_limit(good: dict) -> bytes:
    """`good` padded to exactly MAX_EVENT_BYTES bytes (events ignore fields they do not know)."""
    short = len(json.dumps({**good, "padding": ""}).encode())
    data = json.dumps({**good, "padding": "x" * (MAX_EVENT_BYTES - short)}).encode()
    assert len(data) == MAX_EVENT_BYTES
    return data
