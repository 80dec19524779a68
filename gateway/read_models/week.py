"""The team's week from the relationships service's events: each task's owner, due date and status (the
newest version wins, so events may arrive in any order), submitted updates and whether they were on time,
and the meetings' weeks and time zones. The dashboard and the team pages read overdue tasks per member and
updates submitted on time from here; a replay rebuilds the same figures."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, Date, DateTime, Index, Integer, Text, Uuid, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from contracts import week as w
from contracts.base import Event
from gateway.read_models.base import Base
from runtime.db import execute_many
from runtime.inbox import Subscription

ON_TIME_WEEKS = 4


class WeekTaskView(Base):
    __tablename__ = "week_task"
    __table_args__ = (
        # The dashboard counts open tasks past due per owner.
        Index("week_task_open_idx", "owner", "due_date", postgresql_where=text("status = 'open'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner: Mapped[str] = mapped_column(Text)
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text)
    week: Mapped[date] = mapped_column(Date)
    carried: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)


class WeekUpdateView(Base):
    __tablename__ = "week_update"

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    member: Mapped[str] = mapped_column(Text, primary_key=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    on_time: Mapped[bool] = mapped_column(Boolean)
    amendments: Mapped[int] = mapped_column(Integer)


class WeekMeetingView(Base):
    __tablename__ = "week_meeting"

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    time_zone: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)


async def on_tasks(session: AsyncSession, events: Sequence[Event]) -> None:
    latest: dict[uuid.UUID, w.Task] = {}
    for e in events:
        assert isinstance(e, w.TaskCreatedV1 | w.TaskChangedV1 | w.TaskCarriedV1)
        if e.task.id not in latest or latest[e.task.id].version < e.task.version:
            latest[e.task.id] = e.task
    stmt = insert(WeekTaskView)
    cols = ("owner", "due_date", "status", "week", "carried", "version")
    await execute_many(session, stmt.on_conflict_do_update(
        index_elements=["id"], set_={c: getattr(stmt.excluded, c) for c in cols},
        where=WeekTaskView.version < stmt.excluded.version),
        [{"id": t.id, "owner": t.owner, "due_date": t.due_date, "status": t.status.value, "week": t.week,
          "carried": t.carried, "version": t.version} for t in sorted(latest.values(), key=lambda t: t.id)])


async def on_updates(session: AsyncSession, events: Sequence[Event]) -> None:
    latest: dict[tuple[date, str], w.UpdateSubmittedV1] = {}
    for e in events:
        assert isinstance(e, w.UpdateSubmittedV1)
        key = (e.week, e.member)
        if key not in latest or latest[key].amendments < e.amendments:
            latest[key] = e
    stmt = insert(WeekUpdateView)
    await execute_many(session, stmt.on_conflict_do_update(
        index_elements=["week", "member"], set_={"amendments": stmt.excluded.amendments},
        where=WeekUpdateView.amendments < stmt.excluded.amendments),
        [{"week": e.week, "member": e.member, "submitted_at": e.submitted_at, "on_time": e.on_time,
          "amendments": e.amendments} for _, e in sorted(latest.items())])


async def on_meetings(session: AsyncSession, events: Sequence[Event]) -> None:
    latest: dict[date, w.Meeting] = {}
    for e in events:
        assert isinstance(e, w.MeetingOpenedV1 | w.MeetingClosedV1)
        m = e.meeting
        if m.week not in latest or latest[m.week].version < m.version:
            latest[m.week] = m
    stmt = insert(WeekMeetingView)
    await execute_many(session, stmt.on_conflict_do_update(
        index_elements=["week"], set_={"status": stmt.excluded.status, "version": stmt.excluded.version},
        where=WeekMeetingView.version < stmt.excluded.version),
        [{"week": m.week, "time_zone": m.time_zone, "status": m.status.value, "version": m.version}
         for _, m in sorted(latest.items())])


def _sub(models: tuple[type[Event], ...], many) -> Subscription:  # type: ignore[no-untyped-def]
    async def one(session: AsyncSession, event: Event) -> None:
        await many(session, [event])

    return Subscription(consumer="gateway", models=models, handle=one, handle_many=many)


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    _sub((w.TaskCreatedV1,), on_tasks), _sub((w.TaskChangedV1,), on_tasks), _sub((w.TaskCarriedV1,), on_tasks),
    _sub((w.UpdateSubmittedV1,), on_updates),
    _sub((w.MeetingOpenedV1,), on_meetings), _sub((w.MeetingClosedV1,), on_meetings),
)
READ_MODEL_TABLES = (WeekTaskView.__table__, WeekUpdateView.__table__, WeekMeetingView.__table__)


@dataclass(frozen=True)
class MemberWeek:
    overdue_tasks: int
    open_tasks: int
    on_time: int
    weeks: int  # the meetings counted (at most ON_TIME_WEEKS, those that have ended or are this week)

    @property
    def on_time_label(self) -> str:
        return f"{self.on_time} of {self.weeks}" if self.weeks else "—"


async def team_today(session: AsyncSession, now: datetime | None = None) -> date:
    """Today on the team's calendar (the newest meeting's zone; UTC before any meeting)."""
    zone = await session.scalar(select(WeekMeetingView.time_zone).order_by(WeekMeetingView.week.desc()).limit(1))
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(zone or "UTC")).date()


async def member_weeks(session: AsyncSession, members: Sequence[str], now: datetime | None = None
                       ) -> dict[str, MemberWeek]:
    """Per member: open tasks past their due date (team calendar), and updates submitted on time in the
    last ON_TIME_WEEKS meetings (this week's included)."""
    today = await team_today(session, now)
    t = WeekTaskView
    counts = {owner: (int(o or 0), int(n or 0)) for owner, o, n in await session.execute(
        select(t.owner, func.count().filter(t.due_date < today), func.count())
        .where(t.status == "open", t.owner.in_(list(members))).group_by(t.owner))}
    weeks = list((await session.execute(
        select(WeekMeetingView.week).where(WeekMeetingView.week <= today).order_by(WeekMeetingView.week.desc())
        .limit(ON_TIME_WEEKS))).scalars())
    on_time: dict[str, int] = {}
    if weeks:
        u = WeekUpdateView
        for member, n in await session.execute(
                select(u.member, func.count()).where(u.week.in_(weeks), u.on_time, u.member.in_(list(members)))
                .group_by(u.member)):
            on_time[member] = int(n)
    return {m: MemberWeek(overdue_tasks=counts.get(m, (0, 0))[0], open_tasks=counts.get(m, (0, 0))[1],
                          on_time=on_time.get(m, 0), weeks=len(weeks)) for m in members}

