"""The team's week in the browser: a member's update for this week (pre-filled, keyboard only, saved as a
draft at every change by static/week_update.js through the REST API), their open tasks, the VP's
meeting view (print-friendly, with decisions, new tasks and closing), and past meetings."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from contracts import week as w
from gateway import audit, calendar_feed, people
from gateway.auth import Principal
from gateway.routes.week import TaskIn
from gateway.state import bus
from gateway.web.common import Manager, Member, Viewer, field_errors, not_found, render
from gateway.week_team import STATUS_LABELS, open_current_week, said_something, team
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)

REASON_LABELS = {
    "moved": "moved", "created": "new", "closing_this_quarter": "closing this quarter",
    "past_close_date": "past close date", "stuck": "stuck", "action_required": "ACE Action Required",
    "task_due": "task due", "task_overdue": "task overdue", "funding_deadline": "funding deadline",
    "cooling_contact": "cooling contact",
}
SHORTCUTS = (
    ("Tab / Shift+Tab", "next / previous field"),
    ("o a b d", "in a status field: on track, at risk, blocked, done"),
    ("Enter", "add a line below (in any field of a line)"),
    ("Ctrl+Enter", "submit the update (or submit the amendment)"),
    ("Alt+↑ / Alt+↓", "previous / next line"),
    ("Ctrl+Backspace", "in an empty free line: remove it"),
    ("Due dates", "2026-12-04, fri, tomorrow, +3"),
)


def _week_param(value: str | None) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if day.weekday() == 0 else None


@router.get("/week")
async def my_week(request: Request, principal: Viewer) -> Response:
    return await _week_page(request, principal)


async def _week_page(request: Request, principal: Principal, new_feed: str | None = None) -> Response:
    meeting = await open_current_week(request, principal.id)
    if principal.role.value == "viewer":
        return RedirectResponse(f"/week/meeting?week={meeting.week}", status_code=303)
    update, tasks = await asyncio.gather(
        send(bus(request), w.GetUpdate(week=meeting.week, member=principal.id, actor=principal.id)),
        send(bus(request), w.ListTasks(owner=principal.id, status=w.TaskStatus.open, limit=200, actor=principal.id)))
    return render(request, "week.html", {
        "meeting": meeting, "update": update, "tasks": tasks.items, "shortcuts": SHORTCUTS,
        "reason_labels": REASON_LABELS, "statuses": STATUS_LABELS, "new_feed": new_feed,
        "feed": await calendar_feed.feed_url(request, principal.id),
        "update_json": update.model_dump(mode="json"),
    })


def _grouped(lines: list[w.UpdateLine]) -> list[tuple[str, list[w.UpdateLine]]]:
    """The lines the member said something about, by partner (pre-filled lines left untouched are counted
    on the page, not listed: they say nothing the pipeline does not)."""
    groups: dict[str, list[w.UpdateLine]] = defaultdict(list)
    for ln in filter(said_something, lines):
        groups[ln.partner_name or "Other"].append(ln)
    return sorted(groups.items(), key=lambda kv: (kv[0] == "Other", kv[0].lower()))


@router.get("/week/meeting")
async def meeting_page(request: Request, principal: Viewer, week: str | None = None,
                       error: str | None = None) -> Response:
    current = await open_current_week(request, principal.id)
    chosen = _week_param(week) if week else current.week
    if chosen is None:
        return not_found(request, "that week (name it by its Monday, e.g. 2026-11-30)")
    try:
        view: w.MeetingView = await send(bus(request), w.GetMeetingView(week=chosen, actor=principal.id))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return not_found(request, f"a meeting for the week of {chosen}")
        raise
    attendees, _ = await team(request)
    return render(request, "week_meeting.html", {
        "view": view, "m": view.meeting, "grouped": {u.member: _grouped(u.lines) for u in view.updates},
        "untouched": {u.member: sum(1 for ln in u.lines if not said_something(ln)) for u in view.updates},
        "statuses": STATUS_LABELS, "reason_labels": REASON_LABELS, "members": attendees, "error": error,
        "submitted": sum(1 for u in view.updates if u.status == w.UpdateStatus.submitted),
        "previous": view.meeting.week - timedelta(days=7), "next": view.meeting.week + timedelta(days=7),
        "is_current": view.meeting.week == current.week, "default_due": view.meeting.week + timedelta(days=11),
    })


@router.get("/week/meetings")
async def meetings_page(request: Request, principal: Viewer, offset: int = 0) -> Response:
    await open_current_week(request, principal.id)
    offset = max(0, min(offset, 1_000_000))
    meetings: w.MeetingList = await send(bus(request), w.ListMeetings(offset=offset, limit=20, actor=principal.id))
    return render(request, "week_meetings.html", {"meetings": meetings, "offset": offset})


def _back(week: date, error: str | None = None) -> RedirectResponse:
    target = f"/week/meeting?week={week}"
    if error:
        target += f"&error={quote(error[:300])}"
    return RedirectResponse(target + "#decisions", status_code=303)


@router.post("/week/meeting/{week}/decision")
async def add_decision(week: date, request: Request, principal: Manager, text: str = Form("")) -> Response:
    try:
        await send(bus(request), w.RecordDecision(week=week, text=text, actor=principal.id))
    except (ValidationError, CommandFailed) as exc:
        return _back(week, "Decision: " + next(iter(field_errors(exc).values())))
    return _back(week)


@router.post("/week/meeting/{week}/task")
async def add_task(week: date, request: Request, principal: Manager, owner: str = Form(""), title: str = Form(""),
                   due_date: str = Form("")) -> Response:
    try:
        body = TaskIn(owner=owner, title=title, due_date=due_date or None, week=week)  # type: ignore[arg-type]
        owner_id = await people.owner_id(request, body.owner)
        await send(bus(request), w.CreateTask(owner=owner_id, title=body.title, due_date=body.due_date, week=week,
                                              actor=principal.id))
    except (ValidationError, CommandFailed) as exc:
        field, message = next(iter(field_errors(exc).items()))
        return _back(week, f"Task {field.replace('_', ' ')}: {message}")
    return _back(week)


@router.post("/week/meeting/{week}/close")
async def close(week: date, request: Request, principal: Manager, version: int = Form(0)) -> Response:
    try:
        await send(bus(request), w.CloseMeeting(week=week, version=version, actor=principal.id))
    except (ValidationError, CommandFailed) as exc:
        return _back(week, "Close: " + next(iter(field_errors(exc).values())))
    return _back(week)


@router.post("/week/tasks/{task_id}")
async def task_status(task_id: UUID, request: Request, principal: Member, version: int = Form(0),
                      status: str = Form(""), reason: str = Form("")) -> Response:
    as_owner = principal.id if principal.role.value == "member" else None
    data: dict[str, Any] = {"task_id": task_id, "version": version, "status": status or None,
                            "reason": reason or None, "as_owner": as_owner, "actor": principal.id}
    try:
        await send(bus(request), w.ChangeTask.model_validate(data))
    except (ValidationError, CommandFailed) as exc:
        message = next(iter(field_errors(exc).values()))
        return RedirectResponse(f"/week?{urlencode({'task_error': message[:200]})}#tasks", status_code=303)
    return RedirectResponse("/week#tasks", status_code=303)


@router.post("/week/calendar")
async def make_feed(request: Request, principal: Member) -> Response:
    info = await calendar_feed.rotate(request, principal.id)
    await audit.record_change(request, principal.name, "calendar_feed.rotated", entity_id=principal.id)
    return await _week_page(request, principal, new_feed=info.url)


@router.post("/week/calendar/revoke")
async def revoke_feed(request: Request, principal: Member) -> Response:
    await calendar_feed.revoke(request, principal.id)
    await audit.record_change(request, principal.name, "calendar_feed.revoked", entity_id=principal.id)
    return RedirectResponse("/week#calendar", status_code=303)
