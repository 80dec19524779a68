"""Use cases of the team's week: open a week (creating its meeting and carrying open tasks into it),
settings, meetings, decisions and closing. Updates are in `updates.py`, tasks in `tasks.py`. Never commits:
the command boundary does."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import week as w
from runtime.errors import Conflict, Invalid, NotFound
from runtime.outbox import add_event, add_events
from services.relationships.week import domain, views
from services.relationships.week.models import SCHEMA, DecisionRow, MeetingRow, WeekSettingsRow
from services.relationships.week.repository import WeekRepository


def now() -> datetime:
    return datetime.now(UTC)


async def team_settings(repo: WeekRepository) -> WeekSettingsRow:
    """The stored settings; UTC until the first gateway opens a week with the VP's zone."""
    row = await repo.settings()
    return row if row is not None else WeekSettingsRow(id=1, time_zone="UTC", updates_due_weekday=0,
                                                       updates_due_hour=12, version=0)


def monday(day: date, field: str = "week") -> date:
    if not domain.is_monday(day):
        raise Invalid(f"{day.isoformat()} is not a Monday; a week is named by its Monday", field=field)
    return day


async def ensure_meeting(session: AsyncSession, week: date, settings: WeekSettingsRow) -> MeetingRow:
    """The week's meeting, made now if it is not there. Two callers at once make one: the unique week
    decides, and only the one whose insert won announces it."""
    repo = WeekRepository(session)
    found = await repo.meeting(week)
    if found is not None:
        return found
    tz = domain.zone(settings.time_zone)
    starts, ends = domain.week_bounds(week, tz)
    due = domain.updates_due_at(week, tz, settings.updates_due_weekday, settings.updates_due_hour)
    if await repo.insert_meeting({"id": uuid.uuid4(), "week": week, "time_zone": settings.time_zone,
                                  "starts_at": starts, "ends_at": ends, "updates_due_at": due, "status": "open",
                                  "version": 1}):
        row = await repo.meeting(week)
        assert row is not None
        await add_event(session, SCHEMA, w.MeetingOpenedV1(meeting=views.meeting(row)))
        return row
    row = await repo.meeting(week)
    assert row is not None
    return row


async def rollover(session: AsyncSession, week: date, actor: str | None = None) -> int:
    """Carry every open task of earlier weeks into `week`; idempotent (see the repository)."""
    carried = await WeekRepository(session).carry_open_tasks(week)
    await add_events(session, SCHEMA, [w.TaskCarriedV1(task=views.task(t), from_week=fw, to_week=week, actor=actor)
                                       for t, fw in carried])
    return len(carried)


async def current_week(session: AsyncSession, at: datetime | None = None) -> tuple[date, WeekSettingsRow]:
    settings = await team_settings(WeekRepository(session))
    return domain.week_of(at or now(), domain.zone(settings.time_zone)), settings


async def open_week(session: AsyncSession, cmd: w.OpenWeek) -> w.Meeting:
    repo = WeekRepository(session)
    domain.zone(cmd.default_time_zone, field="default_time_zone")
    settings = await repo.default_settings(cmd.default_time_zone)
    week = domain.week_of(cmd.at or now(), domain.zone(settings.time_zone))
    meeting = await ensure_meeting(session, week, settings)
    if meeting.status == w.MeetingStatus.open and cmd.attendees:
        await repo.add_attendees(meeting.id, [(a.user_id, a.name) for a in cmd.attendees])
    await rollover(session, week, cmd.actor)
    return views.meeting(meeting, await repo.attendees(meeting.id), await repo.decisions(meeting.id))


async def meeting_of(session: AsyncSession, week: date | None, *, lock: bool = False) -> MeetingRow:
    repo = WeekRepository(session)
    if week is None:
        week, settings = await current_week(session)
        found = await repo.meeting(week, lock=lock)
        if found is None:
            await ensure_meeting(session, week, settings)
            found = await repo.meeting(week, lock=lock)
    else:
        found = await repo.meeting(monday(week), lock=lock)
    if found is None:
        raise NotFound(f"there is no meeting for the week of {week.isoformat()}", field="week")
    return found


async def list_meetings(session: AsyncSession, cmd: w.ListMeetings) -> w.MeetingList:
    rows, total = await WeekRepository(session).meetings(cmd.offset, cmd.limit)
    return w.MeetingList(items=[views.meeting(r) for r in rows], total=total)


async def close_meeting(session: AsyncSession, cmd: w.CloseMeeting) -> w.Meeting:
    repo = WeekRepository(session)
    row = await meeting_of(session, cmd.week, lock=True)
    if row.version != cmd.version:
        raise Conflict(f"the meeting changed since version {cmd.version} (now {row.version}); reload it",
                       field="version")
    if row.status == w.MeetingStatus.closed:
        raise Conflict(f"the meeting of {row.week.isoformat()} is already closed", field="week")
    row.status, row.closed_at, row.closed_by, row.version = "closed", now(), cmd.actor, row.version + 1
    await session.flush()
    meeting = views.meeting(row, await repo.attendees(row.id), await repo.decisions(row.id))
    await add_event(session, SCHEMA, w.MeetingClosedV1(meeting=meeting))
    return meeting


async def record_decision(session: AsyncSession, cmd: w.RecordDecision) -> w.Meeting:
    repo = WeekRepository(session)
    row = await meeting_of(session, cmd.week, lock=True)
    if row.status == w.MeetingStatus.closed:
        raise Conflict(f"the meeting of {row.week.isoformat()} is closed", field="week")
    decision = DecisionRow(id=uuid.uuid4(), meeting_id=row.id, text=cmd.text, recorded_by=cmd.actor, recorded_at=now())
    await repo.add_decision(decision)
    row.version += 1
    await session.flush()
    await add_event(session, SCHEMA, w.DecisionRecordedV1(week=row.week, decision=w.Decision(
        id=decision.id, text=decision.text, recorded_by=decision.recorded_by, recorded_at=decision.recorded_at)))
    return views.meeting(row, await repo.attendees(row.id), await repo.decisions(row.id))


def _settings_view(row: WeekSettingsRow) -> w.WeekSettings:
    return w.WeekSettings(time_zone=row.time_zone, updates_due_weekday=row.updates_due_weekday,
                          updates_due_hour=row.updates_due_hour, version=row.version)


async def get_settings(session: AsyncSession, _cmd: w.GetWeekSettings) -> w.WeekSettings:
    return _settings_view(await team_settings(WeekRepository(session)))


async def change_settings(session: AsyncSession, cmd: w.ChangeWeekSettings) -> w.WeekSettings:
    """Weeks already opened keep their bounds; the next week opened follows the new zone."""
    domain.zone(cmd.time_zone)
    repo = WeekRepository(session)
    row = await repo.settings_for_update()
    current = row.version if row is not None else 0
    if cmd.version != current:
        raise Conflict(f"the settings changed since version {cmd.version} (now {current})", field="version")
    if row is None:
        row = WeekSettingsRow(id=1, time_zone=cmd.time_zone, updates_due_weekday=cmd.updates_due_weekday,
                              updates_due_hour=cmd.updates_due_hour, version=1)
        session.add(row)
    else:
        row.time_zone, row.updates_due_weekday, row.updates_due_hour = (
            cmd.time_zone, cmd.updates_due_weekday, cmd.updates_due_hour)
        row.version += 1
    await session.flush()
    return _settings_view(row)


def previous_week(week: date) -> date:
    return week - timedelta(days=7)
