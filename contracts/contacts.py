"""Events and commands of the relationships service's contacts area: contacts at partner organisations,
the interactions logged with them, their relationship strength, the cooling alert and the ranked
"attention this week" list.

Strength is a number 0-100 from a pure function of the interactions (services/relationships/contacts/
domain.py, docs/contacts.md). Money travels as a JSON string with its currency; value at stake is
in the pipeline's reporting currency (deals in currencies without a rate are left out and counted).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.base import Command, Event, StreamSpec
from contracts.fields import Moment, Name, Offset, Person, Version, line, text
from contracts.relationships import STREAM

# ------------------------------------------------------------------------------------------ values

_EMAIL = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"
Email = Annotated[str, Field(max_length=254, pattern=_EMAIL, examples=["pdm@amazon.com"])]
Phone = Annotated[str, Field(max_length=40, pattern=r"^[0-9+()./\- ]{3,40}$", examples=["+1 206 555 0100"])]
Label = line(100)
Hours = Annotated[Decimal, Field(ge=0, le=168, max_digits=5, decimal_places=2)]

MAX_CONTACTS_PER_INTERACTION = 50
MAX_IMPORT_ROWS = 2000
# The CSV columns that name a contact's owner (the gateway turns emails in them into user ids).
OWNER_COLUMNS = ("owner", "contact_owner", "relationship_owner", "person")


def column_key(name: str) -> str:
    """A CSV header as the import compares it: lower case, spaces and dashes as underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower().lstrip("\ufeff"))


class InteractionKind(StrEnum):
    meeting = "meeting"
    call = "call"
    email = "email"
    event = "event"
    message = "message"


class Initiator(StrEnum):
    """Who started the touch: a reply from them shows the relationship works both ways."""

    us = "us"
    them = "them"


class Seniority(StrEnum):
    executive = "executive"
    director = "director"
    manager = "manager"
    individual = "individual"


class Band(StrEnum):
    """Where a strength falls: cold below the cold threshold, strong from 60."""

    none = "none"
    cold = "cold"
    warm = "warm"
    strong = "strong"


class InteractionSource(StrEnum):
    manual = "manual"
    calendar = "calendar"
    import_ = "import"


# AWS's own titles first; the list is a setting.
DEFAULT_ROLES: tuple[str, ...] = (
    "PDM", "PSM", "Account manager", "Solution architect", "ISV success", "Partner sales", "Marketplace",
    "Alliance lead", "Executive sponsor", "Other",
)


class StrengthSettings(BaseModel):
    """How strength is computed (docs/contacts.md): each touch weighs its kind, halves every
    `half_life_days`, and the sum saturates at `saturation` (e.g. one meeting today is 63)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    half_life_days: Annotated[Decimal, Field(ge=1, le=3650, max_digits=6, decimal_places=2)] = Decimal(30)
    saturation: Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=2)] = Decimal(3)
    cold_threshold: Annotated[int, Field(ge=1, le=99)] = 30
    warning_days: Annotated[int, Field(
        ge=0, le=365, description="Cooling alert this many days before a crucial contact goes cold.")] = 14
    weights: dict[InteractionKind, Annotated[Decimal, Field(ge=0, le=100, max_digits=6, decimal_places=2)]] = Field(
        default_factory=lambda: {InteractionKind.meeting: Decimal(3), InteractionKind.event: Decimal(2),
                                 InteractionKind.call: Decimal(2), InteractionKind.message: Decimal(1),
                                 InteractionKind.email: Decimal(1)})
    one_way_factor: Annotated[Decimal, Field(ge=0, le=1, max_digits=3, decimal_places=2,
                                             description="An email or message we sent, not (yet) answered.")] = Decimal(
        "0.5")
    seniority: dict[Seniority, Annotated[Decimal, Field(ge=0, le=10, max_digits=4, decimal_places=2)]] = Field(
        default_factory=lambda: {Seniority.executive: Decimal("1.5"), Seniority.director: Decimal("1.25"),
                                 Seniority.manager: Decimal(1), Seniority.individual: Decimal("0.8")})


class Efforts(BaseModel):
    """Hours each kind of action takes, for filling a member's week."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    touch: Hours = Decimal("0.5")
    crucial_touch: Hours = Decimal(1)
    ace_action: Hours = Decimal(1)
    deadline: Hours = Field(default=Decimal(2), description="A funding claim or competency item due.")


class RelationshipSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strength: StrengthSettings = StrengthSettings()
    roles: tuple[Label, ...] = Field(default=DEFAULT_ROLES, min_length=1, max_length=100)
    efforts: Efforts = Efforts()
    default_capacity_hours: Hours = Decimal(4)
    horizon_days: Annotated[int, Field(
        ge=1, le=365, description="How far ahead the attention list looks for cooling and deadlines.")] = 30
    version: int = 0


# ----------------------------------------------------------------------------------------- contacts


class Strength(BaseModel):
    """A contact's strength now, and when it goes cold without a new touch."""

    score: int = Field(ge=0, le=100)
    band: Band
    last_touch_at: datetime | None
    cold_at: datetime | None = Field(description="When the score falls below the cold threshold (past if it has).")
    days_until_cold: int | None
    touches: int


class Contact(BaseModel):
    id: UUID
    partner_id: UUID
    partner_name: str
    name: str
    email: str | None
    phone: str | None
    role: str | None
    title: str | None
    territory: str | None
    segment: str | None
    seniority: Seniority
    reports_to: UUID | None
    owner: str | None = Field(description="The team member who owns the relationship (user id).")
    crucial: bool
    archived: bool
    version: int
    created_at: datetime
    updated_at: datetime
    strength: Strength
    value_at_stake: Decimal = Field(description="Open pipeline that depends on the contact (reporting currency).")
    currency: str


class ContactSnapshot(BaseModel):
    """A contact as its events carry it (no derived figures)."""

    id: UUID
    partner_id: UUID
    name: str
    email: str | None
    role: str | None
    territory: str | None
    seniority: Seniority
    owner: str | None
    crucial: bool
    archived: bool
    version: int


class ContactCreatedV1(Event):
    """Sent when a contact at a partner organisation is added (by hand, by import, or from a co-sell deal)."""

    subject: ClassVar[str] = "relationships.contact.created.v1"
    stream: ClassVar[StreamSpec] = STREAM
    schema_version: Literal[1] = 1
    contact: ContactSnapshot

    def aggregate_key(self) -> str:
        return f"contact:{self.contact.id}"


class ContactUpdatedV1(Event):
    """Sent when a contact's details, owner, crucial flag or archived state change."""

    subject: ClassVar[str] = "relationships.contact.updated.v1"
    stream: ClassVar[StreamSpec] = STREAM
    schema_version: Literal[1] = 1
    contact: ContactSnapshot
    changed: tuple[str, ...] = ()

    def aggregate_key(self) -> str:
        return f"contact:{self.contact.id}"


class ContactCoolingV1(Event):
    """Sent once per crossing when a crucial contact will go cold within the warning window (or has)."""

    subject: ClassVar[str] = "relationships.contact.cooling.v1"
    stream: ClassVar[StreamSpec] = STREAM
    schema_version: Literal[1] = 1
    contact_id: UUID
    contact_name: str
    partner_id: UUID
    partner_name: str
    owner: str | None
    score: int
    cold_threshold: int
    cold_at: datetime
    days_until_cold: int = Field(description="Zero or less: already cold.")
    last_touch_at: datetime | None
    value_at_stake: Decimal
    currency: str
    link: str = Field(description="The page to look at, relative to the gateway: /contacts/<id>.")

    def aggregate_key(self) -> str:
        return f"contact:{self.contact_id}"


