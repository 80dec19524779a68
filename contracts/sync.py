"""Events that sync workers publish into the platform from external systems (AWS Partner Central /
ACE, Google Cloud Partner Advantage, Microsoft Partner Center). The pipeline service consumes them.

A sync worker publishes the whole current state of an external opportunity each time it sees it
change, with the source's own last-modified time, on `sync.opportunity.external.upserted.v1`, with the
header `Nats-Msg-Id` = `event_id`. The pipeline applies it keyed by (source, external_id): a newer
last-modified replaces what is stored, an older or equal one changes nothing, so duplicates and
out-of-order delivery are harmless. An event that fails validation (unknown stage, unknown partner,
last-modified in the future, bad amount, ...) is dead-lettered with the reason.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.base import Command, Event, StreamSpec
from contracts.fields import Currency, Day, Moment, Name, Person, line, text
from contracts.money import Amount
from contracts.pipeline import (
    COSELL,
    AceState,
    DealModel,
    ExternalSource,
    GcpState,
    Key,
)

STREAM = StreamSpec(
    name="SYNC",
    subjects=("sync.>",),
    description="Opportunity facts from external systems, published by sync workers (AWS ACE, GCP, Azure).",
)


class OpportunityExternalUpsertedV1(Event):
    """Sent by a sync worker with the current state of an opportunity in an external system."""

    subject: ClassVar[str] = "sync.opportunity.external.upserted.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    source: ExternalSource
    external_id: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$",
                             description="The source's id, e.g. ACE's O1234567 (printable ASCII, no spaces).")
    last_modified: Moment = Field(description="The source's last-modified time; newer wins.")
    created_at: Moment | None = Field(default=None, description="When the source created it (cycle time).")
    name: Name
    customer: Name
    stage: line(100, 1,
                       description="A stage of `pipeline`, by key or name (ACE: 'Technical Validation').")
    pipeline: Key = COSELL
    amount: Amount
    currency: Currency = "USD"
    expected_close_date: Day | None = None
    deal_model: DealModel = DealModel.cosell
    partner_id: UUID | None = Field(default=None, description="Our partner, when the worker knows it; else kept.")
    owner: Person | None = Field(default=None, description="Our team member, when known; else kept.")
    ace: AceState | None = None
    gcp: GcpState | None = None
    deal_id: UUID | None = Field(default=None, description=(
        "Our deal this external record was created from (a deal shared from PartnerOps to ACE): the "
        "pipeline links that deal to the record instead of making a second one."))

    def aggregate_key(self) -> str:
        return f"external:{self.source.value}:{self.external_id}"


# A sync whose last good pass ended longer ago than this is stale: four missed 15-minute pulls. The one
# line for the sync page (gateway) and the stale-sync alert (notifications).
STALE_AFTER = timedelta(hours=1)


class SyncRunFinishedV1(Event):
    """Sent by a sync worker when a pass over its source ends, well or not: the source's sync health."""

    subject: ClassVar[str] = "sync.run.finished.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    source: ExternalSource
    catalog: line(40, 1, description="The source's account or catalog the worker syncs (ACE: AWS or Sandbox).")
    kind: line(40, 1, description="incremental, reconcile, ...")
    ok: bool
    finished_at: Moment
    last_success_at: Moment | None = Field(description="When the newest good pass ended (this one, if ok).")
    error: text(2000) | None = None

    def aggregate_key(self) -> str:
        return f"sync:{self.source.value}:{self.catalog}"


EVENTS: tuple[type[Event], ...] = (OpportunityExternalUpsertedV1, SyncRunFinishedV1)

# ------------------------------------------------------------------------ commands to the AWS worker

AceCatalog = Literal["AWS", "Sandbox"]
AceOpportunityId = Annotated[str, Field(pattern=r"^O[0-9]{1,19}$", max_length=20, examples=["O1234567"],
                                        description="An ACE opportunity identifier.")]


class RefreshQueued(BaseModel):
    opportunity_id: str
    queued: bool = Field(description="False when a refresh of it was waiting already (the two are one).")


class RefreshAceOpportunity(Command):
    """Fetch an ACE opportunity again soon and publish its state: an EventBridge event said it changed."""

    subject: ClassVar[str] = "cmd.aws-sync.opportunity.refresh"
    result: ClassVar[type[BaseModel]] = RefreshQueued

    catalog: AceCatalog
    opportunity_id: AceOpportunityId
    reason: line(100, 1) = "EventBridge"


class SyncRunView(BaseModel):
    kind: str = Field(description="incremental (changes since the cursor), reconcile (everything), refresh (one)")
    started_at: Moment
    finished_at: Moment | None
    ok: bool | None = Field(description="None while it runs")
    seen: int
    published: int
    unchanged: int
    failed: int
    error: str | None


class SyncProblemView(BaseModel):
    external_id: str
    reason: text(2000)
    at: Moment


class OutboundEditView(BaseModel):
    external_id: str
    deal_id: UUID
    fields: dict[str, str | None] = Field(description="The wanted values, by PartnerOps field.")
    status: str = Field(description="queued, held (the source has it locked), sent, superseded "
                                    "(the source's newer version kept), failed")
    reason: str | None
    edited_at: Moment
    sent_at: Moment | None


class InvitationView(BaseModel):
    invitation_id: str
    title: str | None
    sender: str | None
    status: str = Field(description="PENDING, ACCEPTED, REJECTED or EXPIRED, as AWS says")
    invited_at: Moment | None
    expires_at: Moment | None
    decision: str | None = Field(description="Our answer: accept or reject")
    decided_by: str | None
    reason: str | None
    decision_state: str | None = Field(description="queued, sent or failed")
    decision_error: str | None
    opportunity_id: str | None = Field(description="The ACE opportunity accepting it made")


