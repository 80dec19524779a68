"""Relationships: contacts at partner organisations, interactions logged with them, imports (CSV,
vCard, .ics), the strength heatmap, the ranked attention list, capacities, settings and health."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts import contacts as c
from contracts.fields import Moment, Name, Offset, Person, line, text
from gateway import attention_words, audit, people, pipeline_csv
from gateway.auth import Principal, Role, require
from gateway.state import bus
from gateway.uploads import upload_text
from runtime.commands import send

router = APIRouter(prefix="/api", tags=["relationships"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="relationships:read"))]
Writer = Annotated[Principal, Depends(require(Role.member, scope="relationships:write"))]
Manager = Annotated[Principal, Depends(require(Role.manager, scope="relationships:write"))]
Admin = Annotated[Principal, Depends(require(Role.admin, scope="relationships:admin"))]

# A contacts file or a calendar export: the service gets it in one command (all rows or none), which
# must fit one NATS message.
MAX_FILE_BYTES = 900_000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ContactIn(_In):
    partner_id: UUID = Field(description="The partner organisation the contact works for.")
    name: Name
    email: c.Email | None = None
    phone: c.Phone | None = None
    role: c.Label | None = Field(default=None, description="One of the configured roles (PDM, PSM, ...).")
    title: line(200) | None = None
    territory: c.Label | None = None
    segment: c.Label | None = None
    seniority: c.Seniority = c.Seniority.manager
    reports_to: UUID | None = None
    owner: Person | None = Field(default=None, description="The team member who owns the relationship: email or "
                                 "user id (stored as the id).")
    crucial: bool = False


class ContactPatch(c.ContactFields):
    """Only the fields sent change; null clears."""

    expected_version: c.Version | None = Field(default=None, description="Answer 409 if the contact changed since.")
    partner_id: UUID | None = None
    archived: bool | None = None


class InteractionIn(_In):
    kind: c.InteractionKind
    occurred_at: Moment = Field(default_factory=lambda: datetime.now(UTC))
    contact_ids: list[UUID] = Field(min_length=1, max_length=c.MAX_CONTACTS_PER_INTERACTION)
    initiated_by: c.Initiator = c.Initiator.us
    partner_id: UUID | None = None
    opportunity_id: UUID | None = None
    note: text(4000) | None = None


class CapacityIn(_In):
    owner: Person | None = Field(default=None, description="Whose capacity (email or user id); yourself if left out. "
                                 "Managers set anyone's.")
    hours_per_week: c.Hours


class SettingsIn(_In):
    settings: c.RelationshipSettings
    expected_version: c.Version | None = None


class AttentionLine(c.AttentionItem):
    reason: str = Field(description="Why it ranks where it does, in words.")
    owner_name: str


class MemberWeekOut(BaseModel):
    owner: str | None
    owner_name: str
    capacity_hours: Decimal
    planned_hours: Decimal
    items: list[AttentionLine]
    outside: list[AttentionLine] = Field(description="Ranked, but beyond the member's capacity this week (the "
                                         "highest 25).")
    outside_total: int = 0


class AttentionOut(BaseModel):
    as_of: datetime
    currency: str
    members: list[MemberWeekOut]


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body", field], "msg": message, "type": "invalid"}])


# ------------------------------------------------------------------------------------- contacts


@router.get("/contacts", response_model=c.ContactList)
async def list_contacts(
    request: Request, principal: Reader,
    q: Annotated[line(200) | None, Query(description="Part of the name, email or organisation.")] = None,
    partner_id: UUID | None = None,
    owner: Annotated[Person | None, Query(description="Email or user id.")] = None,
    role: Annotated[c.Label | None, Query()] = None,
    crucial: bool | None = None,
    include_archived: bool = False,
    sort: c.ContactSort = c.ContactSort.name,
    offset: Annotated[Offset, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> c.ContactList:
    return await send(bus(request), c.ListContacts(
        q=q, partner_id=partner_id, owner=await people.owner_filter(request, owner), role=role, crucial=crucial,
        include_archived=include_archived, sort=sort, offset=offset, limit=limit, actor=principal.name))


@router.post("/contacts", status_code=201, response_model=c.Contact)
async def create_contact(body: ContactIn, request: Request, principal: Writer) -> c.Contact:
    fields = body.model_dump() | {"owner": await people.owner_id(request, body.owner)}
    contact: c.Contact = await send(bus(request), c.CreateContact(**fields, actor=principal.name))
    await audit.record_change(request, principal.name, "contact.created", entity="contact", entity_id=contact.id,
                              after=contact)
    return contact


@router.get("/contacts/{contact_id}", response_model=c.ContactDetail)
async def get_contact(contact_id: UUID, request: Request, principal: Reader) -> c.ContactDetail:
    return await send(bus(request), c.GetContact(contact_id=contact_id, actor=principal.name))


@router.patch("/contacts/{contact_id}", response_model=c.Contact)
async def update_contact(contact_id: UUID, body: ContactPatch, request: Request, principal: Writer) -> c.Contact:
    changes = body.model_dump(exclude_unset=True, exclude={"expected_version", "partner_id", "archived"})
    if changes.get("owner"):
        changes["owner"] = await people.owner_id(request, changes["owner"])
    contact: c.Contact = await send(bus(request), c.UpdateContact(
        contact_id=contact_id, expected_version=body.expected_version, partner_id=body.partner_id,
        archived=body.archived, set=c.ContactFields.model_validate(changes), actor=principal.name))
    await audit.record_change(request, principal.name, "contact.updated", entity="contact", entity_id=contact_id,
                              after=body.model_dump(mode="json", exclude_unset=True))
    return contact


async def _file_text(request: Request) -> str:
    """The uploaded file's text: the body itself, or the form field `file`."""
    text = await upload_text(request, MAX_FILE_BYTES, missing="send the file as the form field 'file'",
                             too_large=f"the file is larger than {MAX_FILE_BYTES // 1000} KB; split it")
    if not text.strip():
        raise _unprocessable("file", "the file is empty")
    return text


