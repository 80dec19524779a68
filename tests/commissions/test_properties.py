"""Properties of the ledger on the real Postgres, for revenue hypothesis makes up: a partner's ledger sums
to its statement lines; replaying all revenue from scratch reproduces the ledger; duplicates change
nothing. Each example runs the service's own code (commands and the ingestion the consumers call) in
transactions of a fresh engine; every run has its own partner and its own invoice ids."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from contracts import commissions as c
from runtime.db import create_engine, session_factory
from services.commissions import domain, engine, service
from services.commissions.models import LedgerEntry
from services.commissions.repository import IncomingRevenue
from tests.commissions.test_domain import events_strategy, spec_strategy

D = Decimal
DB = settings(max_examples=12, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class Run:
    """One partner's copy of an agreement and its revenue, under ids of its own."""

    def __init__(self, spec: domain.AgreementSpec, events: list[domain.Revenue]) -> None:
        self.spec, self.events = spec, events
        self.partner = uuid.uuid4()
        self.tag = uuid.uuid4().hex[:8]
        self.canonical: dict[str, str] = {}

    def _ref(self, ref: str) -> str:
        mine = f"{self.tag}-{ref}"
        self.canonical[mine] = ref
        return mine

    def _opp(self, ref: str) -> uuid.UUID:
        mine = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tag}:{ref}")
        self.canonical[str(mine)] = ref
        return mine

    def incoming(self, ev: domain.Revenue, event_id: uuid.UUID | None = None) -> IncomingRevenue:
        is_deal = ev.kind is c.RevenueKind.deal_won
        return IncomingRevenue(
            event_id=event_id or uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tag}:event:{ev.key}"), kind=ev.kind.value,
            ref=str(self._opp(ev.ref)) if is_deal else self._ref(ev.ref),
            scope=f"partner:{self.partner}" if ev.kind is c.RevenueKind.churn else "", partner_id=self.partner,
            opportunity_id=self._opp(ev.opportunity_id) if ev.opportunity_id and not is_deal else None,
            customer=ev.customer, customer_name=ev.customer, amount=ev.amount, currency=ev.currency,
            occurred_at=ev.at, invoice_ref=self._ref(ev.invoice_ref) if ev.invoice_ref else None, deal_model=None,
            customer_started_on=None, void=False, source="test", actor=None, event_occurred_at=ev.at)

    def canon(self, key: str) -> str:
        parts = []
        for part in key.split(">"):
            kind, ref = part.split(":", 1)
            parts.append(f"{kind}:{self.canonical.get(ref, ref)}")
        return ">".join(parts)


async def scenario(url: str, body: Callable) -> object:
    db = create_engine(url, trace_sql=False)
    try:
        return await body(session_factory(db))
    finally:
        await db.dispose()


async def setup(sessions, run: Run) -> uuid.UUID:
    first, *rest = run.spec.versions
    async with sessions() as s, s.begin():
        a = await service.create_agreement(s, c.CreateAgreement(
            partner_id=run.partner, name="property", direction=c.Direction.payable, currency="USD",
            effective_from=first.effective_from, effective_to=None, retroactive=first.retroactive, terms=first.terms))
    for v in rest:
        async with sessions() as s, s.begin():
            await service.add_agreement_version(s, c.AddAgreementVersion(
                agreement_id=a.id, effective_from=v.effective_from, retroactive=v.retroactive, terms=v.terms))
    return a.id


async def feed(sessions, batches: list[list[IncomingRevenue]]) -> None:
    for batch in batches:
        async with sessions() as s, s.begin():
            await engine.ingest(s, batch)


async def entries(sessions, partner: uuid.UUID) -> list[LedgerEntry]:
    async with sessions() as s:
        return list(await s.scalars(select(LedgerEntry).where(LedgerEntry.partner_id == partner)
                                    .order_by(LedgerEntry.id)))


def chunks(items: list, sizes: list[int]) -> list[list]:
    out, i = [], 0
    for n in sizes:
        if i >= len(items):
            break
        out.append(items[i:i + n])
        i += n
    if i < len(items):
        out.append(items[i:])
    return out


def in_order(events: list[domain.Revenue]) -> list[domain.Revenue]:
    return sorted({e.key: e for e in events}.values(), key=lambda e: e.order)


def shape(run: Run, rows: list[LedgerEntry]) -> list[tuple]:
    """The entries, without ids (batching decides the order ids are handed out in)."""
    return sorted((run.canon(e.line_key), e.entry_type, e.amount, e.version, e.period, e.rule, e.detail,
                   run.canon(e.reverses_key) if e.reverses_key else "") for e in rows)


