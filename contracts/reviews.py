"""Business reviews with a partner (the relationships service): monthly or quarterly meetings with the
partner's contacts, with an agenda pre-filled from the partner's figures (revenue this period against
the last, pipeline, open deals, commissions owed both ways, funding, certifications due), notes,
decisions and follow-up tasks (tasks of the team's week, linked to the partner).

The agenda is a snapshot the gateway assembles from its read models (and, where it has none, from the
owning services) when the review is made or refreshed; the review keeps it, so the print view sent to
the partner says what the figures were on that day.

Periods are calendar ones, as commission statements' are: a month "2026-11" or a calendar quarter
"2026-Q4" (contracts/quarters.py).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts.base import Command, PartialCommand
from contracts.fields import Day, Moment, Offset, line, text
from contracts.quarters import Quarter, add_months, month_start

MAX_ATTENDEES = 50
MAX_LINES = 50
Figure = Annotated[Decimal, Field(ge=-(10**15), le=10**15, max_digits=18, decimal_places=2)]
UserId = line(64, 1, description="A team member's user id.")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ReviewKind(StrEnum):
    monthly = "monthly"
    quarterly = "quarterly"


class ReviewStatus(StrEnum):
    planned = "planned"
    held = "held"


# ------------------------------------------------------------------------------------------ periods


def period_range(kind: ReviewKind, label: str) -> tuple[date, date]:
    """The first day of the period and the first day after it; a label of the wrong form is a ValueError."""
    if kind is ReviewKind.quarterly:
        return Quarter.parse(label).range()
    found = _MONTH.match(label)
    if not found or not 1 <= int(found[2]) <= 12 or not 1900 <= int(found[1]) <= 2200:
        raise ValueError(f"{label!r} is not a month; write it like 2026-11")
    first = date(int(found[1]), int(found[2]), 1)
    return first, add_months(first, 1)


def period_label(kind: ReviewKind, day: date) -> str:
    return Quarter.calendar_of(day).label if kind is ReviewKind.quarterly else month_start(day).strftime("%Y-%m")


def previous_period(kind: ReviewKind, label: str) -> str:
    first, _ = period_range(kind, label)
    return period_label(kind, add_months(first, -3 if kind is ReviewKind.quarterly else -1))


def default_period(kind: ReviewKind, on: date) -> str:
    """The last whole period before the meeting: a review early in December looks at November."""
    return previous_period(kind, period_label(kind, on))


def _period_text(value: str) -> str:
    if not (_MONTH.match(value) or re.match(r"^\d{4}-Q[1-4]$", value)):
        raise ValueError("write a month like 2026-11 or a quarter like 2026-Q4")
    return value


Period = Annotated[str, Field(min_length=7, max_length=7), AfterValidator(_period_text)]

# ------------------------------------------------------------------------------------------- agenda


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MoneyFigure(_Line):
    currency: line(3, 3)
    amount: Figure
    previous: Figure | None = Field(default=None, description="The same figure in the previous period.")
    deals: int = Field(default=0, ge=0, le=10_000_000)


class DealLine(_Line):
    id: UUID
    name: line(200)
    stage: line(200)
    amount: Figure
    currency: line(3, 3)
    expected_close_date: date | None = None


class CommissionLine(_Line):
    direction: line(20)
    currency: line(3, 3)
    accrued: Figure = Field(description="Accruals less clawbacks plus adjustments in the period.")
    paid: Figure
    owed: Figure = Field(description="The closing balance: still to pay or to be paid.")


class FundingLine(_Line):
    id: UUID
    title: line(200)
    stage: line(100)
    currency: line(3, 3)
    requested: Figure
    approved: Figure | None = None
    received: Figure


class CertificationLine(_Line):
    person: line(200)
    module: line(200)
    status: line(20)
    on: date | None = Field(default=None, description="The date to pass by, or the day the pass lapses.")


class Agenda(_Line):
    """What the review starts from; None in a section: its source did not answer (named in `unavailable`)."""

    period: Period
    previous_period: Period
    period_start: date
    period_end: date = Field(description="exclusive")
    as_of: Moment
    revenue: list[MoneyFigure] = Field(default_factory=list, max_length=MAX_LINES,
                                       description="Won in the period per currency, against the previous one.")
    open_deals: int = Field(default=0, ge=0, le=10_000_000)
    pipeline: list[MoneyFigure] = Field(default_factory=list, max_length=MAX_LINES,
                                        description="Open deals' amounts per currency.")
    deals: list[DealLine] = Field(default_factory=list, max_length=MAX_LINES)
    commissions: list[CommissionLine] | None = Field(default=None, max_length=MAX_LINES)
    funding: list[FundingLine] | None = Field(default=None, max_length=MAX_LINES)
    certifications: list[CertificationLine] | None = Field(default=None, max_length=MAX_LINES * 4)
    unavailable: list[line(100)] = Field(default_factory=list, max_length=10)


# ------------------------------------------------------------------------------------------ reviews


class ReviewAttendee(BaseModel):
    contact_id: UUID
    name: str


class ReviewDecision(BaseModel):
    text: str
    recorded_by: str | None
    recorded_at: datetime


class FollowUp(BaseModel):
    task_id: UUID
    title: str
    owner: str
    due_date: date
    status: str


class Review(BaseModel):
    id: UUID
    partner_id: UUID
    partner_name: str
    kind: ReviewKind
    period: str
    scheduled_on: date
    status: ReviewStatus
    owner: str | None
    attendees: list[ReviewAttendee]
    agenda: Agenda
    notes: str | None
    decisions: list[ReviewDecision]
    follow_ups: list[FollowUp]
    held_at: datetime | None
    version: int
    created_at: datetime


class ReviewList(BaseModel):
    items: list[Review]
    total: int
    offset: int
    limit: int


class CreateReview(Command):
    subject: ClassVar[str] = "cmd.relationships.review.create"
    result: ClassVar[type[BaseModel]] = Review

    partner_id: UUID
    kind: ReviewKind
    period: Period
    scheduled_on: Day
    owner: UserId | None = None
    attendees: tuple[UUID, ...] = Field(default=(), max_length=MAX_ATTENDEES)
    agenda: Agenda


class GetReview(Command):
    subject: ClassVar[str] = "cmd.relationships.review.get"
    result: ClassVar[type[BaseModel]] = Review

    review_id: UUID


class ListReviews(Command):
    """Reviews, the latest scheduled first."""

    subject: ClassVar[str] = "cmd.relationships.review.list"
    result: ClassVar[type[BaseModel]] = ReviewList

    partner_id: UUID | None = None
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=500)


class UpdateReview(PartialCommand):
    """Change a review; only the fields sent change. `held: true` logs the meeting with its attendees
    (a touch on each contact's strength, once)."""

    subject: ClassVar[str] = "cmd.relationships.review.update"
    result: ClassVar[type[BaseModel]] = Review

    review_id: UUID
    expected_version: int | None = Field(default=None, ge=1, le=2_147_483_647)
    scheduled_on: Day | None = None
    notes: text(20_000) | None = None
    attendees: tuple[UUID, ...] | None = Field(default=None, max_length=MAX_ATTENDEES)
    agenda: Agenda | None = None
    held: bool | None = None


class AddReviewDecision(Command):
    subject: ClassVar[str] = "cmd.relationships.review.decision"
    result: ClassVar[type[BaseModel]] = Review

    review_id: UUID
    text: text(2000, 1)


class AddFollowUp(Command):
    """A follow-up task: a task of the team's week (owner, due date), linked to the partner."""

    subject: ClassVar[str] = "cmd.relationships.review.follow_up"
    result: ClassVar[type[BaseModel]] = Review

    review_id: UUID
    title: line(300, 1)
    owner: UserId
    due_date: Day


COMMANDS: tuple[type[Command], ...] = (CreateReview, GetReview, ListReviews, UpdateReview, AddReviewDecision,
                                       AddFollowUp)