def import_detail(result: c.ImportResult) -> list[dict[str, object]]:
    return [{"loc": ["body", "rows", e.row, *([e.field] if e.field else [])], "msg": e.message, "type": "invalid"}
            for e in result.errors]


async def import_contacts_file(request: Request, principal: Principal, content: str, fmt: c.ContactImportFormat,
                               partner_id: UUID | None) -> c.ImportResult:
    """Send a CSV or vCard file to the service: owners named by email become user ids first, and a row
    whose owner is not a team member is refused with its number."""
    if fmt == c.ContactImportFormat.vcard:
        return await send(bus(request), c.ImportContacts(format=fmt, content=content, default_partner_id=partner_id,
                                                         actor=principal.name), timeout=120)
    header, rows = pipeline_csv.parse(content)
    if len(rows) > c.MAX_IMPORT_ROWS:
        raise _unprocessable("file", f"at most {c.MAX_IMPORT_ROWS} contacts a file; split it")
    directory = await people.directory(request, fresh=True)
    owner_col = next((i for i, h in enumerate(header) if c.column_key(h) in c.OWNER_COLUMNS), None)
    errors: list[c.RowError] = []
    if owner_col is not None:
        for number, row in enumerate(rows, start=2):
            if owner_col < len(row) and row[owner_col].strip():
                member = directory.find(row[owner_col])
                if member is None:
                    errors.append(c.RowError(row=number, field="owner", message=f"{row[owner_col].strip()!r} is not "
                                             "a team member; give their email"))
                else:
                    row[owner_col] = member.id
    if errors:
        return c.ImportResult(rows=len(rows), created=0, updated=0, errors=errors, stored=False)
    return await send(bus(request), c.ImportContacts(format=fmt, columns=header, rows=rows,
                                                     default_partner_id=partner_id, actor=principal.name), timeout=120)


@router.post("/contacts/import", response_model=c.ImportResult, max_body_size=MAX_FILE_BYTES + 64_000,
             responses={422: {"description": "Bad rows (with their row numbers); nothing was stored."},
                        413: {"description": "The file is too large."}})
async def import_contacts(request: Request, principal: Writer,
                          format: c.ContactImportFormat = c.ContactImportFormat.csv,
                          partner_id: Annotated[UUID | None, Query(description="Organisation for rows that name "
                                                                   "none.")] = None) -> JSONResponse:
    result = await import_contacts_file(request, principal, await _file_text(request), format, partner_id)
    if not result.stored:
        return JSONResponse({"detail": import_detail(result), "result": result.model_dump(mode="json")},
                            status_code=422)
    await audit.record_change(request, principal.name, "contacts.imported", entity="contact",
                              after={"rows": result.rows, "created": result.created, "updated": result.updated})
    return JSONResponse(result.model_dump(mode="json"))


# ---------------------------------------------------------------------------------- interactions


@router.post("/interactions", status_code=201, response_model=c.Interaction)
async def log_interaction(body: InteractionIn, request: Request, principal: Writer) -> c.Interaction:
    return await send(bus(request), c.LogInteraction(**body.model_dump() | {"contact_ids": tuple(body.contact_ids)},
                                                     actor=principal.name))


@router.delete("/interactions/{interaction_id}", response_model=c.Interaction)
async def delete_interaction(interaction_id: UUID, request: Request, principal: Writer) -> c.Interaction:
    removed: c.Interaction = await send(bus(request), c.DeleteInteraction(interaction_id=interaction_id,
                                                                          actor=principal.name))
    await audit.record_change(request, principal.name, "interaction.deleted", entity="interaction",
                              entity_id=interaction_id, before=removed)
    return removed


