"""Events and commands of funding programs and fund requests (the relationships service).

A fund request follows AWS Partner Central's own stages (its "Funding" workflow): Created (draft) →
submitted → AWS Review → Tech Approval → Business Approval → Finance Approval → Pre-Approval → Cash
Claim → Completed; or Rejected (resumed as a draft), Terminated, Expired. Which review stages a
request passes depends on its program (AWS documents AWS Review and Tech Approval only for some
motions), so a program lists the review stages it uses. Money is exact (`Decimal`, a JSON string) with
its currency; the request's currency is its program's.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.base import Command, Event, PartialCommand, StreamSpec
from contracts.deadlines import Deadline, TimeZone
from contracts.fields import Currency, Day, Name, Offset, Person, line, text
from contracts.money import Amount
from contracts.pipeline import Hyperscaler, Key
from contracts.relationships import STREAM

# An AWS id as AWS writes it (fund requests "FR-...", opportunities "O1234567"); one line, no spaces.
ExternalRef = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")]


class FundStage(StrEnum):
    draft = "draft"
    submitted = "submitted"
    aws_review = "aws_review"
    technical_approval = "technical_approval"
    business_approval = "business_approval"
    finance_approval = "finance_approval"
    pre_approved = "pre_approved"
    cash_claim = "cash_claim"
    completed = "completed"
    rejected = "rejected"
    terminated = "terminated"
    expired = "expired"


# As AWS Partner Central names its stages (what a person sees there).
STAGE_LABELS: dict[FundStage, str] = {
    FundStage.draft: "Created (draft)", FundStage.submitted: "Submitted", FundStage.aws_review: "AWS Review",
    FundStage.technical_approval: "Tech Approval", FundStage.business_approval: "Business Approval",
    FundStage.finance_approval: "Finance Approval", FundStage.pre_approved: "Pre-Approval",
    FundStage.cash_claim: "Cash Claim", FundStage.completed: "Completed", FundStage.rejected: "Rejected",
    FundStage.terminated: "Terminated", FundStage.expired: "Expired",
}
# Requests that count in funding figures (roll-ups, the dashboard): sent to the hyperscaler and not
# withdrawn or refused. Expired ones count: they were approved, and the money lost is the point.
COUNTED_STAGES: frozenset[FundStage] = frozenset({
    FundStage.submitted, FundStage.aws_review, FundStage.technical_approval, FundStage.business_approval,
    FundStage.finance_approval, FundStage.pre_approved, FundStage.cash_claim, FundStage.completed, FundStage.expired})
COUNTED_SCOPE = "fund requests sent to the hyperscaler (not drafts, rejected or terminated)"
# The optional review stages a program may use, in order.
REVIEW_STAGES: tuple[FundStage, ...] = (FundStage.aws_review, FundStage.technical_approval)


class ClaimStatus(StrEnum):
    """A milestone's cash claim."""

    planned = "planned"
    submitted = "submitted"
    approved = "approved"
    paid = "paid"
    rejected = "rejected"


# ---------------------------------------------------------------------------------------- programs


class Program(BaseModel):
    """A funding program (AWS MAP, POA, MDF, POC, BOX; GCP's equivalents) and its deadline rules."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: Key
    name: Name
    hyperscaler: Hyperscaler
    currency: Currency = "USD"
    typical_cap: Amount | None = Field(default=None, description="What one request usually gets at most.")
    phases: tuple[line(60, 1), ...] = Field(default=(), max_length=10, description="e.g. MAP: assess, mobilize, "
                                            "migrate; a request names one.")
    review_stages: tuple[FundStage, ...] = Field(default=(), max_length=2, description="Which of aws_review and "
                                                 "technical_approval requests of this program pass through.")
    expires_days_after_end: int | None = Field(default=30, ge=1, le=3650, description="A pre-approved request "
                                               "without a claim expires this many days after its activity ends.")
    claim_due_months_after_end: int | None = Field(default=None, ge=1, le=120, description="The cash claim falls "
                                                   "due this many months after the activity (project) ends.")
    milestone_claim_days: int | None = Field(default=30, ge=1, le=3650, description="A milestone's claim falls "
                                             "due this many days after it ends, unless it names its own date.")
    time_zone: TimeZone = Field(default="UTC", description="The zone whose calendar the deadlines count in.")
    description: text(2000) | None = None
    active: bool = True
    version: int = 0

    @model_validator(mode="after")
    def _review_stages(self) -> Program:
        if any(s not in REVIEW_STAGES for s in self.review_stages):
            raise ValueError("review_stages may hold only aws_review and technical_approval")
        if len(set(self.review_stages)) != len(self.review_stages):
            raise ValueError("review_stages must not repeat a stage")
        return self


class ProgramList(BaseModel):
    items: list[Program]


class ListPrograms(Command):
    """Every funding program (the built-in ones as configured, and those added)."""

    subject: ClassVar[str] = "cmd.relationships.funding.program.list"
    result: ClassVar[type[BaseModel]] = ProgramList

    include_inactive: bool = True


class DefineProgram(Command):
    """Add a funding program or change one (requests already made keep their stages and amounts)."""

    subject: ClassVar[str] = "cmd.relationships.funding.program.define"
    result: ClassVar[type[BaseModel]] = Program

    program: Program


# ----------------------------------------------------------------------------------- fund requests


class OpportunityLink(BaseModel):
    """A co-sell opportunity the request funds: ours by id, AWS's by its ACE id, or both."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    opportunity_id: UUID | None = None
    ace_id: ExternalRef | None = None

    @model_validator(mode="after")
    def _one(self) -> OpportunityLink:
        if self.opportunity_id is None and self.ace_id is None:
            raise ValueError("a link names an opportunity id or an ACE id")
        return self


