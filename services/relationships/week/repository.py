"""All SQL of the team's week."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.pipeline import DELETED_OUTCOME
from runtime.db import execute_many
from services.relationships.deadlines.models import Deadline
from services.relationships.pipeline_copy import DealChangeRow, DealRow, PartnerRow, PipelineSettingsRow
from services.relationships.week.models import (
    SCHEMA,
    AttendeeRow,
    CarryRow,
    DecisionRow,
    LineRow,
    MeetingRow,
    RevisionRow,
    TaskRow,
    UpdateRow,
    WeekSettingsRow,
)


class WeekRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------------------------------ settings

    async def settings(self) -> WeekSettingsRow | None:
        return await self.session.get(WeekSettingsRow, 1)

    async def settings_for_update(self) -> WeekSettingsRow | None:
        return (await self.session.execute(
            select(WeekSettingsRow).where(WeekSettingsRow.id == 1).with_for_update())).scalar_one_or_none()

    async def default_settings(self, time_zone: str) -> WeekSettingsRow:
        """The stored settings, or these if none are stored yet (the first writer wins)."""
        await self.session.execute(insert(WeekSettingsRow).values(id=1, time_zone=time_zone, updates_due_weekday=0,
                                                                  updates_due_hour=12, version=1)
                                   .on_conflict_do_nothing(index_elements=["id"]))
        row = await self.settings()
        assert row is not None
        return row

    async def pipeline_settings(self) -> tuple[int, int]:
        """(fiscal year start month, stuck after days): the pipeline's, or its defaults until it sends them."""
        row = await self.session.get(PipelineSettingsRow, 1)
        return (row.fiscal_year_start_month, row.stuck_after_days) if row else (1, 30)

    # ------------------------------------------------------------------------------------ meetings

    async def insert_meeting(self, values: dict[str, Any]) -> bool:
        """True when this call created it; a meeting of the same week already there wins."""
        created = await self.session.execute(
            insert(MeetingRow).values(**values).on_conflict_do_nothing(index_elements=["week"])
            .returning(MeetingRow.id))
        return created.scalar_one_or_none() is not None

    async def meeting(self, week: date, *, lock: bool = False, share: bool = False) -> MeetingRow | None:
        stmt = select(MeetingRow).where(MeetingRow.week == week)
        if lock:
            stmt = stmt.with_for_update()
        elif share:
            stmt = stmt.with_for_update(read=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def meetings(self, offset: int, limit: int) -> tuple[list[MeetingRow], int]:
        rows = (await self.session.execute(
            select(MeetingRow).order_by(MeetingRow.week.desc()).offset(offset).limit(limit))).scalars().all()
        total = (await self.session.execute(select(func.count()).select_from(MeetingRow))).scalar_one()
        return list(rows), total

    async def add_attendees(self, meeting_id: uuid.UUID, attendees: Sequence[tuple[str, str]]) -> None:
        stmt = insert(AttendeeRow)
        await execute_many(self.session, stmt.on_conflict_do_update(
            index_elements=["meeting_id", "user_id"], set_={"name": stmt.excluded.name}),
            [{"meeting_id": meeting_id, "user_id": u, "name": n} for u, n in sorted(set(attendees))])

    async def attendees(self, meeting_id: uuid.UUID) -> list[AttendeeRow]:
        return list((await self.session.execute(
            select(AttendeeRow).where(AttendeeRow.meeting_id == meeting_id).order_by(AttendeeRow.name))).scalars())

    async def decisions(self, meeting_id: uuid.UUID) -> list[DecisionRow]:
        return list((await self.session.execute(
            select(DecisionRow).where(DecisionRow.meeting_id == meeting_id)
            .order_by(DecisionRow.recorded_at, DecisionRow.id))).scalars())

    async def add_decision(self, row: DecisionRow) -> None:
        self.session.add(row)
        await self.session.flush()

    # ------------------------------------------------------------------------------------- updates

    async def update_row(self, meeting_id: uuid.UUID, member: str, *, lock: bool = False) -> UpdateRow | None:
        stmt = select(UpdateRow).where(UpdateRow.meeting_id == meeting_id, UpdateRow.member == member)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def insert_update(self, meeting_id: uuid.UUID, member: str) -> UpdateRow | None:
        """A new draft, or None when a concurrent first save made it already."""
        made = await self.session.execute(
            insert(UpdateRow).values(id=uuid.uuid4(), meeting_id=meeting_id, member=member, status="draft",
                                     anything_else="", amendments=0, version=0)
            .on_conflict_do_nothing(index_elements=["meeting_id", "member"]).returning(UpdateRow.id))
        if made.scalar_one_or_none() is None:
            return None
        return await self.update_row(meeting_id, member, lock=True)

    async def updates_of(self, meeting_id: uuid.UUID) -> list[UpdateRow]:
        return list((await self.session.execute(
            select(UpdateRow).where(UpdateRow.meeting_id == meeting_id))).scalars())

    async def lines(self, update_ids: Sequence[uuid.UUID]) -> list[LineRow]:
        if not update_ids:
            return []
        return list((await self.session.execute(
            select(LineRow).where(LineRow.update_id.in_(update_ids))
            .order_by(LineRow.update_id, LineRow.position))).scalars())

    async def replace_lines(self, update_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
        await self.session.execute(delete(LineRow).where(LineRow.update_id == update_id))
        await execute_many(self.session, insert(LineRow), rows)

    async def add_revision(self, update_id: uuid.UUID, action: str, by: str | None, at: datetime,
                           body: dict[str, Any]) -> None:
        revision = (await self.session.execute(
            select(func.coalesce(func.max(RevisionRow.revision), 0)).where(RevisionRow.update_id == update_id)
        )).scalar_one() + 1
        self.session.add(RevisionRow(update_id=update_id, revision=revision, action=action, by=by, at=at, body=body))
        await self.session.flush()

    async def revisions(self, update_id: uuid.UUID) -> list[RevisionRow]:
        return list((await self.session.execute(
            select(RevisionRow).where(RevisionRow.update_id == update_id).order_by(RevisionRow.revision))).scalars())

    # --------------------------------------------------------------------------------------- tasks

    async def task(self, task_id: uuid.UUID, *, lock: bool = False) -> TaskRow | None:
        stmt = select(TaskRow).where(TaskRow.id == task_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def tasks_by_ids(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TaskRow]:
        if not ids:
            return {}
        rows = (await self.session.execute(select(TaskRow).where(TaskRow.id.in_(ids)))).scalars()
        return {r.id: r for r in rows}

    async def add_task(self, row: TaskRow) -> TaskRow:
        self.session.add(row)
        await self.session.flush()
        return row

    async def task_from_line(self, update_id: uuid.UUID, key: str) -> TaskRow | None:
        return (await self.session.execute(
            select(TaskRow).where(TaskRow.from_update_id == update_id, TaskRow.from_line_key == key)
            .with_for_update())).scalar_one_or_none()

    async def tasks(self, *, owner: str | None = None, status: str | None = None, week: date | None = None,
                    link_id: uuid.UUID | None = None, offset: int = 0, limit: int = 200) -> tuple[list[TaskRow], int]:
        conditions = []
        if owner is not None:
            conditions.append(TaskRow.owner == owner)
        if status is not None:
            conditions.append(TaskRow.status == status)
        if week is not None:
            conditions.append(TaskRow.week == week)
        if link_id is not None:
            conditions.append(TaskRow.link_id == link_id)
        where = and_(*conditions) if conditions else text("true")
        rows = (await self.session.execute(
            select(TaskRow).where(where).order_by(TaskRow.due_date, TaskRow.created_at, TaskRow.id)
            .offset(offset).limit(limit))).scalars().all()
        total = (await self.session.execute(select(func.count()).select_from(TaskRow).where(where))).scalar_one()
        return list(rows), total

    async def open_tasks_due(self, owner: str, before: date) -> list[TaskRow]:
        return list((await self.session.execute(
            select(TaskRow).where(TaskRow.owner == owner, TaskRow.status == "open", TaskRow.due_date < before)
            .order_by(TaskRow.due_date, TaskRow.id))).scalars())

    async def meeting_tasks(self, week: date, since: datetime, until: datetime, today: date) -> list[TaskRow]:
        """Tasks the meeting talks about: in this week's meeting, done since last week, or overdue."""
        return list((await self.session.execute(
            select(TaskRow).where(or_(
                TaskRow.week == week,
                and_(TaskRow.closed_at >= since, TaskRow.closed_at < until),
                and_(TaskRow.status == "open", TaskRow.due_date < today),
            )).order_by(TaskRow.due_date, TaskRow.id))).scalars())

    async def carry_open_tasks(self, week: date) -> list[tuple[TaskRow, date]]:
        """Move every open task of an earlier week into `week`, counting the week ends it crossed.

        Concurrent callers serialise on the task rows: the second one's locking read re-checks
        `week < :week` on the row the first one committed, finds it false and skips it, so a task
        is carried once whoever runs the rollover and however often."""
        moved = (await self.session.execute(text(f"""
            WITH moved AS (
                SELECT id, week AS from_week FROM {SCHEMA}.task
                WHERE status = 'open' AND week < CAST(:week AS date) ORDER BY id FOR UPDATE
            )
            UPDATE {SCHEMA}.task t
            SET week = CAST(:week AS date), carried = t.carried + ((CAST(:week AS date) - moved.from_week) / 7),
                version = t.version + 1
            FROM moved WHERE t.id = moved.id AND t.week < CAST(:week AS date)
            RETURNING t.id, moved.from_week
        """), {"week": week})).all()
        if not moved:
            return []
        await execute_many(self.session, insert(CarryRow).on_conflict_do_nothing(),
                           [{"task_id": tid, "to_week": week, "from_week": fw} for tid, fw in moved])
        rows = await self.tasks_by_ids([tid for tid, _ in moved])
        for row in rows.values():
            await self.session.refresh(row)
        return [(rows[tid], fw) for tid, fw in moved]

    async def bump_task(self, task_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(update(TaskRow).where(TaskRow.id == task_id)
                                   .values(**values, version=TaskRow.version + 1))

    # ------------------------------------------------------------------------------------ funding

    async def fund_request_deadlines(self, owner: str, before: date) -> list[Deadline]:
        """Open deadlines of the member's fund requests due before `before` (the funding area keeps them)."""
        return list((await self.session.execute(
            select(Deadline).where(Deadline.owner == owner, Deadline.status == "open",
                                   Deadline.regarding == "fund_request", Deadline.due_date < before)
            .order_by(Deadline.due_date, Deadline.key))).scalars())

    # ------------------------------------------------------------------------------------ pipeline

    async def deals_of(self, owner: str, since: datetime) -> list[tuple[DealRow, str | None]]:
        rows = await self.session.execute(
            select(DealRow, PartnerRow.name).outerjoin(PartnerRow, PartnerRow.id == DealRow.partner_id)
            .where(DealRow.owner == owner,
                   or_(DealRow.outcome == "open", DealRow.stage_entered_at >= since, DealRow.created_at >= since))
            .order_by(PartnerRow.name.nulls_last(), DealRow.name, DealRow.id))
        return [(d, n) for d, n in rows.all()]

    async def deals(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[DealRow, str | None]]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(DealRow, PartnerRow.name).outerjoin(PartnerRow, PartnerRow.id == DealRow.partner_id)
            .where(DealRow.id.in_(ids)))
        return {d.id: (d, n) for d, n in rows.all()}

    async def partners(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PartnerRow]:
        if not ids:
            return {}
        return {r.id: r for r in (await self.session.execute(
            select(PartnerRow).where(PartnerRow.id.in_(ids)))).scalars()}

    async def deal_changes(self, since: datetime, until: datetime) -> list[tuple[DealChangeRow, DealRow | None,
                                                                                   str | None]]:
        rows = await self.session.execute(
            select(DealChangeRow, DealRow, PartnerRow.name)
            .outerjoin(DealRow, DealRow.id == DealChangeRow.opportunity_id)
            .outerjoin(PartnerRow, PartnerRow.id == DealRow.partner_id)
            .where(DealChangeRow.at >= since, DealChangeRow.at < until,
                   # A deleted deal's changes are gone from the meeting as the deal is from everywhere.
                   or_(DealRow.outcome.is_(None), DealRow.outcome != DELETED_OUTCOME))
            .order_by(DealChangeRow.at, DealChangeRow.event_id))
        return [(c, d, n) for c, d, n in rows.all()]
