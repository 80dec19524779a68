"""Events and commands of the commissions service: agreements, the ledger, statements, the forecast.

An agreement belongs to a partner and says how revenue turns into commission, in one direction:
receivable (the partner pays us, e.g. an ISV we resell) or payable (we pay the partner, e.g. a
referral partner). Its terms live in versions, each in force over a date range. Rates are percent
(10 means 10%), amounts are decimal strings with their currency; there are no floats.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Command, Event, StreamSpec
from contracts.billing import Currency, Ref
from contracts.fields import INT_MAX, Day, Moment, Name, Offset, PeriodName, RowId, line, text
from contracts.money import Amount, PositiveAmount, Total
from contracts.pipeline import Key as PipelineKey
from contracts.pipeline import PartnerTier

STREAM = StreamSpec(
    name="COMMISSIONS",
    subjects=("commissions.>",),
    description="Facts about commission agreements, ledger entries posted, approved and paid.",
)

Percent = Annotated[Decimal, Field(max_digits=9, decimal_places=4, description="percent: 12.5 means 12.5%")]


class Direction(StrEnum):
    receivable = "receivable"  # the partner pays us (we resell an ISV)
    payable = "payable"  # we pay the partner (a referral partner brought the deal)


class Basis(StrEnum):
    deal = "deal"  # the deal amount when the opportunity is won
    invoice = "invoice"  # each paid invoice


class Duration(StrEnum):
    one_time = "one_time"
    recurring = "recurring"  # for duration_months from the customer's start
    lifetime = "lifetime"


class TierMode(StrEnum):
    marginal = "marginal"  # each slice of revenue earns its own tier's rate (like income tax brackets)
    whole_amount = "whole_amount"  # reaching a tier moves all of the period's revenue to its rate


class RatePeriod(StrEnum):
    month = "month"
    quarter = "quarter"
    year = "year"


class EntryType(StrEnum):
    accrual = "accrual"
    clawback = "clawback"
    adjustment = "adjustment"


class EntryStatus(StrEnum):
    accrued = "accrued"
    approved = "approved"
    paid = "paid"


class RevenueKind(StrEnum):
    deal_won = "deal_won"
    invoice_paid = "invoice_paid"
    refund = "refund"
    churn = "churn"


# ------------------------------------------------------------------------------------------ terms


class _Terms(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlatRate(_Terms):
    kind: Literal["flat"] = "flat"
    rate: Percent


class Tier(_Terms):
    from_amount: Total = Field(description="cumulative revenue in the period where this tier starts")
    up_to: Total | None = Field(default=None, description="where it ends (exclusive); none for the last tier")
    rate: Percent


class TieredRate(_Terms):
    kind: Literal["tiered"] = "tiered"
    mode: TierMode
    tiers: list[Tier] = Field(min_length=1, max_length=20)


class PartnerTierRate(_Terms):
    kind: Literal["partner_tier"] = "partner_tier"
    rates: dict[PartnerTier, Percent] = Field(description="a rate for each of bronze, silver, gold, platinum")


class SpifRate(_Terms):
    """A SPIF (sales performance incentive): a fixed bonus for each qualifying deal won while the version is
    in force. The version's [effective_from, effective_to) is the SPIF's window, in UTC days of the deal's
    win (a SPIF version must end: it is time-boxed). A deal qualifies when it is won in the window, in the
    agreement's currency, of a deal model the agreement covers, for at least `min_amount` (inclusive) and,
    with `tiers`, while the partner is in one of them. It earns the bonus once, whatever the amount."""

    kind: Literal["spif"] = "spif"
    bonus: PositiveAmount = Field(description="paid once per qualifying deal, in the agreement's currency")
    min_amount: Amount | None = Field(default=None, description="the smallest deal amount that qualifies "
                                      "(inclusive); none = any amount")
    tiers: list[PartnerTier] | None = Field(default=None, min_length=1, max_length=4,
                                            description="only while the partner is in one of these tiers on "
                                            "the day the deal is won; none = any tier")
    pipelines: list[PipelineKey] | None = Field(default=None, min_length=1, max_length=20,
                                                description="only deals won in these pipelines (stage set keys, "
                                                "e.g. resale, cosell); none = any pipeline")


RateRule = Annotated[FlatRate | TieredRate | PartnerTierRate | SpifRate, Field(discriminator="kind")]


class Terms(_Terms):
    """How one agreement version turns revenue into commission."""

    rate: RateRule
    basis: Basis = Basis.deal
    duration: Duration = Duration.one_time
    duration_months: int | None = Field(default=None, description="for recurring: how many months")
    period: RatePeriod = Field(default=RatePeriod.quarter,
                               description="the calendar period tiers accumulate over and the per-period cap "
                                                           "applies to")
    cap_per_deal: Total | None = None
    cap_per_period: Total | None = None
    clawback_days: int = Field(default=0, description="refunds and churn this many days after the revenue "
                               "reverse its commission; 0 = never")


# --------------------------------------------------------------------------------------- agreements


class AgreementVersion(BaseModel):
    version: int
    effective_from: date
    effective_to: date | None = Field(description="exclusive; none = until a later version starts")
    retroactive: bool
    terms: Terms
    revision: int = Field(description="how often these terms were corrected")
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    updated_by: str | None


class Agreement(BaseModel):
    id: UUID
    partner_id: UUID
    name: str
    direction: Direction
    currency: str
    deal_models: list[str] | None
    created_at: datetime
    created_by: str | None
    versions: list[AgreementVersion]


class AgreementList(BaseModel):
    items: list[Agreement]
    total: int
    offset: int
    limit: int


class AuditRecord(BaseModel):
    id: int
    agreement_id: UUID
    version: int | None
    action: str
    actor: str | None
    at: datetime
    old: dict[str, object] | None
    new: dict[str, object] | None


class AuditList(BaseModel):
    items: list[AuditRecord]


class _VersionFields(Command):
    effective_from: Day
    effective_to: Day | None = None
    retroactive: bool = Field(default=False, description="apply also to revenue of deals booked before "
                              "effective_from (from effective_from on); otherwise those keep their terms")
    terms: Terms


class CreateAgreement(_VersionFields):
    """Create an agreement for a partner with its first version."""

    subject: ClassVar[str] = "cmd.commissions.agreement.create"
    result: ClassVar[type[BaseModel]] = Agreement

    partner_id: UUID
    name: Name
    direction: Direction
    currency: Currency
    deal_models: list[line(40, 1)] | None = Field(
        default=None, max_length=10, description="only deals of these models; none = all")


class UpdateAgreement(Command):
    """Rename an agreement or change which deal models it covers."""

    subject: ClassVar[str] = "cmd.commissions.agreement.update"
    result: ClassVar[type[BaseModel]] = Agreement

    agreement_id: UUID
    name: Name
    deal_models: list[line(40, 1)] | None = Field(default=None, max_length=10)


class AddAgreementVersion(_VersionFields):
    """Add a version of an agreement's terms, in force from its effective date."""

    subject: ClassVar[str] = "cmd.commissions.agreement.version.add"
    result: ClassVar[type[BaseModel]] = Agreement

    agreement_id: UUID


