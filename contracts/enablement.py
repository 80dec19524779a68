"""Partner enablement (the relationships service): training modules with a duration and an assessment
with a pass mark, each partner person's certifications (a contact's result on a module: pass or fail,
when taken, when it expires), and each partner's enablement score.

A certification due (a date set to pass by) or expiring is a deadline (contracts/deadlines.py, kinds
`certification_due` and `certification_expiry`), so it stands on its owner's attention list as
onboarding steps do.

The enablement score of a partner is the share of the required modules that at least one of its
people holds a valid certification for (passed, not expired), 0-100; none while no module is
required. It is published whenever it changes (`EnablementScoreChangedV1`); the pipeline feeds it into
the scorecard's feasibility criterion when its setting `feasibility_from_enablement` is on.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from contracts.base import Command, Event, PartialCommand, StreamSpec
from contracts.fields import Day, Moment, Name, Offset, text
from contracts.relationships import STREAM

Minutes = Annotated[int, Field(ge=1, le=10_000, description="How long the module takes, in minutes.")]
Percent = Annotated[int, Field(ge=0, le=100)]
ValidMonths = Annotated[int, Field(ge=1, le=120, description="Months a pass stays valid; none: it never expires.")]
Score = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class CertificationStatus(StrEnum):
    due = "due"  # not taken yet (perhaps with a date to pass by)
    passed = "passed"  # passed and not expired
    failed = "failed"  # the last attempt scored under the pass mark
    expired = "expired"  # passed once, the pass has lapsed


class Module(BaseModel):
    id: UUID
    name: str
    description: str | None
    duration_minutes: int
    pass_mark: int = Field(description="The assessment's pass mark, percent.")
    valid_months: int | None = Field(description="Months a pass stays valid; none: it never expires.")
    required: bool = Field(description="Counts toward every partner's enablement score.")
    archived: bool
    version: int


class ModuleList(BaseModel):
    items: list[Module]


class Certification(BaseModel):
    id: UUID
    contact_id: UUID
    contact_name: str
    partner_id: UUID
    module_id: UUID
    module_name: str
    status: CertificationStatus
    due_on: date | None = Field(description="The date to pass by, if one was set.")
    taken_on: date | None = Field(description="The last attempt.")
    score: int | None = Field(description="The last attempt's result, percent.")
    passed_on: date | None = Field(description="The last pass.")
    expires_on: date | None = Field(description="When the last pass lapses; none: it never does.")
    owner: str | None = Field(description="Who on our team sees to it (the contact's owner, else the partner's).")
    version: int


class CertificationList(BaseModel):
    items: list[Certification]
    total: int
    offset: int
    limit: int


class PartnerEnablement(BaseModel):
    partner_id: UUID
    partner_name: str
    score: Decimal | None = Field(description="0-100; none while no module is required.")
    required_modules: int
    covered_modules: int = Field(description="Required modules at least one person holds a valid certification for.")
    valid_certifications: int
    due: int = Field(description="Certifications not passed yet.")
    expiring: int = Field(description="Valid certifications that lapse within 60 days.")
    certifications: list[Certification]


class EnablementScores(BaseModel):
    items: list[PartnerEnablement] = Field(description="Every partner with a score or a certification; "
                                                       "certifications left out.")


class EnablementScoreChangedV1(Event):
    """Sent when a partner's enablement score (or what it counts) changes: a certification recorded or
    lapsed, a module made required or not. `version` grows by one per partner, so a consumer keeps the
    highest and ignores a late older one."""

    subject: ClassVar[str] = "relationships.enablement.score_changed.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    partner_id: UUID
    score: Score | None = Field(description="0-100; none while no module is required.")
    required_modules: int = Field(ge=0, le=10_000)
    covered_modules: int = Field(ge=0, le=10_000)
    valid_certifications: int = Field(ge=0, le=10_000_000)
    as_of: Moment
    version: int = Field(ge=1, le=2_147_483_647)

    def aggregate_key(self) -> str:
        return f"enablement:{self.partner_id}"


EVENTS: tuple[type[Event], ...] = (EnablementScoreChangedV1,)


class ListModules(Command):
    subject: ClassVar[str] = "cmd.relationships.enablement.module.list"
    result: ClassVar[type[BaseModel]] = ModuleList

    include_archived: bool = False


class CreateModule(Command):
    subject: ClassVar[str] = "cmd.relationships.enablement.module.create"
    result: ClassVar[type[BaseModel]] = Module

    name: Name
    description: text(2000) | None = None
    duration_minutes: Minutes
    pass_mark: Percent = 70
    valid_months: ValidMonths | None = 12
    required: bool = False


class UpdateModule(PartialCommand):
    """Change a module; only the fields sent change. A new pass mark or validity applies to attempts
    recorded from then on; `required` and `archived` change every partner's score at once."""

    subject: ClassVar[str] = "cmd.relationships.enablement.module.update"
    result: ClassVar[type[BaseModel]] = Module

    module_id: UUID
    expected_version: int | None = Field(default=None, ge=1, le=2_147_483_647)
    name: Name | None = None
    description: text(2000) | None = None
    duration_minutes: Minutes | None = None
    pass_mark: Percent | None = None
    valid_months: ValidMonths | None = None
    required: bool | None = None
    archived: bool | None = None


class RecordCertification(PartialCommand):
    """A person's certification on a module: a date to pass by, or an attempt (the day and the score;
    passed when the score reaches the module's pass mark). Only the fields sent change."""

    subject: ClassVar[str] = "cmd.relationships.enablement.certification.record"
    result: ClassVar[type[BaseModel]] = Certification

    contact_id: UUID
    module_id: UUID
    due_on: Day | None = None
    taken_on: Day | None = None
    score: Percent | None = None

    @model_validator(mode="after")
    def _attempt_whole(self) -> RecordCertification:
        if (self.taken_on is None) != (self.score is None):
            raise ValueError("an attempt needs both taken_on and score")
        if self.taken_on is None and self.due_on is None:
            raise ValueError("send a due_on, or an attempt (taken_on and score)")
        return self


class ListCertifications(Command):
    """Certifications, those needing attention first (failed, expired, due, then soonest to lapse)."""

    subject: ClassVar[str] = "cmd.relationships.enablement.certification.list"
    result: ClassVar[type[BaseModel]] = CertificationList

    partner_id: UUID | None = None
    contact_id: UUID | None = None
    status: CertificationStatus | None = None
    expiring_within_days: int | None = Field(default=None, ge=0, le=3650,
                                             description="Only valid ones that lapse within this many days.")
    offset: Offset = 0
    limit: int = Field(default=100, ge=1, le=1000)


class GetPartnerEnablement(Command):
    subject: ClassVar[str] = "cmd.relationships.enablement.partner.get"
    result: ClassVar[type[BaseModel]] = PartnerEnablement

    partner_id: UUID


class ListEnablementScores(Command):
    subject: ClassVar[str] = "cmd.relationships.enablement.scores"
    result: ClassVar[type[BaseModel]] = EnablementScores


class RefreshEnablement(Command):
    """Recompute every partner's score as of now (the hourly tick does this: passes lapse with time)."""

    subject: ClassVar[str] = "cmd.relationships.enablement.refresh"
    result: ClassVar[type[BaseModel]] = EnablementScores

    as_of: Moment | None = None


COMMANDS: tuple[type[Command], ...] = (ListModules, CreateModule, UpdateModule, RecordCertification,
                                       ListCertifications, GetPartnerEnablement, ListEnablementScores,
                                       RefreshEnablement)
