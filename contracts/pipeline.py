"""Events and commands of the pipeline service: partners and opportunities."""


from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.base import Command, Event, StreamSpec

STREAM = StreamSpec(
    name="PIPELINE",
    subjects=("pipeline.>",),
    description="Facts about partners and opportunities, published by the pipeline service.",
)


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


class PartnerStatus(StrEnum):
    prospect = "prospect"
    onboarding = "onboarding"
    active = "active"
    inactive = "inactive"


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

    def aggregate_key(self) -> str:
        return f"partner:{self.partner_id}"


class Partner(BaseModel):
    id: UUID
    name: str
    type: PartnerType
    tier: PartnerTier
    status: PartnerStatus
    owner: str | None
    created_at: datetime


class CreatePartner(Command):
    """Add a partner organisation."""

    subject: ClassVar[str] = "cmd.pipeline.partner.create"
    result: ClassVar[type[BaseModel]] = Partner

    name: str = Field(min_length=1, max_length=200)
    type: PartnerType
    tier: PartnerTier = PartnerTier.bronze
    status: PartnerStatus = PartnerStatus.prospect
    owner: str | None = Field(default=None, max_length=200)


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


class ListPartners(Command):
    """List partners, newest first, optionally of one type."""

    subject: ClassVar[str] = "cmd.pipeline.partner.list"
    result: ClassVar[type[BaseModel]] = PartnerList

    type: PartnerType | None = None
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=500)


EVENTS: tuple[type[Event], ...] = (PartnerCreatedV1,)
COMMANDS: tuple[type[Command], ...] = (CreatePartner, GetPartner, ListPartners)
