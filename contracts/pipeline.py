"""Events and commands of the pipeline service: partners, opportunities, stage sets and settings.

Money is `Decimal` with its currency beside it and travels as a JSON string ("1250.00"). Times are
UTC-aware. Partner and opportunity events carry the whole current state with a `version` that grows
by one on every change, so a consumer can apply them in any order by keeping the highest version.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.base import Command, Event, StreamSpec
from contracts.fields import Currency, Day, Moment, Name, Offset, Person, Version, line, text
from contracts.money import Amount
from contracts.quarters import QuarterName

STREAM = StreamSpec(
    name="PIPELINE",
    subjects=("pipeline.>",),
    description="Facts about partners, opportunities, stage sets and pipeline settings, from the pipeline service.",
)

# ------------------------------------------------------------------------------------------ values

Percent = Annotated[int, Field(ge=0, le=100)]
# A criterion of the scorecard: 0 (worst) to 10 (best), at most two decimals.
Criterion = Annotated[Decimal, Field(ge=0, le=10, max_digits=4, decimal_places=2)]
Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class PartnerType(StrEnum):
    isv = "isv"
    hyperscaler = "hyperscaler"
    referral = "referral"
    reseller = "reseller"
    msp = "msp"
    cosell = "cosell"


class PartnerTier(StrEnum):
    bronze = "bronze"
    silver = "silver"
    gold = "gold"
    platinum = "platinum"


TIER_ORDER: tuple[PartnerTier, ...] = (PartnerTier.bronze, PartnerTier.silver, PartnerTier.gold,
                                       PartnerTier.platinum)


class PartnerStatus(StrEnum):
    prospect = "prospect"
    onboarding = "onboarding"
    active = "active"
    inactive = "inactive"


class DealModel(StrEnum):
    resale = "resale"
    referral = "referral"
    cosell = "cosell"
    msp = "msp"


class Source(StrEnum):
    """Where an opportunity comes from."""

    manual = "manual"
    aws = "aws"
    gcp = "gcp"
    azure = "azure"
    import_ = "import"


class ExternalSource(StrEnum):
    """The systems sync workers publish from."""

    aws = "aws"
    gcp = "gcp"
    azure = "azure"


class Hyperscaler(StrEnum):
    aws = "aws"
    gcp = "gcp"
    azure = "azure"


class Outcome(StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


class AceReviewStatus(StrEnum):
    """AWS Partner Central's Lifecycle.ReviewStatus, spelled as ACE spells it."""

    pending_submission = "Pending Submission"
    submitted = "Submitted"
    in_review = "In Review"
    action_required = "Action Required"
    approved = "Approved"
    rejected = "Rejected"


class GcpStatus(StrEnum):
    """Google Cloud Partner Advantage's opportunity status."""

    draft = "Draft"
    submitted = "Submitted"
    accepted = "Accepted"
    not_accepted = "Not Accepted"


class ExternalContact(BaseModel):
    """A person at the hyperscaler named on a co-sell opportunity (ACE's AWS opportunity team, the GCP
    account owner). The relationships service makes each a contact linked to the deal."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(max_length=254, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
    name: line(200) | None = None
    role: line(100, description="As the source spells it (ACE's BusinessTitle: PDM, AWSAccountOwner).") | None = None


class AceState(BaseModel):
    """The AWS ACE side of a co-sell opportunity."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    review_status: AceReviewStatus | None = None
    reviewer_comments: text(4000) | None = None
    # "Action Required" is a deadline: the date by which the partner must answer the reviewer.
    action_due_date: Day | None = None
    next_steps: text(255) | None = None
    closed_lost_reason: line(200) | None = None
    team: tuple[ExternalContact, ...] = Field(default=(), max_length=50,
                                              description="AWS people on the opportunity (AwsOpportunityTeam).")


