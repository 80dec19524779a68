"""Competencies (the relationships service): AWS competencies, service delivery and service ready
(validation) programs, Google Cloud specializations — each with a renewal date and a checklist of what
renewing needs (certified individuals, customer references, case studies, audits), every item with an
owner and a due date. The renewal and each open item are deadlines (contracts/deadlines.py)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.base import Command, Event, PartialCommand, StreamSpec
from contracts.deadlines import Deadline, TimeZone
from contracts.fields import Day, Name, Person, text
from contracts.pipeline import Hyperscaler
from contracts.relationships import STREAM


class CompetencyKind(StrEnum):
    competency = "competency"  # AWS Competency
    service_delivery = "service_delivery"  # AWS Service Delivery
    service_ready = "service_ready"  # AWS Service Ready (software validation)
    specialization = "specialization"  # Google Cloud specialization
    other = "other"


class RequirementKind(StrEnum):
    certified_individuals = "certified_individuals"
    customer_reference = "customer_reference"
    case_study = "case_study"
    audit = "audit"
    other = "other"


class CompetencyStatus(StrEnum):
    pursuing = "pursuing"  # not achieved yet
    active = "active"
    renewal_due = "renewal_due"  # renewal within 90 days
    lapsed = "lapsed"  # renewal date passed


RENEWAL_WARNING_DAYS = 90


def competency_status(achieved_on: date | None, renewal_date: date | None, today: date) -> CompetencyStatus:
    if achieved_on is None:
        return CompetencyStatus.pursuing
    if renewal_date is not None and renewal_date < today:
        return CompetencyStatus.lapsed
    if renewal_date is not None and (renewal_date - today).days <= RENEWAL_WARNING_DAYS:
        return CompetencyStatus.renewal_due
    return CompetencyStatus.active


class Requirement(BaseModel):
    id: UUID
    kind: RequirementKind
    title: str
    required: int = Field(description="How many are needed (e.g. 4 certified individuals).")
    done: int
    complete: bool
    owner: str | None
    due_date: date | None


class Competency(BaseModel):
    id: UUID
    version: int
    hyperscaler: Hyperscaler
    name: str
    kind: CompetencyKind
    status: CompetencyStatus
    achieved_on: date | None
    renewal_date: date | None
    time_zone: str
    owner: str | None
    notes: str | None
    requirements: list[Requirement]
    complete_items: int
    total_items: int
    deadlines: list[Deadline]
    created_at: datetime
    updated_at: datetime


class CompetencyList(BaseModel):
    items: list[Competency]


class CompetencyChangedV1(Event):
    """Sent when a competency, its renewal date or its checklist changes (the whole current state)."""

    subject: ClassVar[str] = "relationships.competency.changed.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    competency: Competency

    def aggregate_key(self) -> str:
        return f"competency:{self.competency.id}"



class CreateCompetency(Command):
    """Track a competency (achieved or being pursued) with its renewal date."""

    subject: ClassVar[str] = "cmd.relationships.competency.create"
    result: ClassVar[type[BaseModel]] = Competency

    hyperscaler: Hyperscaler
    name: Name
    kind: CompetencyKind = CompetencyKind.competency
    achieved_on: Day | None = None
    renewal_date: Day | None = None
    time_zone: TimeZone = "UTC"
    owner: Person | None = None
    notes: text(4000) | None = None


class UpdateCompetency(PartialCommand):
    """Change a competency; only the fields sent change. A later renewal date is a renewal."""

    subject: ClassVar[str] = "cmd.relationships.competency.update"
    result: ClassVar[type[BaseModel]] = Competency

    competency_id: UUID
    expected_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    name: Name | None = None
    kind: CompetencyKind | None = None
    achieved_on: Day | None = None
    renewal_date: Day | None = None
    time_zone: TimeZone | None = None
    owner: Person | None = None
    notes: text(4000) | None = None


class AddRequirement(Command):
    """Add an item to a competency's renewal checklist."""

    subject: ClassVar[str] = "cmd.relationships.competency.requirement.add"
    result: ClassVar[type[BaseModel]] = Competency

    competency_id: UUID
    kind: RequirementKind
    title: Name
    required: int = Field(default=1, ge=1, le=10_000)
    done: int = Field(default=0, ge=0, le=10_000)
    owner: Person | None = None
    due_date: Day | None = None


class UpdateRequirement(PartialCommand):
    """Change a checklist item (how many are done, its owner, its due date) or remove it."""

    subject: ClassVar[str] = "cmd.relationships.competency.requirement.update"
    result: ClassVar[type[BaseModel]] = Competency

    competency_id: UUID
    requirement_id: UUID
    title: Name | None = None
    required: int | None = Field(default=None, ge=1, le=10_000)
    done: int | None = Field(default=None, ge=0, le=10_000)
    owner: Person | None = None
    due_date: Day | None = None
    removed: bool | None = None


class GetCompetency(Command):
    """One competency with its checklist and deadlines."""

    subject: ClassVar[str] = "cmd.relationships.competency.get"
    result: ClassVar[type[BaseModel]] = Competency

    competency_id: UUID


class ListCompetencies(Command):
    """Competencies, soonest renewal first."""

    subject: ClassVar[str] = "cmd.relationships.competency.list"
    result: ClassVar[type[BaseModel]] = CompetencyList

    hyperscaler: Hyperscaler | None = None


EVENTS: tuple[type[Event], ...] = (CompetencyChangedV1,)
