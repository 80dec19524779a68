"""Every consumer of the commissions service under malformed, hostile and duplicate input: what can never
be processed goes to the dead letters with a reason; a valid event delivered twice is applied once."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from contracts import billing as b
from contracts import commissions as c
from contracts import pipeline as p
from contracts.base import Event
from runtime import deadletter
from runtime.commands import send
from services.commissions.handlers import SUBSCRIPTIONS
from tests.commissions.helpers import NOW, flat_terms, ledger, make_agreement, publish, sample, settled
from tests.support.bus import inbox_key

SUBJECTS = [s.models[0] for s in SUBSCRIPTIONS]


def _consumer(service, model: type[Event]):
    return service.consumer_of(model.subject)



class TestEveryConsumer:
    def test_the_table_covers_every_subscription(self):
        assert {m.subject for m in SUBJECTS} == {s.subject for s in SUBSCRIPTIONS}
        for model in SUBJECTS:
            assert sample(model, uuid.uuid4()).subject == model.subject

    @pytest.mark.parametrize("model", SUBJECTS, ids=lambda m: m.subject)
    async def test_malformed_and_hostile_go_to_the_deadinbox_key(self, model, service, bus_client):
        js = bus_client.jetstream()
        consumer = _consumer(service, model)
        good = json.loads(sample(model, uuid.uuid4()).model_dump_json())
        bodies = [
            b"\xff\xfe not even text",
            json.dumps({**good, "schema_version": 99}).encode(),
            json.dumps({k: v for k, v in good.items() if k not in ("event_id", "occurred_at")} | {"schema_version": 1,
                                                                                                   "oops": True,
                                                                                                   **_broken(good)}
                       ).encode(),
            json.dumps({**good, **_hostile(good)}).encode(),
        ]
        before = len(await deadletter.list_all(js, consumer=inbox_key(consumer, model)))
        for body in bodies:
            await publish(bus_client, sample(model, uuid.uuid4()), data=body, msg_id=str(uuid.uuid4()))
        await settled(bus_client, service)
        letters = (await deadletter.list_all(js, consumer=inbox_key(consumer, model)))[before:]
        assert len(letters) == len(bodies), [x.reason for x in letters]
        assert all(x.reason and x.subject == model.subject for x in letters)

    @pytest.mark.parametrize("model", SUBJECTS, ids=lambda m: m.subject)
    async def test_a_valid_event_delivered_twice_is_applied_once(self, model, service, bus_client):
        partner_id = uuid.uuid4()
        await make_agreement(bus_client, partner_id, flat_terms("10"))
        consumer = _consumer(service, model)
        event = sample(model, partner_id)
        applied, duplicates = consumer.stats.applied, consumer.stats.duplicates
        await publish(bus_client, event)
        await publish(bus_client, event, msg_id=str(uuid.uuid4()))
        await settled(bus_client, service)
        assert consumer.stats.applied - applied == 1 and consumer.stats.duplicates - duplicates == 1
        if model is p.OpportunityWonV1:
            assert [e.amount for e in await ledger(bus_client, partner_id)] == [Decimal("10.00")]


def _broken(good: dict) -> dict:
    """Required fields with values of the wrong type."""
    out = {}
    for key, value in good.items():
        if key in ("schema_version", "event_id", "occurred_at", "correlation_id"):
            continue
        out[key] = [value] if not isinstance(value, list) else "not a list"
    return out


def _hostile(good: dict) -> dict:
    """Values no producer should send: negative money, naive times, absurd sizes, control characters."""
    out: dict = {}
    for key, value in good.items():
        if key in ("amount", "trailing_revenue"):
            out[key] = "-1e30"
        elif key.endswith("_at") and key != "occurred_at":
            out[key] = "2026-10-01T12:00:00"
        elif key in ("opportunity", "partner"):
            out[key] = {**value, "id": "'; DROP TABLE ledger_entry; --", "version": -1}
        elif key == "stage_set":
            out[key] = {**value, "key": "x\u0000y", "version": -1}
        elif key in ("customer", "name", "invoice_id", "refund_id"):
            out[key] = "x\u0000y" if key != "name" else "x" * 100_000
        elif key in ("partner_id", "opportunity_id"):
            out[key] = "../../etc/passwd"
    return out


async def test_revenue_before_any_agreement_is_kept_and_counted_once_one_is_made(service, bus_client):
    """An invoice for a partner with no agreement yet is stored, not lost: the agreement made later picks it up."""
    partner_id = uuid.uuid4()
    invoice = b.InvoicePaidV1(invoice_id=f"I-{uuid.uuid4().hex[:8]}", customer="Acme", partner_id=partner_id,
                              amount=Decimal("100.00"), currency="USD", paid_at=NOW)
    await publish(bus_client, invoice)
    await settled(bus_client, service)
    await make_agreement(bus_client, partner_id, flat_terms("10", basis=c.Basis.invoice, duration=c.Duration.lifetime))
    [entry] = await ledger(bus_client, partner_id)
    assert entry.amount == Decimal("10.00")
    listed = await send(bus_client, c.ListRevenueEvents(partner_id=partner_id))
    assert listed.items[0].commission == {"USD": Decimal("10.00")}