class GcpState(BaseModel):
    """The Google Cloud side of a co-sell opportunity."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: GcpStatus | None = None
    stage: line(100, description="GCP's own stage name, as sent.") | None = None
    team: tuple[ExternalContact, ...] = Field(default=(), max_length=50,
                                              description="Google people on the opportunity (the account owner).")


# -------------------------------------------------------------------------------- stages, settings


class StageDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key
    name: Name
    probability: Percent = Field(description="Default win probability in percent.")
    outcome: Outcome = Outcome.open
    launch: bool = Field(default=False, description="Entering this stage is a launch (a won co-sell).")


class StageSet(BaseModel):
    """The stages of one pipeline, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key
    name: Name
    stages: tuple[StageDef, ...] = Field(min_length=2, max_length=30)
    builtin: bool = False
    version: int = 1

    @model_validator(mode="after")
    def _consistent(self) -> "StageSet":
        keys = [s.key for s in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError("stage keys must be unique")
        if not any(s.outcome == Outcome.open for s in self.stages):
            raise ValueError("a pipeline needs at least one open stage")
        if not any(s.outcome == Outcome.won for s in self.stages):
            raise ValueError("a pipeline needs a won stage")
        if not any(s.outcome == Outcome.lost for s in self.stages):
            raise ValueError("a pipeline needs a lost stage")
        for s in self.stages:
            if s.outcome == Outcome.won and s.probability != 100:
                raise ValueError(f"won stage {s.key!r} must have probability 100")
            if s.outcome == Outcome.lost and s.probability != 0:
                raise ValueError(f"lost stage {s.key!r} must have probability 0")
            if s.launch and s.outcome != Outcome.won:
                raise ValueError(f"launch stage {s.key!r} must be a won stage")
        return self

    def stage(self, key_or_name: str) -> StageDef | None:
        wanted = key_or_name.strip().lower()
        for s in self.stages:
            if s.key == wanted or s.name.lower() == wanted:
                return s
        return None


COSELL = "cosell"
RESALE = "resale"

# The AWS ACE opportunity lifecycle (Lifecycle.Stage), with default win probabilities.
ACE_STAGE_SET = StageSet(key=COSELL, name="Co-sell (AWS ACE lifecycle)", builtin=True, stages=(
    StageDef(key="prospect", name="Prospect", probability=10),
    StageDef(key="qualified", name="Qualified", probability=20),
    StageDef(key="technical_validation", name="Technical Validation", probability=40),
    StageDef(key="business_validation", name="Business Validation", probability=60),
    StageDef(key="committed", name="Committed", probability=80),
    StageDef(key="launched", name="Launched", probability=100, outcome=Outcome.won, launch=True),
    StageDef(key="closed_lost", name="Closed Lost", probability=0, outcome=Outcome.lost),
))
RESALE_STAGE_SET = StageSet(key=RESALE, name="ISV resale", builtin=True, stages=(
    StageDef(key="lead", name="Lead", probability=10),
    StageDef(key="qualified", name="Qualified", probability=25),
    StageDef(key="proposal", name="Proposal", probability=50),
    StageDef(key="negotiation", name="Negotiation", probability=75),
    StageDef(key="won", name="Won", probability=100, outcome=Outcome.won),
    StageDef(key="lost", name="Lost", probability=0, outcome=Outcome.lost),
))
BUILTIN_STAGE_SETS: dict[str, StageSet] = {s.key: s for s in (ACE_STAGE_SET, RESALE_STAGE_SET)}


class TierThresholds(BaseModel):
    """Trailing won revenue (reporting currency) at which a partner reaches each tier; bronze is the floor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Sized for a program of about $1M a year across 20+ ISVs; a setting, so change them to yours.
    silver: Amount = Decimal("20000.00")
    gold: Amount = Decimal("50000.00")
    platinum: Amount = Decimal("100000.00")

    @model_validator(mode="after")
    def _increasing(self) -> "TierThresholds":
        if not Decimal(0) < self.silver < self.gold < self.platinum:
            raise ValueError("tier thresholds must increase: 0 < silver < gold < platinum")
        return self


class ScorecardWeights(BaseModel):
    """The playbook's partner selection weights, in percent; they add up to 100."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategic_fit: Percent = 30
    revenue_potential: Percent = 25
    feasibility: Percent = 25
    risk: Percent = 20

    @model_validator(mode="after")
    def _hundred(self) -> "ScorecardWeights":
        total = self.strategic_fit + self.revenue_potential + self.feasibility + self.risk
        if total != 100:
            raise ValueError(f"weights must add up to 100, not {total}")
        return self


class PipelineSettings(BaseModel):
    """What the department configures about its pipeline: fiscal calendar, target, tiers, scorecard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    reporting_currency: Currency = "USD"
    quarterly_target: Amount = Decimal("250000.00")
    forecast_pipelines: tuple[Key, ...] = Field(default=(RESALE,), min_length=1, max_length=20,
                                                description="Pipelines whose revenue counts toward the target.")
    stuck_after_days: int = Field(default=30, ge=1, le=3650)
    tier_window_days: int = Field(default=365, ge=1, le=3650,
                                  description="Trailing window of won revenue that sets a partner's tier.")
    tier_thresholds: TierThresholds = TierThresholds()
    scorecard_weights: ScorecardWeights = ScorecardWeights()
    # 1 unit of the currency = rate units of the reporting currency. Amounts in currencies without a
    # rate are reported on their own and count toward nothing.
    fx_rates: dict[Currency, Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=8)]] = Field(
        default_factory=dict, max_length=200)
    version: int = 0


class PartialCommand(Command):
    """A command whose unset fields mean "leave as it is": only the fields that were set travel, so
    an explicit null can mean "clear"."""

    def model_dump_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("exclude_unset", True)
        return super().model_dump_json(**kwargs)


# -------------------------------------------------------------------------------------- partners


class Scorecard(BaseModel):
    """The playbook's partner selection scorecard: each criterion 0-10, 10 best (for risk: least risky)."""

    model_config = ConfigDict(extra="forbid")

    strategic_fit: Criterion
    revenue_potential: Criterion
    feasibility: Criterion
    risk: Criterion


class Partner(BaseModel):
    id: UUID
    name: str
    type: PartnerType
    tier: PartnerTier
    tier_auto: bool = Field(default=True, description="Tier follows trailing revenue (false: set by hand).")
    status: PartnerStatus
    owner: str | None
    scorecard: Scorecard | None = None
    score: Decimal | None = Field(default=None, description="Weighted score 0-10 with the current weights.")
    rank: int | None = Field(default=None, description="1 = best score among partners not archived.")
    trailing_revenue: Decimal | None = None
    archived: bool = False
    version: int = 1
    created_at: datetime
    updated_at: datetime | None = None


class PartnerCreatedV1(Event):
    """Sent when a partner organisation is added to the platform."""

    subject: ClassVar[str] = "pipeline.partner.created.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    partner_id: UUID
    name: str
    type: PartnerType
    tier: PartnerTier
    status: PartnerStatus
    owner: str | None = None
    version: int = 1

    def aggregate_key(self) -> str:
        return f"partner:{self.partner_id}"


class _PartnerEvent(Event):
    stream: ClassVar[StreamSpec] = STREAM
    schema_version: Literal[1] = 1
    partner: Partner

    def aggregate_key(self) -> str:
        return f"partner:{self.partner.id}"


class PartnerUpdatedV1(_PartnerEvent):
    """Sent when a partner's name, type, owner, status, scorecard or hand-set tier changes."""

    subject: ClassVar[str] = "pipeline.partner.updated.v1"
    changed: tuple[str, ...] = ()


class PartnerArchivedV1(_PartnerEvent):
    """Sent when a partner is archived (kept with its history, gone from lists and KPIs)."""

    subject: ClassVar[str] = "pipeline.partner.archived.v1"


class PartnerTierChangedV1(_PartnerEvent):
    """Sent when recomputation from trailing won revenue moves a partner to another tier."""

    subject: ClassVar[str] = "pipeline.partner.tier_changed.v1"
    from_tier: PartnerTier
    to_tier: PartnerTier
    trailing_revenue: Decimal
    currency: str


class CreatePartner(Command):
    """Add a partner organisation. Without a tier, the tier follows trailing revenue."""

    subject: ClassVar[str] = "cmd.pipeline.partner.create"
    result: ClassVar[type[BaseModel]] = Partner

    name: Name
    type: PartnerType
    tier: PartnerTier | None = None
    status: PartnerStatus = PartnerStatus.prospect
    owner: Person | None = None
    scorecard: Scorecard | None = None


class UpdatePartner(PartialCommand):
    """Change a partner; only the fields sent change. `tier` pins the tier, `tier_auto` releases it."""

    subject: ClassVar[str] = "cmd.pipeline.partner.update"
    result: ClassVar[type[BaseModel]] = Partner

    partner_id: UUID
    expected_version: Version | None = Field(default=None,
                                             description="Refuse (conflict) if the partner changed since.")
    name: Name | None = None
    type: PartnerType | None = None
    tier: PartnerTier | None = None
    tier_auto: bool | None = None
    status: PartnerStatus | None = None
    owner: Person | None = None
    scorecard: Scorecard | None = None


class ArchivePartner(Command):
    """Archive a partner."""

    subject: ClassVar[str] = "cmd.pipeline.partner.archive"
    result: ClassVar[type[BaseModel]] = Partner

    partner_id: UUID


class GetPartner(Command):
    """Fetch one partner by id."""

    subject: ClassVar[str] = "cmd.pipeline.partner.get"
    result: ClassVar[type[BaseModel]] = Partner

    partner_id: UUID


class PartnerList(BaseModel):
    items: list[Partner]
    total: int
    offset: int
    limit: int


class PartnerSort(StrEnum):
    name = "name"
    name_desc = "-name"
    score = "score"
    score_desc = "-score"
    created = "created_at"
    created_desc = "-created_at"
    tier = "tier"
    tier_desc = "-tier"


class ListPartners(Command):
    """List partners (newest first unless sorted otherwise), filtered by type, tier, status, owner or name."""

    subject: ClassVar[str] = "cmd.pipeline.partner.list"
    result: ClassVar[type[BaseModel]] = PartnerList

    type: PartnerType | None = None
    tier: PartnerTier | None = None
    status: PartnerStatus | None = None
    owner: Person | None = None
    q: line(200, description="Part of the name.") | None = None
    include_archived: bool = False
    sort: PartnerSort = PartnerSort.created_desc
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=500)