class UpdateAgreementVersion(_VersionFields):
    """Correct a version (its dates, terms, or whether it is retroactive); the ledger is recalculated with
    adjusting entries."""

    subject: ClassVar[str] = "cmd.commissions.agreement.version.update"
    result: ClassVar[type[BaseModel]] = Agreement

    agreement_id: UUID
    version: int = Field(ge=1, le=INT_MAX)


class GetAgreement(Command):
    """One agreement with all its versions."""

    subject: ClassVar[str] = "cmd.commissions.agreement.get"
    result: ClassVar[type[BaseModel]] = Agreement

    agreement_id: UUID


class ListAgreements(Command):
    """Agreements, optionally of one partner."""

    subject: ClassVar[str] = "cmd.commissions.agreement.list"
    result: ClassVar[type[BaseModel]] = AgreementList

    partner_id: UUID | None = None
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=500)


class GetAgreementAudit(Command):
    """Every change to an agreement: who, when, the old and new terms."""

    subject: ClassVar[str] = "cmd.commissions.agreement.audit"
    result: ClassVar[type[BaseModel]] = AuditList

    agreement_id: UUID


class RecalculationResult(BaseModel):
    agreement_id: UUID
    entries_written: int


class RecalculateAgreement(Command):
    """Recompute an agreement's ledger from its revenue; differences are written as adjusting entries."""

    subject: ClassVar[str] = "cmd.commissions.agreement.recalculate"
    result: ClassVar[type[BaseModel]] = RecalculationResult

    agreement_id: UUID


# ------------------------------------------------------------------------------------------ revenue


