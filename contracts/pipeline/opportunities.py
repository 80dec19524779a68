"""Opportunities: the snapshot every opportunity event carries, the events, and the commands the pipeline
answers. Events carry the whole current state with a `version` that grows by one on every change."""

from datetime import date, datetime
from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field

from contracts.base import Command, Event, PartialCommand, StreamSpec
from contracts.fields import Currency, Day, Moment, Name, Offset, Person, Version, line
from contracts.money import Amount
from contracts.pipeline.values import STREAM, AceState, DealModel, GcpState, Hyperscaler, Key, Outcome, Source
from contracts.quarters import QuarterName

# A deleted deal or partner can be restored (Undo) for this many days; after that it stays deleted
# (hidden, kept for the audit trail) and no longer offers a restore.
RESTORE_DAYS = 30
# What the services' copies of the pipeline store as a deleted deal's outcome, so every query that
# counts open, won or lost deals leaves it out without knowing about deletion.
DELETED_OUTCOME = "deleted"


def copied_outcome(o: "Opportunity") -> str:
    """The outcome a copy of the pipeline keeps for `o` (`DELETED_OUTCOME` while it is deleted)."""
    return DELETED_OUTCOME if o.deleted_at is not None else o.outcome.value


class Opportunity(BaseModel):
    """An opportunity's current state."""

    id: UUID
    version: Version
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
    deleted_at: Moment | None = Field(default=None, description="When it was deleted (soft: hidden everywhere, "
                                      f"restorable for {RESTORE_DAYS} days); null while it is not.")


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


class OpportunityDeletedV1(_OpportunityEvent):
    """Sent when an opportunity is deleted (soft): every copy hides it from lists, KPIs, search, exports
    and the portal, and counts it nowhere, until it is restored. A won deal is never deleted."""

    subject: ClassVar[str] = "pipeline.opportunity.deleted.v1"


class OpportunityRestoredV1(_OpportunityEvent):
    """Sent when a deleted opportunity is restored (Undo): it counts again as its snapshot says."""

    subject: ClassVar[str] = "pipeline.opportunity.restored.v1"


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


class DeleteOpportunity(Command):
    """Delete an opportunity (soft; restorable for `RESTORE_DAYS` days). A won deal is refused: it is
    revenue and earns commission, so it is reopened or marked lost first. Deleting twice changes nothing."""

    subject: ClassVar[str] = "cmd.pipeline.opportunity.delete"
    result: ClassVar[type[BaseModel]] = Opportunity

    opportunity_id: UUID


class RestoreOpportunity(Command):
    """Restore a deleted opportunity within `RESTORE_DAYS` days of its deletion. Restoring one that is
    not deleted changes nothing."""

    subject: ClassVar[str] = "cmd.pipeline.opportunity.restore"
    result: ClassVar[type[BaseModel]] = Opportunity

    opportunity_id: UUID


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
    deleted: bool = Field(default=False, description="Only deleted deals, instead of the others.")
    sort: OpportunitySort = OpportunitySort.created_desc
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=500)