class PartnerTierChange(BaseModel):
    partner_id: UUID
    from_tier: PartnerTier
    to_tier: PartnerTier
    trailing_revenue: Decimal


class TierRecomputation(BaseModel):
    partners_checked: int
    changed: list[PartnerTierChange]


class RecomputeTiers(Command):
    """Recompute tiers from trailing won revenue: one partner, or all (run daily, as deals age out)."""

    subject: ClassVar[str] = "cmd.pipeline.partner.recompute_tiers"
    result: ClassVar[type[BaseModel]] = TierRecomputation

    partner_id: UUID | None = None


# --------------------------------------------------------------------------------- opportunities


class Opportunity(BaseModel):
    """An opportunity's current state."""

    id: UUID
    version: int
    name: str
    pipeline: str
    stage: str
    stage_name: str
    probability: int
    outcome: Outcome
    partner_id: UUID | None
    customer: str
    amount: Amount
    currency: Currency
    expected_close_date: date | None
    owner: str | None
    deal_model: DealModel
    source: Source
    external_id: str | None = None
    source_modified_at: datetime | None = None
    hyperscaler: Hyperscaler | None = None
    ace: AceState | None = None
    gcp: GcpState | None = None
    created_at: datetime
    updated_at: datetime
    stage_entered_at: datetime
    closed_at: datetime | None = None
    launched_at: datetime | None = None