class ShareView(BaseModel):
    """A PartnerOps deal shared to ACE, and how far the worker has got with it."""

    deal_id: UUID
    name: str | None = Field(default=None, description="The deal's name as it was sent (Project.Title).")
    opportunity_id: str | None = Field(description="The ACE opportunity created for it, once AWS answered.")
    solution_id: str
    state: Literal["queued", "created", "associated", "submitted", "failed"] = Field(
        description="queued (nothing sent yet), created (CreateOpportunity answered), associated (the solution "
                    "linked), submitted (StartEngagementFromOpportunityTask started: AWS reviews it), failed")
    error: str | None = Field(description="Why AWS refused it, when failed.")
    requested_by: str
    requested_at: Moment
    updated_at: Moment


class SyncStatus(BaseModel):
    """The health of one source's sync, as its worker sees it."""

    source: str
    catalog: str
    watermark: Moment | None = Field(description="The newest last-modified time read from the source.")
    last_success_at: Moment | None
    lag_seconds: int | None = Field(description="Seconds since the last successful run ended.")
    published_24h: int = Field(description="Opportunity versions published into the platform in 24 hours.")
    sent_24h: int = Field(description="Changes sent to the source in 24 hours.")
    queued_edits: int = Field(description="Outbound edits waiting (the source has the record locked).")
    pending_refreshes: int
    last_reconciliation_due_at: Moment | None = Field(description="When the bus last asked for a reconciliation.")
    schedule: str = Field(description="When passes run, in words (contracts/schedules.py).")
    runs: list[SyncRunView]
    problems: list[SyncProblemView] = Field(description="Records that could not be synced, newest first.")
    edits: list[OutboundEditView] = Field(default_factory=list, description="Edits going out, newest first.")
    invitations: list[InvitationView] = Field(default_factory=list,
                                              description="Engagement invitations (AWS referrals), pending first.")
    shares: list[ShareView] = Field(default_factory=list, description="Deals shared to ACE, newest first.")


class GetSyncStatus(Command):
    """The AWS Partner Central sync's status: last runs, lag, counts, problems."""

    subject: ClassVar[str] = "cmd.aws-sync.status.get"
    result: ClassVar[type[BaseModel]] = SyncStatus


class InvitationsQueued(BaseModel):
    queued: bool


class RefreshAceInvitations(Command):
    """Read the engagement invitations AWS sent us again soon (an EventBridge event said one changed)."""

    subject: ClassVar[str] = "cmd.aws-sync.invitations.refresh"
    result: ClassVar[type[BaseModel]] = InvitationsQueued

    catalog: AceCatalog


# RejectionReason's pattern in the model: 1 to 80 printable characters.
InvitationReason = Annotated[str, Field(min_length=1, max_length=80,
                                        pattern=r"^[\u0020-\u007E\u00A0-\uD7FF\uE000-\uFFFD]+$",
                                        description="Why (sent to AWS with a rejection).")]


class DecideAceInvitation(Command):
    """Accept or reject an engagement invitation (an AWS referral); the worker sends the answer to AWS."""

    subject: ClassVar[str] = "cmd.aws-sync.invitation.decide"
    result: ClassVar[type[BaseModel]] = InvitationView

    invitation_id: Annotated[str, Field(pattern=r"^engi-[0-9a-z]{13}$", examples=["engi-0123456789abc"])]
    decision: Literal["accept", "reject"]
    reason: InvitationReason | None = None


# A Partner Central solution (Solutions in AssociateOpportunity): S- and digits.
AceSolutionId = Annotated[str, Field(pattern=r"^S-[0-9]{1,19}$", max_length=21, examples=["S-0000001"],
                                     description="The Partner Central solution to associate; else the worker's "
                                                 "AWS_PARTNER_CENTRAL_SOLUTION_ID.")]
BusinessProblem = text(2000, 20, description="Project.CustomerBusinessProblem (20 to 2,000 characters; AWS asks "
                                             "for it before it approves).")
Website = Annotated[str, Field(min_length=4, max_length=255, pattern=r"^https?://[\x21-\x7e]+$",
                               description="The customer's website (Customer.Account.WebsiteUrl).")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="The customer's country, ISO 3166 alpha-2.")]


class ShareDealToAce(Command):
    """Share a co-sell deal made in PartnerOps to ACE: the worker creates the ACE opportunity (idempotent
    by a token derived from the deal), associates the solution and submits it to AWS; the ACE record then
    comes back in linked to this deal. The gateway sends the deal as the pipeline holds it."""

    subject: ClassVar[str] = "cmd.aws-sync.opportunity.share"
    result: ClassVar[type[BaseModel]] = ShareView

    deal_id: UUID
    name: Name
    customer: Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$",
                                   description="Customer.Account.CompanyName (ACE allows 120 characters).")]
    stage: line(100, 1, description="The ACE lifecycle stage by name (Prospect ... Closed Lost).")
    amount: Amount = Field(description="The deal's yearly value; ACE receives it as monthly spend (/ 12).")
    currency: Currency
    expected_close_date: Day | None = None
    next_steps: text(255) | None = None
    solution_id: AceSolutionId | None = None
    business_problem: BusinessProblem | None = None
    website: Website | None = None
    country_code: CountryCode | None = None