class LedgerEntry(BaseModel):
    id: int
    agreement_id: UUID
    partner_id: UUID
    direction: Direction
    entry_type: EntryType
    status: EntryStatus
    amount: Decimal
    currency: str
    period: date = Field(description="the first day of the entry's month")
    line_key: str
    revenue_key: str
    customer: str | None
    version: int
    revision: int
    rule: str
    detail: str
    reverses_entry_id: int | None
    adjusts_entry_id: int | None
    payment_id: UUID | None
    created_at: datetime


class RevenueEvent(BaseModel):
    key: str
    kind: RevenueKind
    partner_id: UUID | None
    customer: str | None
    amount: Decimal | None
    currency: str | None
    occurred_at: datetime
    source: str = Field(description="Where it came from, as its producer labels it: api, pipeline, billing...")
    recorded_by: str | None = Field(
        default=None, description="Who recorded it: the person or API token that entered it by hand, or "
        "bus:<user> for an event, the one NATS user the server lets publish it (docs/security.md).")
    received_at: datetime
    entries: int = 0
    commission: dict[str, Decimal] = Field(default_factory=dict, description="net commission by currency")
    notes: list[str] = Field(default_factory=list, description="why an agreement earned nothing on it")


class RevenueRecorded(BaseModel):
    event: RevenueEvent
    duplicate: bool
    entries: list[LedgerEntry]


class RecordInvoicePaid(Command):
    """Enter a paid invoice by hand (the same fact a billing system publishes as billing.invoice.paid.v1)."""

    subject: ClassVar[str] = "cmd.commissions.revenue.invoice"
    result: ClassVar[type[BaseModel]] = RevenueRecorded

    invoice_id: Ref
    customer: Ref
    partner_id: UUID | None = None
    opportunity_id: UUID | None = None
    amount: PositiveAmount
    currency: Currency
    paid_at: Moment
    customer_started_on: Day | None = None
    deal_model: line(40) | None = None


class RecordRefund(Command):
    """Enter a refund of a paid invoice by hand."""

    subject: ClassVar[str] = "cmd.commissions.revenue.refund"
    result: ClassVar[type[BaseModel]] = RevenueRecorded

    refund_id: Ref
    invoice_id: Ref
    amount: PositiveAmount
    currency: Currency
    refunded_at: Moment


class RecordChurn(Command):
    """Enter a customer's churn by hand."""

    subject: ClassVar[str] = "cmd.commissions.revenue.churn"
    result: ClassVar[type[BaseModel]] = RevenueRecorded

    customer: Ref
    partner_id: UUID | None = None
    opportunity_id: UUID | None = None
    churned_at: Moment
    reason: text(500) | None = None


class RevenueEventList(BaseModel):
    items: list[RevenueEvent]
    total: int
    offset: int
    limit: int


class ListRevenueEvents(Command):
    """Revenue events, newest first, with the commission each produced and why not where none."""

    subject: ClassVar[str] = "cmd.commissions.revenue.list"
    result: ClassVar[type[BaseModel]] = RevenueEventList

    partner_id: UUID | None = None
    kind: RevenueKind | None = None
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=500)


# ------------------------------------------------------------------------------------------- ledger


class LedgerPage(BaseModel):
    items: list[LedgerEntry]
    total: int
    offset: int
    limit: int
    next_after: str | None = Field(default=None, description="Send as `after` for the next page (keyset paging: "
                                   "a page costs the same however deep); null on the last page.")


class LedgerSort(StrEnum):
    """The order of a ledger listing: by entry id (the order entries were written), amount or month; `-` for
    descending. Ties are broken by id, so keyset pages never skip or repeat an entry."""

    id = "id"
    id_desc = "-id"
    amount = "amount"
    amount_desc = "-amount"
    period = "period"
    period_desc = "-period"


# A page's last row under its sort: "<id>", "<amount>:<id>" or "<YYYY-MM-DD>:<id>".
LedgerCursor = Annotated[str, Field(max_length=60, pattern=r"^(-?\d{1,18}(\.\d{1,2})?:|\d{4}-\d{2}-\d{2}:)?\d{1,19}$")]


class ListLedgerEntries(Command):
    """Ledger entries in the order asked for (by default the order they were written). Page with `after` (the
    previous page's `next_after`) rather than `offset` on a large ledger."""

    subject: ClassVar[str] = "cmd.commissions.ledger.list"
    result: ClassVar[type[BaseModel]] = LedgerPage

    partner_id: UUID | None = None
    agreement_id: UUID | None = None
    status: EntryStatus | None = None
    period: PeriodName | None = None
    sort: LedgerSort = LedgerSort.id
    after: LedgerCursor | None = None
    offset: Offset = 0
    limit: int = Field(default=100, ge=1, le=1000)