class InteractionLoggedV1(Event):
    """Sent when a meeting, call, email, event or message with partner contacts is logged."""

    subject: ClassVar[str] = "relationships.interaction.logged.v1"
    stream: ClassVar[StreamSpec] = STREAM
    schema_version: Literal[1] = 1
    interaction_id: UUID
    kind: InteractionKind
    occurred_at: datetime
    contact_ids: tuple[UUID, ...]
    partner_id: UUID | None
    opportunity_id: UUID | None
    initiated_by: Initiator
    logged_by: str | None

    def aggregate_key(self) -> str:
        return f"interaction:{self.interaction_id}"


EVENTS: tuple[type[Event], ...] = (ContactCreatedV1, ContactUpdatedV1, ContactCoolingV1, InteractionLoggedV1)


class ContactFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    role: Label | None = None
    title: line(200) | None = None
    territory: Label | None = None
    segment: Label | None = None
    seniority: Seniority | None = None
    reports_to: UUID | None = None
    owner: Person | None = None
    crucial: bool | None = None


class CreateContact(Command):
    """Add a contact at a partner organisation (the partner must be known)."""

    subject: ClassVar[str] = "cmd.relationships.contact.create"
    result: ClassVar[type[BaseModel]] = Contact

    partner_id: UUID
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    role: Label | None = None
    title: line(200) | None = None
    territory: Label | None = None
    segment: Label | None = None
    seniority: Seniority = Seniority.manager
    reports_to: UUID | None = None
    owner: Person | None = None
    crucial: bool = False


class UpdateContact(Command):
    """Change a contact; only the fields present in `set` change (null clears)."""

    subject: ClassVar[str] = "cmd.relationships.contact.update"
    result: ClassVar[type[BaseModel]] = Contact

    contact_id: UUID
    expected_version: Version | None = None
    partner_id: UUID | None = None
    archived: bool | None = None
    set: ContactFields = ContactFields()

    def model_dump_json(self, **kwargs: Any) -> str:
        # Only the fields that were set travel, so an explicit null can mean "clear".
        kwargs.setdefault("exclude_unset", True)
        return super().model_dump_json(**kwargs)

    @model_validator(mode="after")
    def _name_kept(self) -> UpdateContact:
        if "name" in self.set.model_fields_set and self.set.name is None:
            raise ValueError("a contact keeps a name")
        return self


class ContactSort(StrEnum):
    name = "name"
    strength = "strength"
    strength_desc = "-strength"
    cold_at = "cold_at"
    stake_desc = "-stake"
    last_touch_desc = "-last_touch"


class ContactList(BaseModel):
    items: list[Contact]
    total: int
    offset: int
    limit: int
    currency: str


class ListContacts(Command):
    """Contacts, filtered by text (name, email, organisation), organisation, owner, role, crucial."""

    subject: ClassVar[str] = "cmd.relationships.contact.list"
    result: ClassVar[type[BaseModel]] = ContactList

    q: line(200) | None = None
    partner_id: UUID | None = None
    owner: Person | None = None
    role: Label | None = None
    crucial: bool | None = None
    include_archived: bool = False
    sort: ContactSort = ContactSort.name
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=500)


class Interaction(BaseModel):
    id: UUID
    kind: InteractionKind
    occurred_at: datetime
    initiated_by: Initiator
    contacts: list[tuple[UUID, str]]
    partner_id: UUID | None
    opportunity_id: UUID | None
    opportunity_name: str | None = None
    note: str | None
    source: InteractionSource
    logged_by: str | None
    created_at: datetime


class LinkedDeal(BaseModel):
    opportunity_id: UUID
    name: str
    stage: str
    amount: Decimal
    currency: str
    outcome: str
    via: str = Field(description="'linked' (named on the deal or by hand) or 'organisation'")


class StrengthPoint(BaseModel):
    day: date
    score: int


class ContactDetail(BaseModel):
    contact: Contact
    interactions: list[Interaction]
    deals: list[LinkedDeal]
    history: list[StrengthPoint]
    reports: list[tuple[UUID, str]] = Field(default_factory=list, description="Who reports to this contact.")
    manager_name: str | None = None


