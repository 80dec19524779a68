"""Commission figures per direction, currency and month, from the commissions service's events: what was
earned (accruals, clawbacks, adjustments), approved and paid. The dashboard reads this quarter's and
the outstanding balances from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import Date, String, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from contracts import commissions as cc
from contracts.base import Event
from contracts.quarters import Quarter
from gateway.read_models.base import Base
from runtime.db import MONEY
from runtime.inbox import Subscription

COLUMN = {cc.EntryType.accrual: "accrued", cc.EntryType.clawback: "clawed_back", cc.EntryType.adjustment: "adjusted"}


class CommissionMonth(Base):
    __tablename__ = "commission_month"

    direction: Mapped[str] = mapped_column(String(20), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    accrued: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))
    clawed_back: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))
    adjusted: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))
    approved: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))
    paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default=text("0"))


AMOUNTS = ("accrued", "clawed_back", "adjusted", "approved", "paid")
# One statement per consumer batch: a row per (direction, currency, month) with every column's addition,
# so no row is hit twice by one INSERT ... ON CONFLICT (which Postgres refuses).
_ADD = text(f"""
    INSERT INTO {CommissionMonth.__table__.fullname} AS m (direction, currency, period, {", ".join(AMOUNTS)})
    SELECT * FROM unnest(CAST(:direction AS text[]), CAST(:currency AS text[]), CAST(:period AS date[]),
                         {", ".join(f"CAST(:{c} AS numeric[])" for c in AMOUNTS)})
    ON CONFLICT (direction, currency, period) DO UPDATE SET
        {", ".join(f"{c} = m.{c} + excluded.{c}" for c in AMOUNTS)}
""")

Key = tuple[str, str, date, str]


async def _add(session: AsyncSession, rows: dict[Key, Decimal]) -> None:
    months: dict[tuple[str, str, date], dict[str, Decimal]] = {}
    for (direction, currency, period, column), amount in rows.items():
        months.setdefault((direction, currency, period), dict.fromkeys(AMOUNTS, Decimal(0)))[column] += amount
    if not months:
        return
    # Sorted, so two consumers adding to the same months lock the rows in the same order.
    keys = sorted(months)
    params: dict[str, list[object]] = {"direction": [k[0] for k in keys], "currency": [k[1] for k in keys],
                                       "period": [k[2] for k in keys]}
    for column in AMOUNTS:
        params[column] = [months[k][column] for k in keys]
    await session.execute(_ADD, params)


def _month(d: date) -> date:
    return d.replace(day=1)


def _earned(rows: dict[Key, Decimal], direction: str, currency: str, period: date, entry_type: cc.EntryType,
            amount: Decimal) -> None:
    key = (direction, currency, _month(period), COLUMN[entry_type])
    rows[key] = rows.get(key, Decimal(0)) + amount


async def on_entries_posted(session: AsyncSession, events: Sequence[Event]) -> None:
    """Both versions: v2 (one per transaction) is what the service sends; v1 (one per agreement) is in the
    stream's history and comes back when the read model is rebuilt by replay."""
    rows: dict[Key, Decimal] = {}
    for e in events:
        if isinstance(e, cc.CommissionEntriesPostedV2):
            for t in e.totals:
                _earned(rows, t.direction.value, t.currency, t.period, t.entry_type, t.amount)
        else:
            assert isinstance(e, cc.CommissionEntriesPostedV1)
            for t1 in e.totals:
                _earned(rows, e.direction.value, e.currency, t1.period, t1.entry_type, t1.amount)
    await _add(session, rows)


async def on_entries_approved(session: AsyncSession, events: Sequence[Event]) -> None:
    rows: dict[Key, Decimal] = {}
    for e in events:
        assert isinstance(e, cc.CommissionEntriesApprovedV1)
        for t in e.totals:
            key = (e.direction.value, e.currency, _month(t.period), "approved")
            rows[key] = rows.get(key, Decimal(0)) + t.amount
    await _add(session, rows)


async def on_entries_paid(session: AsyncSession, events: Sequence[Event]) -> None:
    rows: dict[Key, Decimal] = {}
    for e in events:
        assert isinstance(e, cc.CommissionEntriesPaidV1)
        key = (e.direction.value, e.currency, _month(e.paid_on), "paid")
        rows[key] = rows.get(key, Decimal(0)) + e.amount
    await _add(session, rows)


def _one(many):  # type: ignore[no-untyped-def]
    async def handle(session: AsyncSession, event: Event) -> None:
        await many(session, [event])

    return handle


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(consumer="gateway", models=(cc.CommissionEntriesPostedV1,), handle=_one(on_entries_posted),
                 handle_many=on_entries_posted),
    Subscription(consumer="gateway", models=(cc.CommissionEntriesPostedV2,), handle=_one(on_entries_posted),
                 handle_many=on_entries_posted),
    Subscription(consumer="gateway", models=(cc.CommissionEntriesApprovedV1,), handle=_one(on_entries_approved),
                 handle_many=on_entries_approved),
    Subscription(consumer="gateway", models=(cc.CommissionEntriesPaidV1,), handle=_one(on_entries_paid),
                 handle_many=on_entries_paid),
)
READ_MODEL_TABLES = (CommissionMonth.__table__,)


@dataclass(frozen=True)
class Figure:
    label: str
    amount: Decimal
    currency: str
    direction: str


@dataclass(frozen=True)
class CommissionKpis:
    quarter: str
    quarter_kind: str  # commissions count calendar quarters
    figures: list[Figure]


async def kpis(session: AsyncSession, today: date) -> CommissionKpis:
    """This calendar quarter's earnings and the balances not paid yet, per direction and currency."""
    quarter = Quarter.calendar_of(today)
    start = quarter.first_day
    m = CommissionMonth
    earned = m.accrued + m.clawed_back + m.adjusted
    in_quarter = {(d, c): v for d, c, v in await session.execute(
        select(m.direction, m.currency, func.sum(earned)).where(m.period >= start).group_by(m.direction, m.currency))}
    outstanding = {(d, c): v for d, c, v in await session.execute(
        select(m.direction, m.currency, func.sum(earned - m.paid)).group_by(m.direction, m.currency))}
    figures = []
    for (direction, currency) in sorted(set(in_quarter) | set(outstanding)):
        who = "partners owe us" if direction == cc.Direction.receivable else "we owe partners"
        figures.append(Figure(f"Earned this quarter ({who})", in_quarter.get((direction, currency), Decimal(0)),
                              currency, direction))
        figures.append(Figure(f"Unpaid ({who})", outstanding.get((direction, currency), Decimal(0)), currency,
                              direction))
    return CommissionKpis(quarter=quarter.label, quarter_kind=quarter.kind_label, figures=figures)
