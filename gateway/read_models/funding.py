"""Funding requests and hyperscaler goals from the relationships service's events, for the dashboard's
cards: each request's stage, amounts and next open deadline, each goal's target and progress (the newest
version wins, so events may arrive in any order or twice). Which requests count and how a goal's status
follows from its progress are the contracts' rules (contracts/funding.py, contracts/goals.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, Index, Integer, Text, Uuid, extract, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from contracts import deadlines as dl
from contracts import funding as fc
from contracts import goals as gc
from contracts.base import Event
from contracts.quarters import Quarter
from gateway.read_models.base import Base
from runtime.db import MONEY, execute_many
from runtime.inbox import Subscription


class FundingRequestView(Base):
    __tablename__ = "funding_request"
    __table_args__ = (
        # The dashboard lists the soonest open deadlines.
        Index("funding_request_deadline_date_idx", "deadline_date", postgresql_where=text("deadline_date IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    program_name: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(Text)
    requested: Mapped[Decimal] = mapped_column(MONEY)
    approved: Mapped[Decimal | None] = mapped_column(MONEY)
    claimed: Mapped[Decimal] = mapped_column(MONEY)
    received: Mapped[Decimal] = mapped_column(MONEY)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_title: Mapped[str | None] = mapped_column(Text)
    deadline_date: Mapped[date | None] = mapped_column(Date)
    deadline_zone: Mapped[str | None] = mapped_column(Text)
    deadline_at_stake: Mapped[Decimal | None] = mapped_column(MONEY)


class GoalView(Base):
    __tablename__ = "goal"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    hyperscaler: Mapped[str] = mapped_column(Text)
    period: Mapped[str] = mapped_column(Text)
    metric: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    target: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[Decimal] = mapped_column(MONEY)
    archived: Mapped[bool] = mapped_column(Boolean)


def _newest(table: type[Base], columns: Sequence[str]):  # type: ignore[no-untyped-def]
    stmt = insert(table)
    return stmt.on_conflict_do_update(index_elements=["id"], set_={c: getattr(stmt.excluded, c) for c in columns},
                                      where=table.version < stmt.excluded.version)  # type: ignore[attr-defined]


REQUEST_COLUMNS = ("version", "title", "program_name", "stage", "currency", "requested", "approved", "claimed",
                   "received", "created_at", "deadline_title", "deadline_date", "deadline_zone", "deadline_at_stake")


async def on_fund_requests(session: AsyncSession, events: Sequence[Event]) -> None:
    latest: dict[uuid.UUID, fc.FundRequest] = {}
    for e in events:
        assert isinstance(e, fc.FundRequestCreatedV1 | fc.FundRequestUpdatedV1 | fc.FundRequestStageChangedV1)
        r = e.fund_request
        if r.id not in latest or latest[r.id].version < r.version:
            latest[r.id] = r
    rows = []
    for r in sorted(latest.values(), key=lambda r: r.id):
        open_ = [d for d in r.deadlines if d.status == dl.DeadlineStatus.open]
        first = min(open_, key=lambda d: d.due_date) if open_ else None
        rows.append({"id": r.id, "version": r.version, "title": r.title, "program_name": r.program_name,
                     "stage": r.stage.value, "currency": r.currency, "requested": r.requested, "approved": r.approved,
                     "claimed": r.claimed, "received": r.received, "created_at": r.created_at,
                     "deadline_title": first.title if first else None,
                     "deadline_date": first.due_date if first else None,
                     "deadline_zone": first.time_zone if first else None,
                     "deadline_at_stake": first.amount_at_stake if first else None})
    await execute_many(session, _newest(FundingRequestView, REQUEST_COLUMNS), rows)


GOAL_COLUMNS = ("version", "hyperscaler", "period", "metric", "name", "target", "currency", "progress", "archived")


async def on_goals(session: AsyncSession, events: Sequence[Event]) -> None:
    latest: dict[uuid.UUID, gc.Goal] = {}
    for e in events:
        assert isinstance(e, gc.GoalChangedV1)
        if e.goal.id not in latest or latest[e.goal.id].version < e.goal.version:
            latest[e.goal.id] = e.goal
    await execute_many(session, _newest(GoalView, GOAL_COLUMNS), [
        {"id": x.id, "version": x.version, "hyperscaler": x.hyperscaler.value, "period": x.period,
         "metric": x.metric.value, "name": x.name, "target": x.target, "currency": x.currency, "progress": x.progress,
         "archived": x.archived} for x in sorted(latest.values(), key=lambda x: x.id)])


def _subscription(models: tuple[type[Event], ...], many) -> Subscription:  # type: ignore[no-untyped-def]
    async def one(session: AsyncSession, event: Event) -> None:
        await many(session, [event])

    return Subscription(consumer="gateway", models=models, handle=one, handle_many=many)


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    _subscription((fc.FundRequestCreatedV1,), on_fund_requests),
    _subscription((fc.FundRequestUpdatedV1,), on_fund_requests),
    _subscription((fc.FundRequestStageChangedV1,), on_fund_requests),
    _subscription((gc.GoalChangedV1,), on_goals),
)
READ_MODEL_TABLES = (FundingRequestView.__table__, GoalView.__table__)


# --------------------------------------------------------------------------------------- the cards


@dataclass(frozen=True)
class FundingFigures:
    currency: str
    requests: int
    requested: Decimal
    approved: Decimal
    received: Decimal


@dataclass(frozen=True)
class Deadline:
    request_id: uuid.UUID
    title: str
    due_date: date
    time_zone: str
    amount_at_stake: Decimal | None
    currency: str


@dataclass(frozen=True)
class Funding:
    scope: str
    figures: list[FundingFigures]
    deadlines: list[Deadline]


async def funding(session: AsyncSession, year: int, *, deadlines: int = 5) -> Funding:
    """This calendar year's counted requests per currency, and the soonest open deadlines of any request."""
    v = FundingRequestView
    rows = await session.execute(
        select(v.currency, func.count(), func.sum(v.requested), func.coalesce(func.sum(v.approved), 0),
               func.sum(v.received))
        .where(v.stage.in_([s.value for s in fc.COUNTED_STAGES]),
               extract("year", func.timezone("UTC", v.created_at)) == year)
        .group_by(v.currency).order_by(v.currency))
    figures = [FundingFigures(currency=c, requests=n, requested=req, approved=app, received=rec)
               for c, n, req, app, rec in rows.all()]
    soon = await session.execute(
        select(v.id, v.deadline_title, v.deadline_date, v.deadline_zone, v.deadline_at_stake, v.currency)
        .where(v.deadline_date.is_not(None)).order_by(v.deadline_date, v.id).limit(deadlines))
    return Funding(scope=f"{fc.COUNTED_SCOPE}, created in calendar {year} (UTC)", figures=figures,
                   deadlines=[Deadline(request_id=i, title=t, due_date=d, time_zone=z, amount_at_stake=a, currency=c)
                              for i, t, d, z, a, c in soon.all()])


@dataclass(frozen=True)
class GoalFigure:
    id: uuid.UUID
    hyperscaler: str
    period: str
    name: str
    target: Decimal
    progress: Decimal
    currency: str | None
    status: gc.GoalStatus
    share: float


async def goals(session: AsyncSession, today: date) -> list[GoalFigure]:
    """Goals of the current calendar quarter and year, with their status as of today."""
    quarter = Quarter.calendar_of(today).label
    rows = (await session.scalars(select(GoalView).where(GoalView.period.in_([quarter, str(today.year)]),
                                                         GoalView.archived.is_(False))
                                  .order_by(GoalView.hyperscaler, GoalView.period, GoalView.name))).all()
    out = []
    for g in rows:
        start, end = gc.period_range(g.period)
        out.append(GoalFigure(id=g.id, hyperscaler=g.hyperscaler, period=g.period, name=g.name, target=g.target,
                              progress=g.progress, currency=g.currency,
                              status=gc.status(g.progress, g.target, start, end, today),
                              share=min(float(g.progress / g.target), 1.0) if g.target else 0.0))
    return out