class StageChange(BaseModel):
    from_stage: str | None
    to_stage: str
    changed_by: str | None
    changed_at: datetime


class NextStep(BaseModel):
    text: str
    recorded_by: str | None
    recorded_at: datetime


class OpportunityDetail(Opportunity):
    stage_history: list[StageChange]
    next_steps_history: list[NextStep]


class _OpportunityEvent(Event):
    stream: ClassVar[StreamSpec] = STREAM
    schema_version: Literal[1] = 1
    opportunity: Opportunity

    def aggregate_key(self) -> str:
        return f"opportunity:{self.opportunity.id}"


class OpportunityCreatedV1(_OpportunityEvent):
    """Sent when an opportunity is created (by hand, by import or from an external system)."""

    subject: ClassVar[str] = "pipeline.opportunity.created.v1"


class OpportunityUpdatedV1(_OpportunityEvent):
    """Sent when an opportunity's fields change without a stage change."""

    subject: ClassVar[str] = "pipeline.opportunity.updated.v1"
    changed: tuple[str, ...] = ()


class OpportunityStageChangedV1(_OpportunityEvent):
    """Sent when an opportunity moves from one stage to another (possibly with other fields)."""

    subject: ClassVar[str] = "pipeline.opportunity.stage_changed.v1"
    from_stage: str
    to_stage: str
    changed_by: str | None
    changed_at: AwareDatetime


