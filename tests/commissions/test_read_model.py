"""The gateway's commission read model (`commission_month`) on the real Postgres, fed the way its consumers
feed it: `entries.posted` v2 (one per transaction, what the service sends) and v1 (one per agreement, in
the stream's history and replayed when the read model is rebuilt) add up alike, in one batch or several;
approved and paid land in their own columns; an empty batch or an event without totals writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from contracts import commissions as c
from gateway.read_models import commissions as rm
from runtime.db import create_engine, session_factory

D = Decimal


@pytest.fixture
async def sessions(private_db: dict[str, str]) -> AsyncIterator:
    db = create_engine(private_db["gateway"], trace_sql=False)
    yield session_factory(db)
    await db.dispose()


def v2(*totals: tuple[str, str, str, str, str]) -> c.CommissionEntriesPostedV2:
    return c.CommissionEntriesPostedV2(
        totals=[c.PostedTotal(direction=c.Direction(d), currency=cur, period=date.fromisoformat(p),
                              entry_type=c.EntryType(t), amount=D(a), entries=1) for d, cur, p, t, a in totals],
        agreement_ids=[uuid.uuid4()], partner_ids=[uuid.uuid4()], entries=len(totals), first_entry_id=1,
        last_entry_id=max(len(totals), 1))


def v1(direction: str, currency: str, *totals: tuple[str, str, str]) -> c.CommissionEntriesPostedV1:
    return c.CommissionEntriesPostedV1(
        agreement_id=uuid.uuid4(), partner_id=uuid.uuid4(), direction=c.Direction(direction), currency=currency,
        totals=[c.PeriodTotal(period=date.fromisoformat(p), entry_type=c.EntryType(t), amount=D(a), entries=1)
                for p, t, a in totals], first_entry_id=1, last_entry_id=1)


async def months(sessions, currency: str) -> dict[tuple[str, date], tuple[Decimal, ...]]:
    m = rm.CommissionMonth
    async with sessions() as s:
        rows = (await s.execute(select(m.direction, m.period, m.accrued, m.clawed_back, m.adjusted, m.approved, m.paid)
                                .where(m.currency == currency))).all()
    return {(r.direction, r.period): tuple(r[2:]) for r in rows}


async def apply(sessions, handler, events) -> None:
    async with sessions() as s, s.begin():
        await handler(s, events)


class TestCommissionMonth:
    async def test_v1_history_and_v2_add_up_alike_in_one_batch_or_several(self, sessions):
        cur = f"Q{uuid.uuid4().hex[:2].upper()}"  # a currency of this test's own
        batch = [
            v1("payable", cur, ("2026-10-01", "accrual", "100.00"), ("2026-10-15", "clawback", "-30.00")),
            v2(("payable", cur, "2026-10-01", "accrual", "50.00"), ("receivable", cur, "2026-11-03", "accrual", "7.00"),
               ("payable", cur, "2026-10-01", "adjustment", "-1.50")),
            v2(("payable", cur, "2026-10-20", "accrual", "0.25")),
        ]
        await apply(sessions, rm.on_entries_posted, batch)
        for e in batch:  # the same again, one event per batch
            await apply(sessions, rm.on_entries_posted, [e])
        got = await months(sessions, cur)
        z = D(0)
        assert got == {("payable", date(2026, 10, 1)): (D("300.50"), D("-60.00"), D("-3.00"), z, z),
                       ("receivable", date(2026, 11, 1)): (D("14.00"), z, z, z, z)}

    async def test_approved_and_paid_go_to_their_columns(self, sessions):
        cur = f"R{uuid.uuid4().hex[:2].upper()}"
        await apply(sessions, rm.on_entries_posted, [v2(("payable", cur, "2026-09-02", "accrual", "80.00"))])
        await apply(sessions, rm.on_entries_approved, [c.CommissionEntriesApprovedV1(
            partner_id=uuid.uuid4(), direction=c.Direction.payable, currency=cur,
            totals=[c.PeriodTotal(period=date(2026, 9, 2), entry_type=c.EntryType.accrual, amount=D("80.00"),
                                  entries=1)])])
        await apply(sessions, rm.on_entries_paid, [c.CommissionEntriesPaidV1(
            payment_id=uuid.uuid4(), partner_id=uuid.uuid4(), direction=c.Direction.payable, currency=cur,
            amount=D("80.00"), paid_on=date(2026, 9, 30), entries=1)])
        assert await months(sessions, cur) == {
            ("payable", date(2026, 9, 1)): (D("80.00"), D(0), D(0), D("80.00"), D("80.00"))}

    async def test_an_empty_batch_and_an_event_without_totals_write_nothing(self, sessions):
        cur = f"S{uuid.uuid4().hex[:2].upper()}"
        for handler in (rm.on_entries_posted, rm.on_entries_approved, rm.on_entries_paid):
            await apply(sessions, handler, [])
        await apply(sessions, rm.on_entries_posted, [v2(), v1("payable", cur)])
        assert await months(sessions, cur) == {}

    def test_both_versions_are_subscribed(self):
        subscribed = {m for sub in rm.SUBSCRIPTIONS for m in sub.models}
        assert {c.CommissionEntriesPostedV1, c.CommissionEntriesPostedV2} <= subscribed
