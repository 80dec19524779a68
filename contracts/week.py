"""The team's week: a meeting per week, each member's weekly update, and tasks that roll over.

A week is named by the date of its Monday in the team's time zone (`week`, e.g. 2026-11-30) and runs
from that Monday 00:00 to the next, local time, whatever daylight saving does in between. A meeting
exists for a week from the first time anyone asks for it (two gateways asking at once make one).

Members are gateway user ids (text), taken by the gateway from the signed-in user; `actor` is set by
the gateway from the verified identity, never by the person asking.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.base import Command, Event, StreamSpec
from contracts.fields import Day, Moment, Offset, Version, line, text
from contracts.relationships import STREAM

UserId = line(64, 1, description="A team member's user id.")
TimeZoneName = line(64, 1, description="An IANA time zone, e.g. America/New_York.", examples=["America/New_York"])
LineKey = line(80, 1, description="Stable within an update: `deal:<id>`, `task:<id>`, `free:<anything>`.")
Note = text(2000)
StepText = line(300)
TaskTitle = line(300, 1)
Reason = text(1000)
DecisionText = text(2000, 1)


class LineStatus(StrEnum):
    on_track = "on_track"
    at_risk = "at_risk"
    blocked = "blocked"
    done = "done"


class LineKind(StrEnum):
    deal = "deal"
    partner = "partner"
    task = "task"
    funding = "funding"
    contact = "contact"
    free = "free"


class TaskStatus(StrEnum):
    open = "open"
    done = "done"
    dropped = "dropped"


class LinkKind(StrEnum):
    partner = "partner"
    opportunity = "opportunity"
    contact = "contact"
    fund_request = "fund_request"


class UpdateStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"


class MeetingStatus(StrEnum):
    open = "open"
    closed = "closed"


# ------------------------------------------------------------------------------------------ shapes


class Attendee(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId
    name: line(200)


class Decision(BaseModel):
    id: UUID
    text: str
    recorded_by: str | None
    recorded_at: datetime


class Meeting(BaseModel):
    id: UUID
    week: date = Field(description="the Monday the week starts on, in the team's time zone")
    time_zone: str
    starts_at: datetime
    ends_at: datetime
    updates_due_at: datetime = Field(description="an update submitted before this is on time")
    status: MeetingStatus
    closed_at: datetime | None = None
    closed_by: str | None = None
    attendees: list[Attendee] = []
    decisions: list[Decision] = []
    version: int


class TaskLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: LinkKind
    id: UUID
    label: line(200) | None = Field(default=None, description="what the link is called, for lists and exports")


class Task(BaseModel):
    id: UUID
    owner: str
    title: str
    due_date: date
    link: TaskLink | None = None
    status: TaskStatus
    reason: str | None = Field(default=None, description="why it was dropped")
    week: date = Field(description="the meeting the task is in now (moves when it is carried)")
    first_week: date = Field(description="the meeting it was first in")
    carried: int = Field(description="how many week ends it has been carried over unfinished")
    from_update_line: str | None = Field(default=None, description="the update line whose next step it is")
    created_by: str | None
    created_at: datetime
    closed_at: datetime | None = None
    version: int


class TaskList(BaseModel):
    items: list[Task]
    total: int


class UpdateLineIn(BaseModel):
    """One line of a member's update, as the member fills it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: LineKey
    kind: LineKind = LineKind.free
    ref_id: UUID | None = Field(default=None, description="the deal, partner, task ... the line is about")
    label: line(300) = ""
    status: LineStatus | None = None
    note: Note = ""
    next_step: StepText = ""
    next_step_due: Day | None = None

    @model_validator(mode="after")
    def _due_needs_step(self) -> UpdateLineIn:
        if self.next_step_due is not None and not self.next_step:
            raise ValueError("a next step's due date needs the next step itself")
        return self


class UpdateLine(UpdateLineIn):
    partner_id: UUID | None = None
    partner_name: str | None = None
    reasons: list[str] = Field(default=[], description="why the platform put this line here (moved, "
                               "closing_this_quarter, stuck, action_required, task_due, ...)")
    suggested: bool = Field(default=False, description="pre-filled and not saved by the member yet")
    amount: str | None = None
    currency: str | None = None
    task_id: UUID | None = Field(default=None, description="the task its next step became")


class Update(BaseModel):
    id: UUID | None = Field(description="none until the first save")
    week: date
    member: str
    status: UpdateStatus
    lines: list[UpdateLine]
    anything_else: str
    submitted_at: datetime | None = None
    on_time: bool | None = None
    amendments: int = 0
    updated_at: datetime | None = None
    version: int = Field(description="send it back with the next save; 0 = never saved")
    meeting_status: MeetingStatus


class UpdateRevision(BaseModel):
    revision: int
    action: Literal["submitted", "amended"]
    by: str | None
    at: datetime
    lines: list[UpdateLine]
    anything_else: str