class GetContact(Command):
    """One contact with its strength, interactions, linked deals and strength over the last year."""

    subject: ClassVar[str] = "cmd.relationships.contact.get"
    result: ClassVar[type[BaseModel]] = ContactDetail

    contact_id: UUID


class LogInteraction(Command):
    """Log a touch with one or more contacts. A calendar `uid` makes it idempotent."""

    subject: ClassVar[str] = "cmd.relationships.interaction.log"
    result: ClassVar[type[BaseModel]] = Interaction

    kind: InteractionKind
    occurred_at: Moment
    contact_ids: tuple[UUID, ...] = Field(min_length=1, max_length=MAX_CONTACTS_PER_INTERACTION)
    initiated_by: Initiator = Initiator.us
    partner_id: UUID | None = None
    opportunity_id: UUID | None = None
    note: text(4000) | None = None
    uid: line(500, 1, description="The calendar event's UID, so the same meeting is logged once.") | None = None


class DeleteInteraction(Command):
    """Remove an interaction logged by mistake; the contacts' strengths are computed again."""

    subject: ClassVar[str] = "cmd.relationships.interaction.delete"
    result: ClassVar[type[BaseModel]] = Interaction

    interaction_id: UUID


class RowError(BaseModel):
    row: int
    field: str | None
    message: str


class ImportResult(BaseModel):
    rows: int
    created: int
    updated: int
    skipped: int = 0
    errors: list[RowError]
    stored: bool


class ContactImportFormat(StrEnum):
    csv = "csv"
    vcard = "vcard"


class ImportContacts(Command):
    """Contacts from a CSV (HubSpot/Monday exports: header row, one contact a row; owners as user ids) or
    a vCard file: all rows stored or none, every bad row named. A contact is matched by email within its
    organisation (updated), else created."""

    subject: ClassVar[str] = "cmd.relationships.contact.import"
    result: ClassVar[type[BaseModel]] = ImportResult

    format: ContactImportFormat
    columns: list[line(100)] = Field(default_factory=list, max_length=100, description="CSV: the header row.")
    rows: list[list[text(2000)]] = Field(default_factory=list, max_length=MAX_IMPORT_ROWS,
                                         description="CSV: the rows after the header (row 2 first).")
    content: text(900_000) | None = Field(default=None, description="vCard: the file's text.")
    default_partner_id: UUID | None = Field(default=None, description="Organisation for rows that name none.")

    @model_validator(mode="after")
    def _shape(self) -> ImportContacts:
        if self.format == ContactImportFormat.csv and not self.columns:
            raise ValueError("a CSV import needs its header row (columns)")
        if self.format == ContactImportFormat.vcard and not self.content:
            raise ValueError("a vCard import needs the file's content")
        if any(len(r) > 100 for r in self.rows):
            raise ValueError("a row has more than 100 cells")
        return self


class ImportCalendar(Command):
    """Meetings from an .ics calendar export: events with a known contact among the attendees become
    meetings with them, once per event UID (an event seen again updates nothing)."""

    subject: ClassVar[str] = "cmd.relationships.interaction.import_calendar"
    result: ClassVar[type[BaseModel]] = ImportResult

    content: text(900_000, 1)


# ----------------------------------------------------------------------------- heatmap, attention


class HeatCell(BaseModel):
    contact_id: UUID
    name: str
    role: str | None
    score: int
    band: Band
    crucial: bool
    value_at_stake: Decimal
    days_until_cold: int | None


class HeatRow(BaseModel):
    key: str
    label: str
    value_at_stake: Decimal = Field(description="Open pipeline of the group (each deal once).")
    contacts: int
    average_score: int
    cells: list[HeatCell] = Field(description="The group's contacts by value at stake, at most `per_row`.")


class Heatmap(BaseModel):
    group_by: str
    currency: str
    rows: list[HeatRow]
    unconverted_currencies: list[str] = Field(default_factory=list)


class HeatmapGroup(StrEnum):
    organisation = "organisation"
    owner = "owner"