class _OutcomeEvent(Event):
    stream: ClassVar[StreamSpec] = STREAM
    schema_version: Literal[1] = 1
    opportunity_id: UUID
    partner_id: UUID | None
    amount: Amount = Field(description="Exact; a JSON string such as \"12500.00\".")
    currency: Currency
    deal_model: DealModel
    customer: str
    owner: str | None
    pipeline: str
    source: Source

    def aggregate_key(self) -> str:
        return f"opportunity:{self.opportunity_id}"


class OpportunityWonV1(_OutcomeEvent):
    """Sent when an opportunity enters a won stage (commissions book revenue from it)."""

    subject: ClassVar[str] = "pipeline.opportunity.won.v1"
    won_at: AwareDatetime


class OpportunityLostV1(_OutcomeEvent):
    """Sent when an opportunity enters a lost stage."""

    subject: ClassVar[str] = "pipeline.opportunity.lost.v1"
    lost_at: AwareDatetime
    reason: str | None = None


class OpportunityLaunchedV1(_OutcomeEvent):
    """Sent when a co-sell opportunity is launched with a hyperscaler (also sent: OpportunityWonV1)."""

    subject: ClassVar[str] = "pipeline.opportunity.launched.v1"
    hyperscaler: Hyperscaler | None
    launched_at: AwareDatetime


class OpportunityReopenedV1(_OutcomeEvent):
    """Sent when a won or lost opportunity is moved back to an open stage (a won one's revenue is void)."""

    subject: ClassVar[str] = "pipeline.opportunity.reopened.v1"
    previous_outcome: Outcome
    reopened_at: AwareDatetime


class CreateOpportunity(Command):
    """Create an opportunity. Pipeline: from the deal model unless given; stage: the first unless given."""

    subject: ClassVar[str] = "cmd.pipeline.opportunity.create"
    result: ClassVar[type[BaseModel]] = Opportunity

    name: Name
    customer: Name
    partner_id: UUID | None = None
    amount: Amount
    currency: Currency = "USD"
    expected_close_date: Day | None = None
    owner: Person | None = None
    deal_model: DealModel = DealModel.resale
    pipeline: Key | None = None
    stage: line(100) | None = None
    hyperscaler: Hyperscaler | None = None
    ace: AceState | None = None
    gcp: GcpState | None = None
    created_at: Moment | None = Field(default=None, description="When the deal started, if recorded "
                                                                       "afterwards (not in the future).")


class UpdateOpportunity(PartialCommand):
    """Change an opportunity's fields (not its stage); only the fields sent change, null clears."""

    subject: ClassVar[str] = "cmd.pipeline.opportunity.update"
    result: ClassVar[type[BaseModel]] = Opportunity

    opportunity_id: UUID
    expected_version: Version | None = None
    name: Name | None = None
    customer: Name | None = None
    partner_id: UUID | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    expected_close_date: Day | None = None
    owner: Person | None = None
    deal_model: DealModel | None = None
    hyperscaler: Hyperscaler | None = None
    ace: AceState | None = None
    gcp: GcpState | None = None