EntryIds = Annotated[list[RowId], Field(min_length=1, max_length=5000)]
SECOND_APPROVER = ("refuse entries of revenue the actor recorded by hand: a second person approves and pays them "
                   "(the gateway sends its COMMISSIONS_SECOND_APPROVER setting; false for a team of one)")


class ApprovalResult(BaseModel):
    approved: list[int]
    already_approved: list[int]


class ApproveEntries(Command):
    """Approve accrued entries (managers and admins)."""

    subject: ClassVar[str] = "cmd.commissions.ledger.approve"
    result: ClassVar[type[BaseModel]] = ApprovalResult

    entry_ids: EntryIds
    second_approver: bool = Field(default=True, description=SECOND_APPROVER)


class Payment(BaseModel):
    id: UUID
    partner_id: UUID
    direction: Direction
    currency: str
    amount: Decimal
    paid_on: date
    reference: str
    entry_ids: list[int]
    created_at: datetime
    created_by: str | None


class PayEntries(Command):
    """Mark approved entries of one partner, direction and currency as paid, as one payment."""

    subject: ClassVar[str] = "cmd.commissions.ledger.pay"
    result: ClassVar[type[BaseModel]] = Payment

    entry_ids: EntryIds
    paid_on: Day
    reference: line(200, 1)
    second_approver: bool = Field(default=True, description=SECOND_APPROVER)


# ---------------------------------------------------------------------------------------- statements


class StatementPayment(BaseModel):
    payment_id: UUID
    paid_on: date
    amount: Decimal
    reference: str
    entries: int


class StatementSection(BaseModel):
    direction: Direction
    currency: str
    opening_balance: Decimal
    accruals: Decimal
    clawbacks: Decimal
    adjustments: Decimal
    payments: Decimal
    closing_balance: Decimal
    spif_bonuses: Decimal = Field(default=Decimal(0), description="of the accruals, the SPIF bonuses (rule `spif`)")
    lines: list[LedgerEntry]
    payment_lines: list[StatementPayment]


class Statement(BaseModel):
    partner_id: UUID
    partner_name: str | None
    period: str
    period_start: date
    period_end: date = Field(description="exclusive")
    sections: list[StatementSection]


class GetStatement(Command):
    """A partner's statement for a month or a quarter: opening balance, accruals, clawbacks,
    adjustments, payments and closing balance, per direction and currency, with every line."""

    subject: ClassVar[str] = "cmd.commissions.statement.get"
    result: ClassVar[type[BaseModel]] = Statement

    partner_id: UUID
    period: PeriodName


# ------------------------------------------------------------------------------------------ forecast


class ForecastLine(BaseModel):
    opportunity_id: UUID
    partner_id: UUID
    agreement_id: UUID
    direction: Direction
    customer: str | None
    stage: str | None
    amount: Decimal
    currency: str
    probability: Decimal = Field(description="0..1")
    rate: Decimal = Field(description="the applicable rate, percent")
    commission: Decimal
    note: str = ""


class ForecastTotal(BaseModel):
    direction: Direction
    currency: str
    commission: Decimal
    opportunities: int


class Forecast(BaseModel):
    lines: list[ForecastLine]
    totals: list[ForecastTotal]


class ForecastCommissions(Command):
    """Commission expected from the open pipeline: amount x stage probability x the applicable rate."""

    subject: ClassVar[str] = "cmd.commissions.forecast"
    result: ClassVar[type[BaseModel]] = Forecast

    partner_id: UUID | None = None
    limit: int = Field(default=500, ge=1, le=5000)


# -------------------------------------------------------------------------------------------- SPIFs


class SpifStatus(StrEnum):
    upcoming = "upcoming"
    running = "running"
    ended = "ended"


class Spif(BaseModel):
    """One SPIF window (a version of a SPIF agreement) with what it has paid so far on the ledger."""

    agreement_id: UUID
    partner_id: UUID
    partner_name: str | None
    name: str
    direction: Direction
    currency: str
    version: int
    window_from: date
    window_to: date = Field(description="exclusive")
    status: SpifStatus
    rule: SpifRate
    rule_text: str = Field(description="the rule in words")
    deals: int = Field(description="deals that earn the bonus now (a reopened deal no longer counts)")
    earned: Decimal = Field(description="net bonus on the ledger, after reversals and clawbacks")