@router.post("/interactions/calendar", response_model=c.ImportResult, max_body_size=MAX_FILE_BYTES + 64_000,
             responses={413: {"description": "The file is too large."}})
async def import_calendar(request: Request, principal: Writer) -> c.ImportResult:
    """An .ics export: meetings with known contacts become interactions, once per event UID."""
    return await send(bus(request), c.ImportCalendar(content=await _file_text(request), actor=principal.name),
                      timeout=120)


# ------------------------------------------------------------------------- heatmap, attention, ...


@router.get("/relationships/heatmap", response_model=c.Heatmap)
async def heatmap(request: Request, principal: Reader, group_by: c.HeatmapGroup = c.HeatmapGroup.organisation,
                  crucial_only: bool = False, rows: Annotated[int, Query(ge=1, le=200)] = 30,
                  per_row: Annotated[int, Query(ge=1, le=500)] = 40) -> c.Heatmap:
    return await send(bus(request), c.GetHeatmap(group_by=group_by, crucial_only=crucial_only, rows=rows,
                                                 per_row=per_row, actor=principal.name))


async def attention_for(request: Request, principal: Principal, owner: str | None) -> AttentionOut:
    directory = await people.directory(request)
    members = tuple(m.id for m in directory.by_id.values() if m.active) if owner is None else ()
    result: c.Attention = await send(bus(request), c.GetAttention(owner=owner, members=members,
                                                                  actor=principal.name))

    def line_of(item: c.AttentionItem) -> AttentionLine:
        return AttentionLine(**item.model_dump(), reason=attention_words.reason(item, result.currency),
                             owner_name=directory.name(item.owner) or "Unassigned")

    return AttentionOut(as_of=result.as_of, currency=result.currency, members=[
        MemberWeekOut(owner=w.owner, owner_name=directory.name(w.owner) or "Unassigned",
                      capacity_hours=w.capacity_hours,
                      planned_hours=w.planned_hours, items=[line_of(i) for i in w.items],
                      outside=[line_of(i) for i in w.outside], outside_total=w.outside_total)
        for w in result.members])


@router.get("/relationships/attention", response_model=AttentionOut)
async def attention(request: Request, principal: Reader,
                    owner: Annotated[Person | None, Query(description="One member's list (email or user id); the "
                                                          "whole team's without.")] = None) -> AttentionOut:
    return await attention_for(request, principal, await people.owner_filter(request, owner))


@router.put("/relationships/capacity", response_model=c.Capacity)
async def set_capacity(body: CapacityIn, request: Request, principal: Writer) -> c.Capacity:
    owner = await people.owner_id(request, body.owner) if body.owner else None
    if owner is None:
        if principal.kind != "user":
            raise _unprocessable("owner", "a token must name whose capacity it sets")
        owner = principal.id
    if owner != principal.id and principal.kind == "user" and principal.role.rank < Role.manager.rank:
        raise HTTPException(403, detail="only managers set another member's capacity")
    result: c.Capacity = await send(bus(request), c.SetCapacity(owner=owner, hours_per_week=body.hours_per_week,
                                                                actor=principal.name))
    await audit.record_change(request, principal.name, "capacity.set", entity="member", entity_id=owner,
                              after=result)
    return result


@router.get("/relationships/settings", response_model=c.RelationshipSettings)
async def get_settings(request: Request, principal: Reader) -> c.RelationshipSettings:
    return await send(bus(request), c.GetRelationshipSettings(actor=principal.name))


@router.put("/relationships/settings", response_model=c.RelationshipSettings)
async def update_settings(body: SettingsIn, request: Request, principal: Admin) -> c.RelationshipSettings:
    before: c.RelationshipSettings = await send(bus(request), c.GetRelationshipSettings(actor=principal.name))
    after: c.RelationshipSettings = await send(bus(request), c.UpdateRelationshipSettings(
        settings=body.settings, expected_version=body.expected_version, actor=principal.name), timeout=120)
    await audit.record_change(request, principal.name, "relationship_settings.updated", entity="settings",
                              before=before, after=after)
    return after


@router.get("/relationships/health", response_model=c.Health)
async def health(request: Request, principal: Reader) -> c.Health:
    return await send(bus(request), c.GetRelationshipHealth(actor=principal.name))


@router.post("/relationships/cooling/scan", response_model=c.CoolingScan)
async def scan_cooling(request: Request, principal: Admin) -> c.CoolingScan:
    """Publish the cooling alerts due now (the notification service's schedule does this daily)."""
    return await send(bus(request), c.ScanCooling(actor=principal.name), timeout=120)