class MoveOpportunity(Command):
    """Move an opportunity to another stage of its pipeline; the history records who, when, from, to."""

    subject: ClassVar[str] = "cmd.pipeline.opportunity.move"
    result: ClassVar[type[BaseModel]] = Opportunity

    opportunity_id: UUID
    stage: line(100, 1)
    expected_version: Version | None = None
    closed_lost_reason: line(200) | None = None
    occurred_at: Moment | None = Field(default=None, description="When the move happened, if recorded "
                                              "afterwards: not in the future, not before the last stage change.")


class GetOpportunity(Command):
    """One opportunity with its stage history and next-steps history."""

    subject: ClassVar[str] = "cmd.pipeline.opportunity.get"
    result: ClassVar[type[BaseModel]] = OpportunityDetail

    opportunity_id: UUID


class OpportunitySort(StrEnum):
    created = "created_at"
    created_desc = "-created_at"
    amount = "amount"
    amount_desc = "-amount"
    close = "expected_close_date"
    close_desc = "-expected_close_date"
    stage_entered = "stage_entered_at"
    stage_entered_desc = "-stage_entered_at"
    name = "name"
    name_desc = "-name"


class OpportunityList(BaseModel):
    items: list[Opportunity]
    total: int
    offset: int
    limit: int


class ListOpportunities(Command):
    """List opportunities with filters, sorting and paging. `quarter` (fiscal) matches the expected
    close date of open deals and the close date of closed ones."""

    subject: ClassVar[str] = "cmd.pipeline.opportunity.list"
    result: ClassVar[type[BaseModel]] = OpportunityList

    owner: Person | None = None
    partner_id: UUID | None = None
    pipeline: Key | None = None
    stage: line(100) | None = None
    outcome: Outcome | None = None
    source: Source | None = None
    deal_model: DealModel | None = None
    quarter: QuarterName | None = Field(default=None, description="Expected to close in this fiscal quarter "
                                        "(the settings' fiscal_year_start_month).")
    q: line(200, description="Part of the name or customer.") | None = None
    sort: OpportunitySort = OpportunitySort.created_desc
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=500)


# -------------------------------------------------------------------------- stage sets, settings


class StageSetDefinedV1(Event):
    """Sent when a pipeline's stage set is defined or redefined (stages, names, probabilities)."""

    subject: ClassVar[str] = "pipeline.stage_set.defined.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    stage_set: StageSet

    def aggregate_key(self) -> str:
        return f"stage_set:{self.stage_set.key}"


class PipelineSettingsChangedV1(Event):
    """Sent when the pipeline settings change (fiscal year, target, tiers, scorecard weights, rates)."""

    subject: ClassVar[str] = "pipeline.settings.changed.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    settings: PipelineSettings

    def aggregate_key(self) -> str:
        return "settings:pipeline"


class StageSetList(BaseModel):
    items: list[StageSet]


class ListStageSets(Command):
    """Every pipeline's stage set (the built-in ones, as configured, and custom ones)."""

    subject: ClassVar[str] = "cmd.pipeline.stage_set.list"
    result: ClassVar[type[BaseModel]] = StageSetList


class DefineStageSet(Command):
    """Define a pipeline's stages, or redefine them (stages in use by opportunities must stay)."""

    subject: ClassVar[str] = "cmd.pipeline.stage_set.define"
    result: ClassVar[type[BaseModel]] = StageSet

    key: Key
    name: Name
    stages: tuple[StageDef, ...] = Field(min_length=2, max_length=30)


class GetPipelineSettings(Command):
    """The current pipeline settings."""

    subject: ClassVar[str] = "cmd.pipeline.settings.get"
    result: ClassVar[type[BaseModel]] = PipelineSettings