class GetHeatmap(Command):
    """Strength against value at stake, by organisation or by owning team member."""

    subject: ClassVar[str] = "cmd.relationships.heatmap"
    result: ClassVar[type[BaseModel]] = Heatmap

    group_by: HeatmapGroup = HeatmapGroup.organisation
    crucial_only: bool = False
    rows: int = Field(default=30, ge=1, le=200)
    per_row: int = Field(default=40, ge=1, le=500)


class ActionKind(StrEnum):
    touch = "touch"
    ace_action = "ace_action"
    deadline = "deadline"  # a funding or competency deadline (contracts/deadlines.py)


class AttentionItem(BaseModel):
    rank: int
    kind: ActionKind
    owner: str | None
    title: str
    link: str
    priority: float
    effort_hours: Decimal
    value_at_stake: Decimal
    within_capacity: bool
    # What the rank is made of, for the words that explain it.
    crucial: bool = False
    score: int | None = Field(default=None, description="Strength now; none if never touched.")
    days_until_cold: int | None = None
    last_touch_days: int | None = None
    due_in_days: int | None = Field(default=None, description="For a deadline: days until due (negative: overdue).")
    what: str = Field(default="", description="For a deadline: what is due.")
    contact_id: UUID | None = None
    opportunity_id: UUID | None = None
    deadline_key: str | None = None


class MemberWeek(BaseModel):
    owner: str | None
    capacity_hours: Decimal
    planned_hours: Decimal
    items: list[AttentionItem]
    outside: list[AttentionItem] = Field(description="The highest ranked of what does not fit (at most 25).")
    outside_total: int = 0


class Attention(BaseModel):
    as_of: datetime
    currency: str
    members: list[MemberWeek]


class GetAttention(Command):
    """The ranked list for the week: one member's (owner) or the whole team's, filled to each capacity."""

    subject: ClassVar[str] = "cmd.relationships.attention"
    result: ClassVar[type[BaseModel]] = Attention

    owner: Person | None = None
    members: tuple[Person, ...] = Field(default=(), max_length=500,
                                        description="Team members to show even when nothing is ranked for them.")
    as_of: Moment | None = None


class Capacity(BaseModel):
    owner: str
    hours_per_week: Decimal


class SetCapacity(Command):
    """A member's hours per week for relationship work."""

    subject: ClassVar[str] = "cmd.relationships.capacity.set"
    result: ClassVar[type[BaseModel]] = Capacity

    owner: Person
    hours_per_week: Hours


class GetRelationshipSettings(Command):
    subject: ClassVar[str] = "cmd.relationships.settings.get"
    result: ClassVar[type[BaseModel]] = RelationshipSettings


class UpdateRelationshipSettings(Command):
    """Change how strength is computed, the roles list or effort estimates; strengths are recomputed."""

    subject: ClassVar[str] = "cmd.relationships.settings.update"
    result: ClassVar[type[BaseModel]] = RelationshipSettings

    settings: RelationshipSettings
    expected_version: Version | None = None


class Health(BaseModel):
    """The dashboard's relationship health."""

    currency: str
    contacts: int
    distribution: list[tuple[str, int]] = Field(description="Contacts per strength band (0-19, 20-39, ...).")
    crucial: int
    crucial_cooling: list[Contact]
    weak_value_at_stake: Decimal = Field(description="Open pipeline whose best contact is below the cold threshold.")
    cold_threshold: int


class GetRelationshipHealth(Command):
    subject: ClassVar[str] = "cmd.relationships.health_summary"
    result: ClassVar[type[BaseModel]] = Health


class CoolingScan(BaseModel):
    published: int


class ScanCooling(Command):
    """Publish the cooling alerts due now (crucial contacts inside the warning window, once per crossing).
    Reads only the contacts whose cold date is near (an index), never every contact."""

    subject: ClassVar[str] = "cmd.relationships.contact.scan_cooling"
    result: ClassVar[type[BaseModel]] = CoolingScan

    as_of: Moment | None = None
