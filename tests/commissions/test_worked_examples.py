"""The worked examples through the running service on real Postgres and NATS: agreements made with its
commands, revenue published as the pipeline and a billing system publish it, the ledger read back."""

from __future__ import annotations

import random
import uuid
from datetime import date
from decimal import Decimal

import pytest

from contracts import billing as b
from contracts import commissions as c
from contracts import pipeline as p
from contracts.base import Event
from runtime.commands import send
from tests.commissions.examples import EXAMPLES, Ev, Example, at
from tests.commissions.helpers import ledger, publish, settled

D = Decimal


class Translation:
    """One example's revenue as bus events of a fresh partner, with ids no other test uses."""

    def __init__(self, example: Example) -> None:
        self.example = example
        self.partner_id = uuid.uuid4()
        self.tag = uuid.uuid4().hex[:8]

    def opp(self, name: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tag}:{name}")

    def event(self, ev: Ev) -> Event:
        when = at(ev.day, ev.time)
        if ev.kind is c.RevenueKind.deal_won:
            assert ev.opp and ev.amount
            return p.OpportunityWonV1(
                opportunity_id=self.opp(ev.opp), partner_id=self.partner_id, amount=ev.amount, currency=ev.currency,
                deal_model=p.DealModel.resale, customer=ev.customer, owner=None, pipeline=ev.pipeline,
                source=p.Source.manual, won_at=when)
        if ev.kind is c.RevenueKind.invoice_paid:
            assert ev.amount
            return b.InvoicePaidV1(invoice_id=f"{self.tag}-{ev.ref}", customer=ev.customer, partner_id=self.partner_id,
                                   opportunity_id=self.opp(ev.opp) if ev.opp else None, amount=ev.amount,
                                   currency="USD", paid_at=when,
                                   customer_started_on=date.fromisoformat(ev.started) if ev.started else None)
        if ev.kind is c.RevenueKind.refund:
            assert ev.amount
            return b.InvoiceRefundedV1(refund_id=f"{self.tag}-{ev.ref}", invoice_id=f"{self.tag}-{ev.invoice}",
                                       amount=ev.amount, currency="USD", refunded_at=when)
        return b.CustomerChurnedV1(customer=ev.customer, partner_id=self.partner_id, churned_at=when)

    def key(self, key: str) -> str:
        parts = []
        for part in key.split(">"):
            kind, ref = part.split(":", 1)
            if kind == "deal_won":
                ref = str(self.opp(ref))
            elif kind in ("invoice_paid", "refund"):
                ref = f"{self.tag}-{ref}"
            parts.append(f"{kind}:{ref}")
        return ">".join(parts)

    async def agreement(self, nc) -> c.Agreement:
        first, *rest = self.example.versions
        agreement = await send(nc, c.CreateAgreement(
            partner_id=self.partner_id, name=self.example.name[:60], direction=c.Direction.payable, currency="USD",
            effective_from=first.start, effective_to=first.end, retroactive=first.retroactive, terms=first.terms,
            actor="tester"))
        for v in rest:
            agreement = await send(nc, c.AddAgreementVersion(
                agreement_id=agreement.id, effective_from=v.start, effective_to=v.end, retroactive=v.retroactive,
                terms=v.terms, actor="tester"))
        return agreement

    def expected(self) -> list[tuple]:
        return sorted((self.key(x.key), D(x.amount), x.version, x.month, self.key(x.reverses) if x.reverses else None)
                      for x in self.example.expected)


def as_lines(entries: list[c.LedgerEntry]) -> list[tuple]:
    by_id = {e.id: e for e in entries}
    return sorted((e.line_key, e.amount, e.version, e.period.isoformat()[:7],
                   by_id[e.reverses_entry_id].line_key if e.reverses_entry_id else None) for e in entries)


class TestWorkedExamplesOnTheRealService:
    @pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
    async def test_the_ledger_is_the_hand_computed_one(self, example, service, bus_client):
        t = Translation(example)
        await t.agreement(bus_client)
        for ev in example.events:
            await publish(bus_client, t.event(ev))
            await settled(bus_client, service)
        entries = await ledger(bus_client, t.partner_id)
        assert as_lines(entries) == t.expected()
        assert all(e.entry_type != c.EntryType.adjustment for e in entries)
        assert all(e.status == c.EntryStatus.accrued for e in entries)

    @pytest.mark.parametrize("example", [e for e in EXAMPLES if len({x.kind for x in e.events}) > 1 or
                                         e.name.startswith(("whole", "SPIF"))], ids=lambda e: e.name)
    async def test_revenue_arriving_in_any_order_settles_on_the_same_amounts(self, example, service, bus_client):
        t = Translation(example)
        await t.agreement(bus_client)
        events = [t.event(ev) for ev in example.events]
        random.Random(example.name).shuffle(events)
        for event in events:
            await publish(bus_client, event)
        await settled(bus_client, service)
        net: dict[str, D] = {}
        for e in await ledger(bus_client, t.partner_id):
            net[e.line_key] = net.get(e.line_key, D(0)) + e.amount
        assert {k: v for k, v in net.items() if v} == {key: amount for key, amount, *_ in t.expected()}