class StageMove(BaseModel):
    from_stage: FundStage | None
    to_stage: FundStage
    moved_by: str | None
    moved_at: datetime
    note: str | None = None


class Milestone(BaseModel):
    id: UUID
    name: str
    end_date: date
    amount: Decimal = Field(description="What this milestone's claim asks for.")
    claim_due_date: date
    claim_status: ClaimStatus
    received: Decimal = Field(description="What AWS paid on this claim.")
    claim_reference: str | None = None
    next_claim_statuses: list[ClaimStatus] = Field(default_factory=list, description="What the claim may become "
                                                   "now (nothing before the request is pre-approved).")
    updated_at: datetime


class FundRequest(BaseModel):
    """A fund request's current state, with its history, milestones and the deadlines it has."""

    id: UUID
    version: int
    program: str
    program_name: str
    hyperscaler: Hyperscaler
    title: str
    phase: str | None
    stage: FundStage
    stage_label: str
    next_stages: list[FundStage] = Field(description="Where it may move from here (by hand).")
    partner_id: UUID | None = Field(description="The ISV partner the activity is for, if any.")
    owner: str | None
    aws_fund_request_id: str | None
    currency: str
    requested: Decimal
    approved: Decimal | None
    claimed: Decimal = Field(description="Claims submitted, approved or paid.")
    received: Decimal
    activity_start: date
    activity_end: date
    opportunities: list[OpportunityLink]
    description: str | None
    milestones: list[Milestone]
    history: list[StageMove]
    deadlines: list[Deadline] = Field(description="Open deadlines first, soonest first.")
    created_at: datetime
    updated_at: datetime
    stage_entered_at: datetime


class _FundRequestEvent(Event):
    stream: ClassVar[StreamSpec] = STREAM
    schema_version: Literal[1] = 1
    fund_request: FundRequest

    def aggregate_key(self) -> str:
        return f"fund_request:{self.fund_request.id}"


class FundRequestCreatedV1(_FundRequestEvent):
    """Sent when a fund request is created (as a draft)."""

    subject: ClassVar[str] = "relationships.fund_request.created.v1"


class FundRequestUpdatedV1(_FundRequestEvent):
    """Sent when a fund request's fields or milestones change without a stage move."""

    subject: ClassVar[str] = "relationships.fund_request.updated.v1"
    changed: tuple[str, ...] = ()


class FundRequestStageChangedV1(_FundRequestEvent):
    """Sent when a fund request moves from one stage to another (the move is the last of its history)."""

    subject: ClassVar[str] = "relationships.fund_request.stage_changed.v1"
    from_stage: FundStage
    to_stage: FundStage


Links = Annotated[list[OpportunityLink], Field(max_length=50)]


class CreateFundRequest(Command):
    """Create a fund request as a draft (AWS's "Created" stage)."""

    subject: ClassVar[str] = "cmd.relationships.funding.request.create"
    result: ClassVar[type[BaseModel]] = FundRequest

    program: Key
    title: Name
    phase: line(60) | None = None
    partner_id: UUID | None = None
    owner: Person | None = None
    aws_fund_request_id: ExternalRef | None = None
    requested: Amount
    activity_start: Day
    activity_end: Day
    opportunities: Links = Field(default_factory=list)
    description: text(4000) | None = None


class UpdateFundRequest(PartialCommand):
    """Change a fund request; only the fields sent change. Amount and dates only while it is a draft or
    rejected (AWS locks them once submitted); the title, owner, links and AWS id at any time."""

    subject: ClassVar[str] = "cmd.relationships.funding.request.update"
    result: ClassVar[type[BaseModel]] = FundRequest

    request_id: UUID
    expected_version: int | None = Field(default=None, ge=0)
    title: Name | None = None
    phase: line(60) | None = None
    partner_id: UUID | None = None
    owner: Person | None = None
    aws_fund_request_id: ExternalRef | None = None
    requested: Amount | None = None
    activity_start: Day | None = None
    activity_end: Day | None = None
    opportunities: Links | None = None
    description: text(4000) | None = None


