"""Stored rows as the contracts describe them."""

from __future__ import annotations

from contracts import week as w
from services.relationships.week.models import AttendeeRow, DecisionRow, LineRow, MeetingRow, TaskRow


def meeting(row: MeetingRow, attendees: list[AttendeeRow] | None = None,
            decisions: list[DecisionRow] | None = None) -> w.Meeting:
    return w.Meeting(
        id=row.id, week=row.week, time_zone=row.time_zone, starts_at=row.starts_at, ends_at=row.ends_at,
        updates_due_at=row.updates_due_at, status=w.MeetingStatus(row.status), closed_at=row.closed_at,
        closed_by=row.closed_by, version=row.version,
        attendees=[w.Attendee(user_id=a.user_id, name=a.name) for a in attendees or []],
        decisions=[w.Decision(id=d.id, text=d.text, recorded_by=d.recorded_by, recorded_at=d.recorded_at)
                   for d in decisions or []],
    )


def task(row: TaskRow) -> w.Task:
    link = None
    if row.link_kind and row.link_id:
        link = w.TaskLink(kind=w.LinkKind(row.link_kind), id=row.link_id, label=row.link_label)
    return w.Task(
        id=row.id, owner=row.owner, title=row.title, due_date=row.due_date, link=link,
        status=w.TaskStatus(row.status), reason=row.reason, week=row.week, first_week=row.first_week,
        carried=row.carried, from_update_line=row.from_line_key, created_by=row.created_by,
        created_at=row.created_at, closed_at=row.closed_at, version=row.version,
    )


def line(row: LineRow) -> w.UpdateLine:
    return w.UpdateLine(
        key=row.key, kind=w.LineKind(row.kind), ref_id=row.ref_id, label=row.label,
        status=w.LineStatus(row.status) if row.status else None, note=row.note, next_step=row.next_step,
        next_step_due=row.next_step_due, task_id=row.task_id, reasons=list(row.reasons or []),
    )
