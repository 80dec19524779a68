"""The VP's meeting view: who submitted, every member's lines, what changed in the pipeline since last
week's start, tasks done, overdue, carried and new, decisions. Never commits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import week as w
from services.relationships.week import domain, service, updates, views
from services.relationships.week.repository import WeekRepository


async def get_meeting_view(session: AsyncSession, cmd: w.GetMeetingView) -> w.MeetingView:
    repo = WeekRepository(session)
    meeting = await service.meeting_of(session, cmd.week)
    tz = domain.zone(meeting.time_zone)
    since, _ = domain.week_bounds(service.previous_week(meeting.week), tz)
    until = meeting.ends_at
    today = min(service.now().astimezone(tz).date(), meeting.week + timedelta(days=6))
    attendees = await repo.attendees(meeting.id)
    names = {a.user_id: a.name for a in attendees}
    rows = {r.member: r for r in await repo.updates_of(meeting.id)}
    lines_of: dict[object, list[w.UpdateLine]] = {}
    for ln in await repo.lines([r.id for r in rows.values()]):
        lines_of.setdefault(ln.update_id, []).append(views.line(ln))
    members = sorted(set(names) | set(rows), key=lambda m: (names.get(m, m).lower(), m))
    member_updates = []
    for m in members:
        r = rows.get(m)
        lines = await updates.decorate(session, lines_of.get(r.id, [])) if r else []
        member_updates.append(w.MemberUpdate(
            member=m, name=names.get(m, m), status=w.UpdateStatus(r.status) if r else None,
            submitted_at=r.submitted_at if r else None, on_time=r.on_time if r else None,
            amendments=r.amendments if r else 0, lines=lines, anything_else=r.anything_else if r else ""))
    changes = [w.DealChange(
        opportunity_id=c.opportunity_id, name=d.name if d else str(c.opportunity_id), kind=c.kind, at=c.at,  # type: ignore[arg-type]
        owner=d.owner if d else None, partner_id=d.partner_id if d else None, partner_name=pn,
        from_stage=c.from_stage, to_stage=c.to_stage, amount=str(c.amount), currency=c.currency)
        for c, d, pn in await repo.deal_changes(since, until)]
    task_rows = [views.task(t) for t in await repo.meeting_tasks(meeting.week, since, until, today)]
    return w.MeetingView(
        meeting=views.meeting(meeting, attendees, await repo.decisions(meeting.id)),
        updates=member_updates, changes=changes,
        tasks_done=[t for t in task_rows if t.status == w.TaskStatus.done and t.closed_at and t.closed_at >= since],
        tasks_overdue=[t for t in task_rows if t.status == w.TaskStatus.open and t.due_date < today],
        tasks_carried=sorted([t for t in task_rows if t.status == w.TaskStatus.open and t.week == meeting.week
                              and t.carried > 0], key=lambda t: (-t.carried, t.due_date)),
        tasks_new=[t for t in task_rows if t.first_week == meeting.week and t.carried == 0],
        carried_flag_at=w.CARRIED_FLAG,
    )