class MoveFundRequest(Command):
    """Move a fund request to another stage; refused (invalid, naming the transition) when AWS's
    workflow does not allow it. Entering pre-approval records the approved amount."""

    subject: ClassVar[str] = "cmd.relationships.funding.request.move"
    result: ClassVar[type[BaseModel]] = FundRequest

    request_id: UUID
    to_stage: FundStage
    expected_version: int | None = Field(default=None, ge=0)
    approved: Amount | None = Field(default=None, description="The approved amount (entering pre_approved); "
                                    "the requested amount when not given.")
    note: text(1000) | None = None


class AddMilestone(Command):
    """Add a milestone with its claim amount; its claim falls due on the date given or by the program's rule."""

    subject: ClassVar[str] = "cmd.relationships.funding.milestone.add"
    result: ClassVar[type[BaseModel]] = FundRequest

    request_id: UUID
    name: Name
    end_date: Day
    amount: Amount
    claim_due_date: Day | None = None


class UpdateMilestoneClaim(Command):
    """Move a milestone's claim: planned → submitted → approved → paid, or rejected (then submitted again).
    Submitting the first claim of a pre-approved request moves the request to Cash Claim."""

    subject: ClassVar[str] = "cmd.relationships.funding.milestone.claim"
    result: ClassVar[type[BaseModel]] = FundRequest

    request_id: UUID
    milestone_id: UUID
    claim_status: ClaimStatus
    received: Amount | None = Field(default=None, description="What was paid (when paid); the claim's amount "
                                    "when not given.")
    claim_reference: line(100) | None = None


class GetFundRequest(Command):
    """One fund request with its history, milestones and deadlines."""

    subject: ClassVar[str] = "cmd.relationships.funding.request.get"
    result: ClassVar[type[BaseModel]] = FundRequest

    request_id: UUID


class FundRequestSort(StrEnum):
    created_desc = "-created_at"
    created = "created_at"
    next_deadline = "next_deadline"
    requested_desc = "-requested"
    activity_end = "activity_end"


class FundRequestList(BaseModel):
    items: list[FundRequest]
    total: int
    offset: int
    limit: int


class ListFundRequests(Command):
    """Fund requests, filtered by stage, program, partner, owner, text, or a deadline within N days."""

    subject: ClassVar[str] = "cmd.relationships.funding.request.list"
    result: ClassVar[type[BaseModel]] = FundRequestList

    stage: FundStage | None = None
    program: Key | None = None
    partner_id: UUID | None = None
    owner: Person | None = None
    q: line(200) | None = None
    due_within_days: int | None = Field(default=None, ge=0, le=3650)
    include_closed: bool = True
    sort: FundRequestSort = FundRequestSort.created_desc
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=500)


# ------------------------------------------------------------------------------------------ roll-ups


class RollupRow(BaseModel):
    """Funding of one group in one currency. Nothing is converted: each currency is its own row."""

    group: str = Field(description="The program key, the partner id, or the quarter (2026-Q4).")
    label: str
    currency: str
    requests: int
    requested: Decimal
    approved: Decimal
    claimed: Decimal
    received: Decimal


class RoiRow(BaseModel):
    """Funding received for a partner against the won revenue of the opportunities its requests link."""

    partner_id: UUID
    currency: str
    received: Decimal
    won_revenue: Decimal = Field(description="Won deals linked to the partner's requests, in this currency.")
    won_deals: int
    roi: Decimal | None = Field(description="won revenue per unit of funding received; none without funding.")


class FundingRollup(BaseModel):
    scope: str = Field(description="What the figures count: which requests, which quarter kind.")
    by_program: list[RollupRow]
    by_partner: list[RollupRow]
    by_quarter: list[RollupRow]
    roi: list[RoiRow]


class GetFundingRollup(Command):
    """Funding requested / approved / claimed / received per program, partner and calendar quarter of
    creation (drafts, rejected, terminated and expired requests excluded), and ROI per partner."""

    subject: ClassVar[str] = "cmd.relationships.funding.rollup"
    result: ClassVar[type[BaseModel]] = FundingRollup

    year: int | None = Field(default=None, ge=1900, le=2200, description="Only requests created in this "
                             "calendar year.")


EVENTS: tuple[type[Event], ...] = (FundRequestCreatedV1, FundRequestUpdatedV1, FundRequestStageChangedV1)
COMMANDS: tuple[type[Command], ...] = (
    ListPrograms, DefineProgram, CreateFundRequest, UpdateFundRequest, MoveFundRequest, AddMilestone,
    UpdateMilestoneClaim, GetFundRequest, ListFundRequests, GetFundingRollup,
)
