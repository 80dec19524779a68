"""Partners: the snapshot every partner event carries, the events, and the commands the pipeline answers."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Command, Event, PartialCommand, StreamSpec
from contracts.fields import Moment, Name, Offset, Person, Version, line
from contracts.pipeline.values import STREAM, Criterion, PartnerStatus, PartnerTier, PartnerType


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
    deleted_at: Moment | None = Field(default=None, description="When it was deleted (soft: hidden everywhere, "
                                      "restorable for a while); null while it is not.")
    version: Version = 1
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
    version: Version = 1

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


class PartnerDeletedV1(_PartnerEvent):
    """Sent when a partner is deleted (soft): hidden everywhere until restored. Never sent for a partner
    with money on the commission ledger or with deals that are not deleted."""

    subject: ClassVar[str] = "pipeline.partner.deleted.v1"


class PartnerRestoredV1(_PartnerEvent):
    """Sent when an archived or deleted partner is restored: active again as its snapshot says."""

    subject: ClassVar[str] = "pipeline.partner.restored.v1"


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
    """Archive a partner (no longer worked with): kept with its history, gone from lists and partner KPIs;
    restorable at any time."""

    subject: ClassVar[str] = "cmd.pipeline.partner.archive"
    result: ClassVar[type[BaseModel]] = Partner

    partner_id: UUID


class DeletePartner(Command):
    """Delete a partner (soft; restorable for a while): refused (conflict) while it has money on the
    commission ledger or deals that are not deleted. Deleting twice changes nothing."""

    subject: ClassVar[str] = "cmd.pipeline.partner.delete"
    result: ClassVar[type[BaseModel]] = Partner

    partner_id: UUID


class RestorePartner(Command):
    """Restore an archived partner, or a deleted one within the restore window."""

    subject: ClassVar[str] = "cmd.pipeline.partner.restore"
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
    state: Literal["active", "archived", "deleted"] | None = Field(
        default=None, description="Only partners in this state (overrides include_archived); deleted ones are "
                                  "listed only so.")
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
