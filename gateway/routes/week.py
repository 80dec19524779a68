"""The team's week: meetings (opened on first use), each member's update, decisions, closing, the
Markdown minutes, tasks, and the week's settings. The relationships service owns all of it; the gateway
names who is asking (the signed-in user, never a body field) and who the team is."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts import week as w
from contracts.fields import Day, Offset, Version, line
from gateway import audit, calendar_feed, people
from gateway.auth import Principal, Role, require
from gateway.read_models import week as week_models
from gateway.state import bus, sessions
from gateway.week_team import minutes_markdown, open_current_week, team
from runtime.commands import send

router = APIRouter(prefix="/api", tags=["week"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="week:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="week:write"))]
# Updates are a person's own: tokens, which belong to no person, cannot write one.
Person = Annotated[Principal, Depends(require(Role.member))]
Manager = Annotated[Principal, Depends(require(Role.manager, scope="week:write"))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
Week = Annotated[date, Path(description="the week's Monday, e.g. 2026-11-30")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UpdateIn(_In):
    version: Version = Field(description="the version last read; 0 for the first save")
    lines: list[w.UpdateLineIn] = Field(default=[], max_length=100)
    anything_else: w.Note = ""
    submit: bool = Field(default=False, description="submit (or amend, once submitted); false saves a draft")


class CloseIn(_In):
    version: Version


class DecisionIn(_In):
    text: w.DecisionText


class TaskIn(_In):
    owner: line(200, 1, description="the owner's user id or email")
    title: w.TaskTitle
    due_date: Day
    link: w.TaskLink | None = None
    week: Day | None = Field(default=None, description="the meeting it belongs to; none = this week's")


class TaskPatch(_In):
    version: Version
    title: w.TaskTitle | None = None
    owner: line(200, 1, description="the new owner's user id or email") | None = None
    due_date: Day | None = None
    status: w.TaskStatus | None = None
    reason: w.Reason | None = Field(default=None, description="required when dropping a task")


class SettingsIn(_In):
    time_zone: w.TimeZoneName
    updates_due_weekday: int = Field(default=0, ge=0, le=6, description="0 = Monday")
    updates_due_hour: int = Field(default=12, ge=0, le=23)
    version: Version


def _monday(week: date) -> date:
    if week.weekday() != 0:
        raise HTTPException(status_code=422, detail=[{"loc": ["path", "week"], "msg": "a week is named by its Monday",
                                                      "type": "value_error"}])
    return week


# -------------------------------------------------------------------------------------------- meetings


@router.get("/week", response_model=w.Meeting, summary="This week's meeting (made on first use)")
async def current_meeting(request: Request, principal: Reader) -> w.Meeting:
    return await open_current_week(request, principal.id)


@router.get("/week/meetings", response_model=w.MeetingList)
async def list_meetings(request: Request, principal: Reader, offset: Annotated[Offset, Query()] = 0,
                        limit: Annotated[int, Query(ge=1, le=200)] = 20) -> w.MeetingList:
    await open_current_week(request, principal.id)
    return await send(bus(request), w.ListMeetings(offset=offset, limit=limit, actor=principal.id))


@router.get("/week/meetings/{week}", response_model=w.MeetingView)
async def meeting_view(week: Week, request: Request, principal: Reader) -> w.MeetingView:
    return await send(bus(request), w.GetMeetingView(week=_monday(week), actor=principal.id))


@router.get("/week/meetings/{week}/minutes.md", response_class=PlainTextResponse,
            responses={200: {"content": {"text/markdown": {}}}})
async def minutes(week: Week, request: Request, principal: Reader) -> PlainTextResponse:
    view: w.MeetingView = await send(bus(request), w.GetMeetingView(week=_monday(week), actor=principal.id))
    return PlainTextResponse(minutes_markdown(request, view), media_type="text/markdown; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="minutes-{week.isoformat()}.md"'})


@router.post("/week/meetings/{week}/close", response_model=w.Meeting)
async def close_meeting(week: Week, body: CloseIn, request: Request, principal: Manager) -> w.Meeting:
    meeting: w.Meeting = await send(bus(request), w.CloseMeeting(week=_monday(week), version=body.version,
                                                                 actor=principal.id))
    await audit.record_change(request, principal.name, "meeting.closed", entity_id=week.isoformat())
    return meeting


@router.post("/week/meetings/{week}/decisions", status_code=201, response_model=w.Meeting)
async def record_decision(week: Week, body: DecisionIn, request: Request, principal: Manager) -> w.Meeting:
    return await send(bus(request), w.RecordDecision(week=_monday(week), text=body.text, actor=principal.id))


# --------------------------------------------------------------------------------------------- updates


async def _member(request: Request, principal: Principal, member: str) -> str:
    """`me`, or another member's id or email; only managers read another member's update."""
    if member == "me":
        return principal.id
    found = await people.owner_id(request, member, field="member")
    assert found is not None
    if found != principal.id and principal.role.rank < Role.manager.rank:
        raise HTTPException(status_code=403, detail="only managers read another member's update")
    return found


@router.get("/week/meetings/{week}/updates/{member}", response_model=w.Update,
            summary="A member's update (`me` for your own), pre-filled while it is a draft")
async def get_update(week: Week, member: Annotated[str, Path(max_length=200)], request: Request,
                     principal: Person) -> w.Update:
    who = await _member(request, principal, member)
    return await send(bus(request), w.GetUpdate(week=_monday(week), member=who, actor=principal.id))


@router.put("/week/meetings/{week}/updates/me", response_model=w.Update,
            summary="Save your update as a draft, or submit it (again, to amend it until the meeting closes)")
async def save_update(week: Week, body: UpdateIn, request: Request, principal: Person) -> w.Update:
    return await send(bus(request), w.SaveUpdate(week=_monday(week), member=principal.id, version=body.version,
                                                 lines=body.lines, anything_else=body.anything_else,
                                                 submit=body.submit, actor=principal.id))


@router.get("/week/meetings/{week}/updates/{member}/history", response_model=w.UpdateHistory)
async def update_history(week: Week, member: Annotated[str, Path(max_length=200)], request: Request,
                         principal: Person) -> w.UpdateHistory:
    who = await _member(request, principal, member)
    return await send(bus(request), w.GetUpdateHistory(week=_monday(week), member=who, actor=principal.id))


# ----------------------------------------------------------------------------------------------- tasks


@router.get("/tasks", response_model=w.TaskList)
async def list_tasks(request: Request, principal: Reader,
                     owner: Annotated[str | None, Query(max_length=200, description="user id, email or `me`")] = None,
                     status: w.TaskStatus | None = None, week: Day | None = None, link_id: UUID | None = None,
                     offset: Annotated[Offset, Query()] = 0,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> w.TaskList:
    who = principal.id if owner == "me" else await people.owner_filter(request, owner)
    return await send(bus(request), w.ListTasks(owner=who, status=status, week=week, link_id=link_id, offset=offset,
                                                limit=limit, actor=principal.id))


def _may_assign(principal: Principal, owner: str) -> None:
    if owner != principal.id and principal.kind == "user" and principal.role.rank < Role.manager.rank:
        raise HTTPException(status_code=403, detail="only managers give tasks to someone else")


@router.post("/tasks", status_code=201, response_model=w.Task)
async def create_task(body: TaskIn, request: Request, principal: Writer) -> w.Task:
    owner = await people.owner_id(request, body.owner)
    assert owner is not None
    _may_assign(principal, owner)
    await open_current_week(request, principal.id)
    return await send(bus(request), w.CreateTask(owner=owner, title=body.title, due_date=body.due_date,
                                                 link=body.link, week=body.week, actor=principal.id))


@router.patch("/tasks/{task_id}", response_model=w.Task)
async def change_task(task_id: UUID, body: TaskPatch, request: Request, principal: Writer) -> w.Task:
    # Members change their own tasks, managers anyone's; the service checks the owner under its row lock.
    as_owner = principal.id if principal.kind == "user" and principal.role.rank < Role.manager.rank else None
    owner = await people.owner_id(request, body.owner) if body.owner else None
    if owner is not None:
        _may_assign(principal, owner)
    return await send(bus(request), w.ChangeTask(task_id=task_id, version=body.version, title=body.title, owner=owner,
                                                 due_date=body.due_date, status=body.status, reason=body.reason,
                                                 as_owner=as_owner, actor=principal.id))


# -------------------------------------------------------------------------------------------- settings


@router.get("/week/settings", response_model=w.WeekSettings)
async def get_settings(request: Request, principal: Reader) -> w.WeekSettings:
    await open_current_week(request, principal.id)
    return await send(bus(request), w.GetWeekSettings(actor=principal.id))


@router.put("/week/settings", response_model=w.WeekSettings)
async def change_settings(body: SettingsIn, request: Request, principal: Admin) -> w.WeekSettings:
    before = await send(bus(request), w.GetWeekSettings(actor=principal.id))
    after: w.WeekSettings = await send(bus(request), w.ChangeWeekSettings(**body.model_dump(), actor=principal.id))
    await audit.record_change(request, principal.name, "week.settings_changed", before=before, after=after)
    return after


# ---------------------------------------------------------------------------------- calendar feed


@router.get("/tasks/calendar-feed", response_model=calendar_feed.FeedInfo,
            summary="Whether you have a calendar feed (its URL is shown only when made)")
async def get_feed(request: Request, principal: Person) -> calendar_feed.FeedInfo:
    return await calendar_feed.feed_url(request, principal.id)


@router.post("/tasks/calendar-feed", status_code=201, response_model=calendar_feed.FeedInfo,
             summary="Make your calendar feed's secret URL (a new one replaces the old)")
async def rotate_feed(request: Request, principal: Person) -> calendar_feed.FeedInfo:
    info = await calendar_feed.rotate(request, principal.id)
    await audit.record_change(request, principal.name, "calendar_feed.rotated", entity_id=principal.id)
    return info


@router.delete("/tasks/calendar-feed", status_code=204, summary="Revoke your calendar feed")
async def revoke_feed(request: Request, principal: Person) -> Response:
    await calendar_feed.revoke(request, principal.id)
    await audit.record_change(request, principal.name, "calendar_feed.revoked", entity_id=principal.id)
    return Response(status_code=204)


# ------------------------------------------------------------------------------------------------ KPIs


class MemberWeekKpi(BaseModel):
    member: str
    name: str
    overdue_tasks: int = Field(description="open tasks past their due date on the team's calendar")
    open_tasks: int
    updates_on_time: int = Field(description="updates submitted by their due time in the last `weeks` meetings")
    weeks: int


class WeekKpis(BaseModel):
    today: date = Field(description="today on the team's calendar")
    weeks: int = Field(description="meetings counted for on-time updates (this week's and the ones before)")
    members: list[MemberWeekKpi]


@router.get("/week/kpis", response_model=WeekKpis, summary="Overdue tasks and on-time updates per member")
async def week_kpis(request: Request, principal: Reader) -> WeekKpis:
    attendees, _ = await team(request)
    async with sessions(request)() as session:
        today = await week_models.team_today(session)
        figures = await week_models.member_weeks(session, [a.user_id for a in attendees])
    weeks = max((f.weeks for f in figures.values()), default=0)
    return WeekKpis(today=today, weeks=weeks, members=[MemberWeekKpi(
        member=a.user_id, name=a.name, overdue_tasks=figures[a.user_id].overdue_tasks,
        open_tasks=figures[a.user_id].open_tasks, updates_on_time=figures[a.user_id].on_time,
        weeks=figures[a.user_id].weeks) for a in attendees])
