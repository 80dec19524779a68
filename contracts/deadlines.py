"""Deadlines that cost something when missed (a fund request that expires, a claim that falls due, a
competency that lapses), published by the relationships service as state-carrying events.

One event kind for every deadline, so a notification rule about deadlines is one entry: it keeps
the latest state of each deadline by `key` (newest `version` wins; events may arrive twice or out of
order) and reminds while `status` is open and `due_at` approaches. The due date is a calendar date in
the deadline's own time zone; `due_at` is the instant that day ends there (UTC).

The date arithmetic lives here, once, because the service computes deadlines with it and the
gateway counts the days left with it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, Field

from contracts.base import Event, StreamSpec
from contracts.relationships import STREAM


class DeadlineKind(StrEnum):
    fund_request_expiry = "fund_request_expiry"  # no claim N days after the activity ends: the money is gone
    fund_claim_due = "fund_claim_due"  # MAP: the cash claim falls due about a month after project end
    milestone_claim_due = "milestone_claim_due"  # one milestone's claim
    competency_renewal = "competency_renewal"  # the competency lapses
    competency_requirement_due = "competency_requirement_due"  # one item of a renewal checklist
    onboarding_step_due = "onboarding_step_due"  # a step of a new partner's onboarding plan (contracts/onboarding.py)
    certification_due = "certification_due"  # a partner person's certification to pass by (contracts/enablement.py)
    certification_expiry = "certification_expiry"  # a partner person's certification lapses


class DeadlineStatus(StrEnum):
    open = "open"  # still to be met
    met = "met"  # what it asked for was done (claim submitted, competency renewed)
    cancelled = "cancelled"  # no longer applies (request rejected, terminated or expired; item removed)


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. America/Los_Angeles)") from exc
    return name


TimeZone = Annotated[str, Field(min_length=1, max_length=64, examples=["America/Los_Angeles"]), AfterValidator(_zone)]


# -------------------------------------------------------------------------------- date arithmetic


def add_days(day: date, days: int) -> date:
    return day + timedelta(days=days)


def end_of_day(day: date, zone: str) -> datetime:
    """The instant (UTC) the day ends in the zone: midnight after it, local time (DST-correct)."""
    return datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(zone)).astimezone(UTC)


def today_in(zone: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(zone)).date()


def days_left(due_date: date, zone: str, now: datetime) -> int:
    """Whole days from today (in the deadline's zone) to the due date: 0 = due today, -3 = three days late."""
    return (due_date - today_in(zone, now)).days


def all_zones() -> list[str]:
    return sorted(available_timezones())


# ------------------------------------------------------------------------------------------ event


class Regarding(StrEnum):
    fund_request = "fund_request"
    competency = "competency"
    onboarding_plan = "onboarding_plan"
    certification = "certification"


class Deadline(BaseModel):
    key: str = Field(description="Stable: '<regarding>:<id>:<kind>' or with the milestone / item id.")
    kind: DeadlineKind
    status: DeadlineStatus
    title: str = Field(description="What is due, for a person: 'MAP claim for Acme migration'.")
    due_date: date
    time_zone: str
    due_at: datetime = Field(description="When the due date ends in its time zone (UTC).")
    regarding: Regarding
    regarding_id: UUID
    link: str = Field(description="The page to look at, a path on the gateway: /funding/<id>.")
    owner: str | None = None
    amount_at_stake: Decimal | None = Field(default=None, description="What missing it costs, if known.")
    currency: str | None = None
    version: int = Field(description="Grows by one at every change of this deadline.")


class DeadlineChangedV1(Event):
    """Sent when a deadline is set, moved, met or cancelled (the whole current state of it)."""

    subject: ClassVar[str] = "relationships.deadline.changed.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    deadline: Deadline

    def aggregate_key(self) -> str:
        return f"deadline:{self.deadline.key}"


EVENTS: tuple[type[Event], ...] = (DeadlineChangedV1,)