class UpdateHistory(BaseModel):
    items: list[UpdateRevision]


class DealChange(BaseModel):
    opportunity_id: UUID
    name: str
    kind: Literal["created", "moved", "won", "lost"]
    at: datetime
    owner: str | None
    partner_id: UUID | None
    partner_name: str | None
    from_stage: str | None = None
    to_stage: str | None = None
    amount: str
    currency: str


class MemberUpdate(BaseModel):
    member: str
    name: str
    status: UpdateStatus | None = Field(description="none: not started")
    submitted_at: datetime | None
    on_time: bool | None
    amendments: int
    lines: list[UpdateLine]
    anything_else: str


class MeetingView(BaseModel):
    """What the VP looks at in the meeting."""

    meeting: Meeting
    updates: list[MemberUpdate]
    changes: list[DealChange] = Field(description="deals created, moved, won and lost since last week's start")
    tasks_done: list[Task]
    tasks_overdue: list[Task]
    tasks_carried: list[Task]
    tasks_new: list[Task] = Field(description="tasks created this week (in the meeting or from next steps)")
    carried_flag_at: int = Field(description="a task carried this often or more is flagged")


class MeetingList(BaseModel):
    items: list[Meeting]
    total: int


class WeekSettings(BaseModel):
    time_zone: str
    updates_due_weekday: int = Field(description="0 = Monday")
    updates_due_hour: int
    version: int


class RolloverResult(BaseModel):
    week: date
    carried: int = Field(description="tasks carried into this week by this call")


# ---------------------------------------------------------------------------------------- commands


class _WeekCommand(Command):
    week: Day | None = Field(default=None, description="the week's Monday; none = the current week")


class OpenWeek(Command):
    """The meeting of the week `at` falls in (now if absent), created if it is not there yet, with its
    attendees recorded and every open task of earlier weeks carried into it. Idempotent."""

    subject: ClassVar[str] = "cmd.relationships.week.open"
    result: ClassVar[type[BaseModel]] = Meeting

    at: Moment | None = None
    default_time_zone: TimeZoneName = Field(default="UTC", description="the team's zone if none is set yet")
    attendees: list[Attendee] = Field(default=[], max_length=200)


class GetMeetingView(_WeekCommand):
    """The VP's meeting view of a week."""

    subject: ClassVar[str] = "cmd.relationships.week.view"
    result: ClassVar[type[BaseModel]] = MeetingView


class ListMeetings(Command):
    """Past and present meetings, newest first."""

    subject: ClassVar[str] = "cmd.relationships.week.list"
    result: ClassVar[type[BaseModel]] = MeetingList

    offset: Offset = 0
    limit: int = Field(default=20, ge=1, le=200)


class CloseMeeting(Command):
    """Close a week's meeting: its updates can no longer be amended."""

    subject: ClassVar[str] = "cmd.relationships.week.close"
    result: ClassVar[type[BaseModel]] = Meeting

    week: Day
    version: Version


class RecordDecision(Command):
    """Write down a decision taken in the meeting."""

    subject: ClassVar[str] = "cmd.relationships.week.decision"
    result: ClassVar[type[BaseModel]] = Meeting

    week: Day
    text: DecisionText


class GetUpdate(_WeekCommand):
    """A member's update for a week, pre-filled with what the platform knows while it is a draft."""

    subject: ClassVar[str] = "cmd.relationships.update.get"
    result: ClassVar[type[BaseModel]] = Update

    member: UserId


class SaveUpdate(Command):
    """Save a member's update as a draft, or submit it (again: an amendment, kept in its history)."""

    subject: ClassVar[str] = "cmd.relationships.update.save"
    result: ClassVar[type[BaseModel]] = Update

    week: Day
    member: UserId
    version: Version = Field(description="the version last read; 0 for the first save")
    lines: list[UpdateLineIn] = Field(default=[], max_length=100)
    anything_else: Note = ""
    submit: bool = False
    at: Moment | None = Field(default=None, description="when it was written; only demo seeding sets it (the "
                              "HTTP API never does), otherwise now")

    @field_validator("lines")
    @classmethod
    def _unique_keys(cls, lines: list[UpdateLineIn]) -> list[UpdateLineIn]:
        seen: set[str] = set()
        for i, one in enumerate(lines):
            if one.key in seen:
                raise ValueError(f"lines[{i}].key {one.key!r} appears twice")
            seen.add(one.key)
        return lines


class GetUpdateHistory(Command):
    """Every submission and amendment of a member's update."""

    subject: ClassVar[str] = "cmd.relationships.update.history"
    result: ClassVar[type[BaseModel]] = UpdateHistory

    week: Day
    member: UserId


class CreateTask(Command):
    """A task with an owner and a due date, in the current week's meeting (or the week named)."""

    subject: ClassVar[str] = "cmd.relationships.task.create"
    result: ClassVar[type[BaseModel]] = Task

    owner: UserId
    title: TaskTitle
    due_date: Day
    link: TaskLink | None = None
    week: Day | None = None