class UpdatePipelineSettings(PartialCommand):
    """Change pipeline settings; only the fields sent change. Tier settings recompute every tier."""

    subject: ClassVar[str] = "cmd.pipeline.settings.update"
    result: ClassVar[type[BaseModel]] = PipelineSettings

    expected_version: Version | None = None
    fiscal_year_start_month: int | None = Field(default=None, ge=1, le=12)
    reporting_currency: Currency | None = None
    quarterly_target: Amount | None = None
    forecast_pipelines: tuple[Key, ...] | None = Field(default=None, min_length=1, max_length=20)
    stuck_after_days: int | None = Field(default=None, ge=1, le=3650)
    tier_window_days: int | None = Field(default=None, ge=1, le=3650)
    tier_thresholds: TierThresholds | None = None
    scorecard_weights: ScorecardWeights | None = None
    fx_rates: dict[Currency, Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=8)]] | None = Field(
        default=None, max_length=200)


# ------------------------------------------------------------------------------------ CSV import


class ImportKind(StrEnum):
    partners = "partners"
    opportunities = "opportunities"


class RowError(BaseModel):
    row: int = Field(description="Line of the file, counting the header as line 1.")
    field: str | None
    message: str


class ImportBatch(BaseModel):
    batch_id: UUID
    kind: ImportKind
    columns: list[str]


class ImportProgress(BaseModel):
    batch_id: UUID
    rows: int
    errors: list[RowError]


class ImportResult(BaseModel):
    batch_id: UUID
    kind: ImportKind
    rows: int
    created: int
    updated: int
    errors: list[RowError]
    stored: bool = Field(description="False when the file had errors: then nothing was stored.")


class BeginImport(Command):
    """Start a CSV import: the header is checked now, rows arrive in chunks, nothing is stored until
    the commit, and a file with any bad row stores nothing."""

    subject: ClassVar[str] = "cmd.pipeline.import.begin"
    result: ClassVar[type[BaseModel]] = ImportBatch

    kind: ImportKind
    columns: list[line(100)] = Field(min_length=1, max_length=60)


class ImportRows(Command):
    """A chunk of rows of a CSV import; each row is checked and its errors reported with its line."""

    subject: ClassVar[str] = "cmd.pipeline.import.rows"
    result: ClassVar[type[BaseModel]] = ImportProgress

    batch_id: UUID
    first_row: int = Field(ge=2, le=10_000_000, description="File line of the first row (the header is line 1).")
    rows: list[list[text(5000)]] = Field(max_length=2000)


class CommitImport(Command):
    """Store every row of the import in one transaction, or nothing if any row is bad."""

    subject: ClassVar[str] = "cmd.pipeline.import.commit"
    result: ClassVar[type[BaseModel]] = ImportResult

    batch_id: UUID


class ExportPage(BaseModel):
    columns: list[str]
    rows: list[list[str]]
    next_after: UUID | None


class ExportRows(Command):
    """A page of partners or opportunities as CSV rows (the import's columns), in id order."""

    subject: ClassVar[str] = "cmd.pipeline.export.rows"
    result: ClassVar[type[BaseModel]] = ExportPage

    kind: ImportKind
    after_id: UUID | None = None
    limit: int = Field(default=1000, ge=1, le=2000)


# --------------------------------------------------------------------------------------- registry

EVENTS: tuple[type[Event], ...] = (
    PartnerCreatedV1, PartnerUpdatedV1, PartnerArchivedV1, PartnerTierChangedV1,
    OpportunityCreatedV1, OpportunityUpdatedV1, OpportunityStageChangedV1,
    OpportunityWonV1, OpportunityLostV1, OpportunityLaunchedV1, OpportunityReopenedV1,
    StageSetDefinedV1, PipelineSettingsChangedV1,
)
COMMANDS: tuple[type[Command], ...] = (
    CreatePartner, UpdatePartner, ArchivePartner, GetPartner, ListPartners, RecomputeTiers,
    CreateOpportunity, UpdateOpportunity, MoveOpportunity, GetOpportunity, ListOpportunities,
    ListStageSets, DefineStageSet, GetPipelineSettings, UpdatePipelineSettings,
    BeginImport, ImportRows, CommitImport, ExportRows,
)
