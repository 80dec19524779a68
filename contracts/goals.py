"""Hyperscaler goal commitments (the relationships service): per hyperscaler and calendar period, a target
for launched opportunities, sourced co-sell pipeline, certifications, marketplace revenue or a metric
of one's own. Launches and sourced pipeline are counted from the pipeline's events; the others are
entered by hand. The pace forecast is here, once, for the service and the pages alike.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from contracts.base import Command, Event, PartialCommand, StreamSpec
from contracts.fields import Currency, Name, Person, year_in_range
from contracts.money import Amount, PositiveAmount
from contracts.pipeline import Hyperscaler
from contracts.quarters import Quarter
from contracts.relationships import STREAM


class GoalMetric(StrEnum):
    launched_opportunities = "launched_opportunities"  # count, from Launched deals of the hyperscaler
    sourced_pipeline = "sourced_pipeline"  # money, from co-sell deals with the hyperscaler created in the period
    certifications = "certifications"  # count, by hand
    marketplace_revenue = "marketplace_revenue"  # money, by hand
    custom = "custom"  # a number of one's own, by hand


MONEY_METRICS = frozenset({GoalMetric.sourced_pipeline, GoalMetric.marketplace_revenue})
COUNTED_FROM_EVENTS = frozenset({GoalMetric.launched_opportunities, GoalMetric.sourced_pipeline})
METRIC_LABELS = {
    GoalMetric.launched_opportunities: "Launched opportunities",
    GoalMetric.sourced_pipeline: "Sourced co-sell pipeline",
    GoalMetric.certifications: "Certifications", GoalMetric.marketplace_revenue: "Marketplace revenue",
    GoalMetric.custom: "Custom",
}

_PERIOD = re.compile(r"^\d{4}(-Q[1-4])?$")


def period_range(name: str) -> tuple[date, date]:
    """A calendar year ('2026') or calendar quarter ('2026-Q4'): its first day and the first day after it."""
    if not _PERIOD.match(name):
        raise ValueError(f"{name!r} is not a period; write a year (2026) or a quarter (2026-Q4)")
    if len(name) == 4:
        year = year_in_range(int(name))
        return date(year, 1, 1), date(year + 1, 1, 1)
    return Quarter.parse(name).range()


def _period(name: str) -> str:
    period_range(name)
    return name


Period = Annotated[str, Field(max_length=7, examples=["2026-Q4", "2026"],
                              description="A calendar year (2026) or quarter (2026-Q4)."), AfterValidator(_period)]
Target = PositiveAmount
Progress = Amount


class GoalStatus(StrEnum):
    not_started = "not_started"
    on_track = "on_track"
    at_risk = "at_risk"  # the forecast at the current pace falls short of the target
    met = "met"
    missed = "missed"  # the period ended short of the target


def pace(progress: Decimal, start: date, end: date, today: date) -> Decimal:
    """Where the goal ends at the current pace: progress scaled from the days gone to the whole period
    (today counts as gone). Before the period it is the progress so far; after it, the final figure."""
    total = (end - start).days
    gone = (today - start).days + 1
    if gone <= 0 or gone >= total:
        return progress
    return (progress * total / gone).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def status(progress: Decimal, target: Decimal, start: date, end: date, today: date) -> GoalStatus:
    if progress >= target:
        return GoalStatus.met
    if today >= end:
        return GoalStatus.missed
    if today < start:
        return GoalStatus.not_started
    return GoalStatus.on_track if pace(progress, start, end, today) >= target else GoalStatus.at_risk


class Goal(BaseModel):
    id: UUID
    version: int
    hyperscaler: Hyperscaler
    period: str
    period_label: str = Field(description="What the period is: 'calendar 2026-Q4 (UTC)'.")
    period_start: date
    period_end: date = Field(description="The first day after the period.")
    metric: GoalMetric
    metric_label: str
    name: str
    target: Decimal
    currency: str | None = Field(description="For money metrics: the currency the target and progress are in.")
    source: Literal["events", "manual"]
    progress: Decimal
    forecast: Decimal = Field(description="At the current pace, by the period's end.")
    status: GoalStatus
    not_counted: int = Field(default=0, description="Deals that would count but are in another currency.")
    owner: str | None
    archived: bool
    created_at: datetime
    updated_at: datetime


class Contribution(BaseModel):
    """A deal that counts toward a goal, and the event that made it count."""

    opportunity_id: UUID
    name: str
    amount: Decimal
    currency: str
    at: datetime = Field(description="When it launched (launch goals) or was created (sourced pipeline).")
    counted: bool
    why: str


class GoalDetail(Goal):
    contributions: list[Contribution]


class GoalList(BaseModel):
    items: list[Goal]
    today: date


class GoalChangedV1(Event):
    """Sent when a goal commitment is set, changed or archived (its progress follows the pipeline's events)."""

    subject: ClassVar[str] = "relationships.goal.changed.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    goal: Goal

    def aggregate_key(self) -> str:
        return f"goal:{self.goal.id}"


class CreateGoal(Command):
    """Commit to a goal with a hyperscaler for a calendar period."""

    subject: ClassVar[str] = "cmd.relationships.goal.create"
    result: ClassVar[type[BaseModel]] = Goal

    hyperscaler: Hyperscaler
    period: Period
    metric: GoalMetric
    name: Name | None = Field(default=None, description="Defaults to the metric's name.")
    target: Target
    currency: Currency | None = Field(default=None, description="Money metrics: USD unless given.")
    manual_progress: Progress | None = Field(default=None, description="Metrics entered by hand: progress so far.")
    owner: Person | None = None


class UpdateGoal(PartialCommand):
    """Change a goal's target, name, owner, progress entered by hand, or archive it."""

    subject: ClassVar[str] = "cmd.relationships.goal.update"
    result: ClassVar[type[BaseModel]] = Goal

    goal_id: UUID
    expected_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    name: Name | None = None
    target: Target | None = None
    manual_progress: Progress | None = None
    owner: Person | None = None
    archived: bool | None = None


class GetGoal(Command):
    """One goal with the deals that count toward it."""

    subject: ClassVar[str] = "cmd.relationships.goal.get"
    result: ClassVar[type[BaseModel]] = GoalDetail

    goal_id: UUID


class ListGoals(Command):
    """Goals with their progress, by hyperscaler and period."""

    subject: ClassVar[str] = "cmd.relationships.goal.list"
    result: ClassVar[type[BaseModel]] = GoalList

    hyperscaler: Hyperscaler | None = None
    period: Period | None = None
    include_archived: bool = False


EVENTS: tuple[type[Event], ...] = (GoalChangedV1,)
