"""Deal registration (the pipeline service): a partner registers a deal it found, the partner's owner
on the team approves or rejects it, and an approved registration becomes an opportunity of that
partner in the same transaction.

Before anyone decides, the service checks for a conflict: an open opportunity or another pending
registration for the same customer (names compared after `customer_key`). Conflicts are for the
team's eyes; what a partner is shown of its own registrations is decided at the gateway.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.base import Command, Event, StreamSpec
from contracts.fields import Currency, Day, Name, Offset, Person, Version, text
from contracts.money import Amount
from contracts.pipeline import STREAM, DealModel

# Legal-form words that do not tell two customers apart ("Acme Inc." is "ACME").
_LEGAL_FORMS = frozenset({"inc", "incorporated", "llc", "ltd", "limited", "gmbh", "corp", "corporation", "co",
                          "company", "plc", "sa", "ag", "bv", "nv", "sarl", "srl", "pty", "the"})
_NOT_WORD = re.compile(r"[^\w]+")


def customer_key(name: str) -> str:
    """The form in which two customer names are the same customer: accents, case, punctuation and
    legal-form words dropped ("Acmé, Inc." and "ACME" are one). Empty when nothing is left."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = [w for w in _NOT_WORD.sub(" ", plain).split() if w not in _LEGAL_FORMS]
    return " ".join(words)


class RegistrationStatus(StrEnum):
    pending = "pending"  # waiting for the partner's owner
    approved = "approved"  # became an opportunity
    rejected = "rejected"


class ConflictKind(StrEnum):
    opportunity = "opportunity"  # an open deal for the same customer
    registration = "registration"  # another registration still pending for the same customer


class Conflict(BaseModel):
    """Something already in play for the same customer (for the team only: it may be another partner's)."""

    kind: ConflictKind
    id: UUID
    name: str
    customer: str
    partner_id: UUID | None


class Registration(BaseModel):
    id: UUID
    version: int
    partner_id: UUID
    name: str
    customer: str
    amount: Decimal
    currency: str
    expected_close_date: date | None
    deal_model: DealModel
    notes: str
    status: RegistrationStatus
    conflicts: list[Conflict] = Field(description="What the check found when the registration was submitted "
                                                  "(and again when it was decided).")
    submitted_by: str
    submitted_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = Field(default=None, description="The owner's words to the partner on deciding.")
    opportunity_id: UUID | None = Field(default=None, description="The opportunity an approval created.")


class RegistrationList(BaseModel):
    items: list[Registration]
    total: int
    offset: int
    limit: int


class DealRegistrationSubmittedV1(Event):
    """Sent when a partner registers a deal (with what the conflict check found)."""

    subject: ClassVar[str] = "pipeline.registration.submitted.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    registration: Registration

    def aggregate_key(self) -> str:
        return f"registration:{self.registration.id}"


class DealRegistrationDecidedV1(Event):
    """Sent when the partner's owner approves (an opportunity was created) or rejects a registration."""

    subject: ClassVar[str] = "pipeline.registration.decided.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    registration: Registration

    def aggregate_key(self) -> str:
        return f"registration:{self.registration.id}"


class RegisterDeal(Command):
    """Register a deal for a partner; the service runs the conflict check and keeps it pending."""

    subject: ClassVar[str] = "cmd.pipeline.registration.submit"
    result: ClassVar[type[BaseModel]] = Registration

    partner_id: UUID
    name: Name
    customer: Name
    amount: Amount
    currency: Currency = "USD"
    expected_close_date: Day | None = None
    deal_model: DealModel = DealModel.referral
    notes: text(4000) = ""


class GetRegistration(Command):
    subject: ClassVar[str] = "cmd.pipeline.registration.get"
    result: ClassVar[type[BaseModel]] = Registration

    registration_id: UUID


class ListRegistrations(Command):
    """Registrations, newest first; one partner's or everyone's, of one status or all."""

    subject: ClassVar[str] = "cmd.pipeline.registration.list"
    result: ClassVar[type[BaseModel]] = RegistrationList

    partner_id: UUID | None = None
    status: RegistrationStatus | None = None
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=500)


class DecideRegistration(Command):
    """Approve (creating the opportunity, owned by `owner`) or reject a pending registration. Approving
    one the check found in conflict needs `acknowledge_conflicts`: someone looked at the other deal."""

    subject: ClassVar[str] = "cmd.pipeline.registration.decide"
    result: ClassVar[type[BaseModel]] = Registration

    registration_id: UUID
    approve: bool
    reason: text(2000) | None = None
    acknowledge_conflicts: bool = False
    owner: Person | None = Field(default=None, description="Who owns the opportunity an approval creates.")
    expected_version: Version | None = None


EVENTS: tuple[type[Event], ...] = (DealRegistrationSubmittedV1, DealRegistrationDecidedV1)
COMMANDS: tuple[type[Command], ...] = (RegisterDeal, GetRegistration, ListRegistrations, DecideRegistration)