class TestLedgerProperties:
    @DB
    @given(spec=spec_strategy(), events=events_strategy(), sizes=st.lists(st.integers(1, 6), max_size=8),
           paid_share=st.floats(0, 1))
    def test_a_partners_ledger_sums_to_its_statement_lines(self, private_db, spec, events, sizes, paid_share):
        async def body(sessions) -> None:
            run = Run(spec, events)
            await setup(sessions, run)
            await feed(sessions, chunks([run.incoming(e) for e in in_order(events)], sizes))
            rows = await entries(sessions, run.partner)
            # Approve and pay a share of the accruals, so statements carry payments too.
            payable = [e.id for e in rows if e.entry_type == "accrual"][: int(len(rows) * paid_share)]
            paid = D(0)
            if payable:
                async with sessions() as s, s.begin():
                    await service.approve_entries(s, c.ApproveEntries(entry_ids=payable))
                    payment = await service.pay_entries(s, c.PayEntries(entry_ids=payable, paid_on=date(2027, 6, 30),
                                                                        reference="property"))
                    paid = payment.amount
            months = sorted({e.period for e in rows} | {date(2027, 6, 1)})
            line_total = D(0)
            closing = D(0)
            async with sessions() as s:
                for month in months:
                    st_ = await service.statement(s, c.GetStatement(partner_id=run.partner,
                                                                    period=f"{month:%Y-%m}"))
                    for section in st_.sections:
                        line_total += sum((x.amount for x in section.lines), D(0))
                        assert section.opening_balance + section.accruals + section.clawbacks + section.adjustments \
                            - section.payments == section.closing_balance
                        assert section.accruals + section.clawbacks + section.adjustments == sum(
                            (x.amount for x in section.lines), D(0))
                        closing = section.closing_balance
            ledger_total = sum((e.amount for e in rows), D(0))
            assert line_total == ledger_total
            assert closing == ledger_total - paid

        asyncio.run(scenario(private_db["commissions"], body))

    @DB
    @given(spec=spec_strategy(), events=events_strategy(), sizes=st.lists(st.integers(1, 6), max_size=8),
           seed=st.integers(0, 10_000))
    def test_replaying_all_revenue_from_scratch_reproduces_the_ledger(self, private_db, spec, events, sizes, seed):
        async def body(sessions) -> None:
            original, replay, shuffled = Run(spec, events), Run(spec, events), Run(spec, events)
            ordered = in_order(events)
            for run in (original, replay, shuffled):
                await setup(sessions, run)
            await feed(sessions, chunks([original.incoming(e) for e in ordered], sizes))
            await feed(sessions, [[replay.incoming(e) for e in ordered]])  # all at once, one transaction
            mixed = list(ordered)
            random.Random(seed).shuffle(mixed)
            await feed(sessions, chunks([shuffled.incoming(e) for e in mixed], sizes))
            a = await entries(sessions, original.partner)
            assert shape(original, a) == shape(replay, await entries(sessions, replay.partner))
            # In any arrival order the ledger may hold adjustments, but every line settles on the same amount.
            net: dict[str, dict[str, D]] = {"original": {}, "shuffled": {}}
            for name, run in (("original", original), ("shuffled", shuffled)):
                for e in await entries(sessions, run.partner):
                    key = run.canon(e.line_key)
                    net[name][key] = net[name].get(key, D(0)) + e.amount
            assert {k: v for k, v in net["shuffled"].items() if v} == {k: v for k, v in net["original"].items() if v}

        asyncio.run(scenario(private_db["commissions"], body))

    @DB
    @given(spec=spec_strategy(), events=events_strategy(), sizes=st.lists(st.integers(1, 6), max_size=8),
           data=st.data())
    def test_duplicates_change_nothing(self, private_db, spec, events, sizes, data):
        async def body(sessions) -> None:
            clean, noisy = Run(spec, events), Run(spec, events)
            ordered = in_order(events)
            for run in (clean, noisy):
                await setup(sessions, run)
            await feed(sessions, chunks([clean.incoming(e) for e in ordered], sizes))
            stream: list[IncomingRevenue] = []
            for e in ordered:
                stream.append(noisy.incoming(e))
                copies = data.draw(st.sampled_from(["none", "same event", "same fact, new event id", "both"]))
                if copies in ("same event", "both"):
                    stream.append(noisy.incoming(e))
                if copies in ("same fact, new event id", "both"):
                    stream.append(replace(noisy.incoming(e), event_id=uuid.uuid4()))
            batches = chunks(stream, sizes)
            await feed(sessions, batches)
            await feed(sessions, batches[: data.draw(st.integers(0, len(batches)))])  # redelivered afterwards
            assert shape(clean, await entries(sessions, clean.partner)) == shape(
                noisy, await entries(sessions, noisy.partner))

        asyncio.run(scenario(private_db["commissions"], body))