class SpifList(BaseModel):
    items: list[Spif]


class ListSpifs(Command):
    """SPIFs (agreements whose rate kind is `spif`), one line per window, with the deals that qualified and
    the bonus earned; newest window first."""

    subject: ClassVar[str] = "cmd.commissions.spif.list"
    result: ClassVar[type[BaseModel]] = SpifList

    partner_id: UUID | None = None
    limit: int = Field(default=200, ge=1, le=1000)


# -------------------------------------------------------------------------------------------- events


class AgreementChangedV1(Event):
    """Sent when an agreement is created or its name, deal models or a version's terms change."""

    subject: ClassVar[str] = "commissions.agreement.changed.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    agreement_id: UUID
    partner_id: UUID
    name: str
    direction: Direction
    currency: str
    action: Literal["created", "updated", "version_added", "version_updated"]
    version: int | None = None
    actor: str | None = None

    def aggregate_key(self) -> str:
        return f"agreement:{self.agreement_id}"


class PeriodTotal(BaseModel):
    period: date
    entry_type: EntryType
    amount: Decimal
    entries: int


class CommissionEntriesPostedV1(Event):
    """Sent when ledger entries were written for an agreement (accruals, clawbacks, adjustments), with
    their totals per month and type. No longer published (see `CommissionEntriesPostedV2`); kept so
    consumers can still replay the stream's history."""

    subject: ClassVar[str] = "commissions.entries.posted.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    agreement_id: UUID
    partner_id: UUID
    direction: Direction
    currency: str
    totals: list[PeriodTotal]
    first_entry_id: int
    last_entry_id: int

    def aggregate_key(self) -> str:
        return f"agreement:{self.agreement_id}"


class PostedTotal(BaseModel):
    """What one transaction posted in one direction, currency, month and entry type."""

    direction: Direction
    currency: str
    period: date
    entry_type: EntryType
    amount: Decimal
    entries: int


class CommissionEntriesPostedV2(Event):
    """Sent once per transaction that wrote ledger entries (accruals, clawbacks, adjustments), with their
    totals per direction, currency, month and type, and the agreements and partners whose ledgers grew.
    Replaces `CommissionEntriesPostedV1` (one event per agreement): a consumer batch of revenue touches
    hundreds of agreements, and an event each cost more than the entries themselves. Totals add up, so
    the order of these events does not matter."""

    subject: ClassVar[str] = "commissions.entries.posted.v2"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[2] = 2
    totals: list[PostedTotal]
    agreement_ids: list[UUID]
    partner_ids: list[UUID]
    entries: int
    # The transaction's entries have ids in this range; other transactions' entries may interleave.
    first_entry_id: int
    last_entry_id: int


class CommissionEntriesApprovedV1(Event):
    """Sent when accrued entries are approved, with the approved totals per month."""

    subject: ClassVar[str] = "commissions.entries.approved.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    partner_id: UUID
    direction: Direction
    currency: str
    totals: list[PeriodTotal]
    actor: str | None = None

    def aggregate_key(self) -> str:
        return f"partner:{self.partner_id}"


class CommissionEntriesPaidV1(Event):
    """Sent when approved entries are paid (or, if receivable, collected) as one payment."""

    subject: ClassVar[str] = "commissions.entries.paid.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    payment_id: UUID
    partner_id: UUID
    direction: Direction
    currency: str
    amount: Decimal
    paid_on: date
    entries: int
    actor: str | None = None

    def aggregate_key(self) -> str:
        return f"partner:{self.partner_id}"


EVENTS: tuple[type[Event], ...] = (
    AgreementChangedV1, CommissionEntriesPostedV1, CommissionEntriesPostedV2, CommissionEntriesApprovedV1,
    CommissionEntriesPaidV1,
)
COMMANDS: tuple[type[Command], ...] = (
    CreateAgreement, UpdateAgreement, AddAgreementVersion, UpdateAgreementVersion, GetAgreement, ListAgreements,
    GetAgreementAudit, RecalculateAgreement, RecordInvoicePaid, RecordRefund, RecordChurn, ListRevenueEvents,
    ListLedgerEntries, ApproveEntries, PayEntries, GetStatement, ForecastCommissions, ListSpifs,
)