class ChangeTask(Command):
    """Change a task: its title, owner, due date, or status (done, or dropped with a reason)."""

    subject: ClassVar[str] = "cmd.relationships.task.change"
    result: ClassVar[type[BaseModel]] = Task

    task_id: UUID
    version: Version
    title: TaskTitle | None = None
    owner: UserId | None = None
    due_date: Day | None = None
    status: TaskStatus | None = None
    reason: Reason | None = None
    as_owner: UserId | None = Field(default=None, description="set by the gateway for members: the task must "
                                    "be this member's")
    at: Moment | None = Field(default=None, description="when it was done; only demo seeding sets it, otherwise now")

    @model_validator(mode="after")
    def _dropped_needs_reason(self) -> ChangeTask:
        if self.status == TaskStatus.dropped and not self.reason:
            raise ValueError("a dropped task needs a reason")
        return self


class ListTasks(Command):
    """Tasks, filtered."""

    subject: ClassVar[str] = "cmd.relationships.task.list"
    result: ClassVar[type[BaseModel]] = TaskList

    owner: UserId | None = None
    status: TaskStatus | None = None
    week: Day | None = None
    link_id: UUID | None = None
    offset: Offset = 0
    limit: int = Field(default=200, ge=1, le=1000)


class GetWeekSettings(Command):
    """The team's time zone and when updates are due."""

    subject: ClassVar[str] = "cmd.relationships.week.settings.get"
    result: ClassVar[type[BaseModel]] = WeekSettings


class ChangeWeekSettings(Command):
    """Set the team's time zone (weeks not opened yet follow it) and when updates are due."""

    subject: ClassVar[str] = "cmd.relationships.week.settings.change"
    result: ClassVar[type[BaseModel]] = WeekSettings

    time_zone: TimeZoneName
    updates_due_weekday: int = Field(default=0, ge=0, le=6)
    updates_due_hour: int = Field(default=12, ge=0, le=23)
    version: Version


# ------------------------------------------------------------------------------------------ events


class MeetingOpenedV1(Event):
    """Sent when a week's meeting is created (on the first request that needs it)."""

    subject: ClassVar[str] = "relationships.meeting.opened.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    meeting: Meeting

    def aggregate_key(self) -> str:
        return f"meeting:{self.meeting.week}"


class MeetingClosedV1(Event):
    """Sent when a week's meeting is closed."""

    subject: ClassVar[str] = "relationships.meeting.closed.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    meeting: Meeting

    def aggregate_key(self) -> str:
        return f"meeting:{self.meeting.week}"


class DecisionRecordedV1(Event):
    """Sent when a decision is written down in a meeting."""

    subject: ClassVar[str] = "relationships.meeting.decision_recorded.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    week: date
    decision: Decision

    def aggregate_key(self) -> str:
        return f"meeting:{self.week}"


class UpdateSubmittedV1(Event):
    """Sent when a member submits their weekly update, and again at each amendment."""

    subject: ClassVar[str] = "relationships.meeting.update_submitted.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    week: date
    member: str
    submitted_at: datetime = Field(description="the first submission")
    on_time: bool
    amendments: int
    lines: int

    def aggregate_key(self) -> str:
        return f"update:{self.week}:{self.member}"


class _TaskEvent(Event):
    stream: ClassVar[StreamSpec] = STREAM
    schema_version: Literal[1] = 1
    task: Task
    actor: str | None = None

    def aggregate_key(self) -> str:
        return f"task:{self.task.id}"


class TaskCreatedV1(_TaskEvent):
    """Sent when a task is created (by hand, in the meeting, or from an update's next step)."""

    subject: ClassVar[str] = "relationships.task.created.v1"


class TaskChangedV1(_TaskEvent):
    """Sent when a task's title, owner, due date or status changes (done, dropped, reopened)."""

    subject: ClassVar[str] = "relationships.task.changed.v1"


class TaskCarriedV1(_TaskEvent):
    """Sent when an open task is carried into the next week's meeting."""

    subject: ClassVar[str] = "relationships.task.carried.v1"
    from_week: date
    to_week: date


EVENTS: tuple[type[Event], ...] = (
    MeetingOpenedV1, MeetingClosedV1, DecisionRecordedV1, UpdateSubmittedV1, TaskCreatedV1, TaskChangedV1,
    TaskCarriedV1,
)
COMMANDS: tuple[type[Command], ...] = (
    OpenWeek, GetMeetingView, ListMeetings, CloseMeeting, RecordDecision, GetUpdate, SaveUpdate, GetUpdateHistory,
    CreateTask, ChangeTask, ListTasks, GetWeekSettings, ChangeWeekSettings,
)
# A task carried this many times or more is flagged on the meeting view.
CARRIED_FLAG = 3
