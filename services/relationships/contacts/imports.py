"""Contacts from CSV and vCard files, meetings from .ics calendar exports. Never commits.

Contacts: every row is checked before anything is written; one bad row and nothing is stored, every
bad row named (the existing CSV import's rule). A row whose email is known at its organisation updates
that contact (the cells it fills), any other row creates one.

Calendars are messier (invitations without attendees we know, cancelled events, events in the
future): those are skipped and counted; an event that cannot be read is named, and the others are
still logged — once per UID, so uploading the same export twice changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import contacts as c
from contracts.fields import Person
from runtime.errors import DomainError, Invalid
from runtime.outbox import add_event
from services.relationships.contacts import formats, service
from services.relationships.contacts.config import settings_of
from services.relationships.contacts.models import SCHEMA, Contact
from services.relationships.contacts.repository import ContactRepository

_PERSON: TypeAdapter[Any] = TypeAdapter(Person)


@dataclass
class Parsed:
    row: int
    partner_id: uuid.UUID
    fields: dict[str, Any]
    reports_to_email: str = ""


def _error(row: int, field: str | None, message: str) -> c.RowError:
    return c.RowError(row=row, field=field, message=message)


def _field_error(row: int, exc: ValidationError) -> c.RowError:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    return _error(row, loc[0] if loc else None, str(first["msg"]).removeprefix("Value error, "))


async def _organisation(repo: ContactRepository, row: int, name: str, partner_id: str,
                        default: uuid.UUID | None) -> tuple[uuid.UUID | None, c.RowError | None]:
    if partner_id:
        try:
            pid = uuid.UUID(partner_id)
        except ValueError:
            return None, _error(row, "partner_id", f"{partner_id!r} is not a partner id")
        org = await repo.org(pid)
        if org is None or org.archived:
            return None, _error(row, "partner_id", f"no partner organisation with id {partner_id}")
        return pid, None
    if name:
        found = await repo.org_by_name(name)
        if len(found) == 1:
            return found[0].id, None
        return None, _error(row, "organisation", f"no partner named {name!r}; add the partner first" if not found
                            else f"{len(found)} partners are named {name!r}; give partner_id")
    if default is not None:
        return default, None
    return None, _error(row, "organisation", "no organisation: fill the company column or choose one for the file")


async def _parse_row(repo: ContactRepository, settings: c.RelationshipSettings, number: int, values: dict[str, str],
                     default: uuid.UUID | None) -> tuple[Parsed | None, list[c.RowError]]:
    errors: list[c.RowError] = []
    partner_id, problem = await _organisation(repo, number, values.get("organisation", ""),
                                              values.get("partner_id", ""), default)
    if problem:
        errors.append(problem)
    raw: dict[str, Any] = {k: values[k] for k in ("name", "email", "phone", "title", "territory", "segment")
                           if values.get(k)}
    if values.get("seniority"):
        raw["seniority"] = values["seniority"].strip().lower()
    if values.get("owner"):
        raw["owner"] = values["owner"]
    try:
        if values.get("crucial") is not None and values.get("crucial", "") != "":
            raw["crucial"] = formats.flag(values["crucial"])
    except ValueError as exc:
        errors.append(_error(number, "crucial", str(exc)))
    try:
        fields = c.ContactFields.model_validate(raw).model_dump(exclude_unset=True)
    except ValidationError as exc:
        errors.append(_field_error(number, exc))
        fields = {}
    if not values.get("name"):
        errors.append(_error(number, "name", "a contact needs a name"))
    if values.get("role"):
        try:
            fields["role"] = service.role_named(settings, values["role"])
        except DomainError as exc:
            errors.append(_error(number, "role", exc.message))
    if errors or partner_id is None:
        return None, errors
    return Parsed(number, partner_id, fields, values.get("reports_to", "").lower()), []


def _csv_values(cmd: c.ImportContacts) -> tuple[int, list[tuple[int, dict[str, str]]], list[c.RowError]]:
    columns, problems = formats.map_columns(cmd.columns)
    errors = [_error(1, col, message) for col, message in problems]
    rows = []
    for i, row in enumerate(cmd.rows):
        if not any(x.strip() for x in row):
            continue
        values = {k: formats.cell(row, columns, k) for k in columns}
        values["name"] = formats.full_name(row, columns)
        rows.append((i + 2, values))
    return len(rows), rows, errors


def _vcard_values(cmd: c.ImportContacts) -> tuple[int, list[tuple[int, dict[str, str]]], list[c.RowError]]:
    cards, problems = formats.vcards(cmd.content or "")
    errors = [_error(n, "name", message) for n, message in problems]
    bad = {n for n, _ in problems}
    cards = [card for card in cards if card.number not in bad]
    if not cards and not errors:
        errors.append(_error(1, None, "no vCard (BEGIN:VCARD ... END:VCARD) in the file"))
    total = len(cards) + len(bad)
    return total, [(card.number, {"name": card.name, "email": card.email, "phone": card.phone,
                           "organisation": card.organisation, "title": card.title, "role": card.role})
            for card in cards], errors


async def import_contacts(session: AsyncSession, cmd: c.ImportContacts) -> c.ImportResult:
    repo = ContactRepository(session)
    settings = await settings_of(session)
    if cmd.default_partner_id is not None:
        org = await repo.org(cmd.default_partner_id)
        if org is None or org.archived:
            raise Invalid(f"no partner organisation with id {cmd.default_partner_id}",
                                  field="default_partner_id")
    total, values, errors = _csv_values(cmd) if cmd.format == c.ContactImportFormat.csv else _vcard_values(cmd)
    parsed: list[Parsed] = []
    seen: dict[tuple[uuid.UUID, str], int] = {}
    for number, row in values:
        one, row_errors = await _parse_row(repo, settings, number, row, cmd.default_partner_id)
        errors += row_errors
        if one is None:
            continue
        email = (one.fields.get("email") or "").lower()
        if email and (one.partner_id, email) in seen:
            errors.append(_error(number, "email", f"{email} is also on row {seen[(one.partner_id, email)]}"))
            continue
        if email:
            seen[(one.partner_id, email)] = number
        parsed.append(one)
    if errors:
        return c.ImportResult(rows=total, created=0, updated=0, errors=sorted(errors, key=lambda e: e.row),
                              stored=False)
    created: set[uuid.UUID] = set()
    updated: set[uuid.UUID] = set()
    stored: list[tuple[Parsed, Contact]] = []
    for one in parsed:
        email = one.fields.get("email")
        existing = await repo.by_email(one.partner_id, email) if email else None
        if existing is None:
            contact = await service.new_contact(session, partner_id=one.partner_id, name=one.fields.pop("name"),
                                                actor=cmd.actor, settings=settings, **one.fields)
            created.add(contact.id)
        else:
            contact = existing
            if await _apply(session, contact, one.fields, cmd.actor, settings):
                updated.add(contact.id)
        stored.append((one, contact))
    errors = await _managers(session, stored, cmd.actor, updated)
    if errors:
        # Raised, so the command's transaction rolls back whatever rows were written: all or nothing.
        raise Invalid(f"row {errors[0].row}: {errors[0].message}", field="reports_to")
    return c.ImportResult(rows=total, created=len(created), updated=len(updated - created), errors=[],
                          stored=True)


async def _apply(session: AsyncSession, contact: Contact, fields: dict[str, Any], actor: str | None,
                 settings: c.RelationshipSettings) -> bool:
    changed = [k for k, v in fields.items() if v is not None and getattr(contact, k) != (
        v.value if isinstance(v, c.Seniority) else v)]
    if not changed:
        return False
    for k in changed:
        v = fields[k]
        setattr(contact, k, v.value if isinstance(v, c.Seniority) else v)
    if "seniority" in changed:
        service.set_energy(contact, service.energy_of(contact), settings.strength)
    contact.version += 1
    contact.updated_at = datetime.now(UTC)
    await add_event(session, SCHEMA, c.ContactUpdatedV1(contact=service.snapshot(contact), changed=tuple(changed),
                                                        correlation_id=actor))
    return True


async def _managers(session: AsyncSession, stored: list[tuple[Parsed, Contact]], actor: str | None,
                    updated: set[uuid.UUID]) -> list[c.RowError]:
    """`reports_to` names a manager by email at the same organisation (in the file or stored)."""
    repo = ContactRepository(session)
    errors = []
    for one, contact in stored:
        if not one.reports_to_email:
            continue
        manager = await repo.by_email(contact.partner_id, one.reports_to_email)
        if manager is None or manager.id == contact.id:
            errors.append(_error(one.row, "reports_to", f"no other contact with the email {one.reports_to_email} "
                                                        "at this organisation"))
            continue
        if contact.reports_to != manager.id:
            if await repo.manager_chain_has(manager.id, contact.id):
                errors.append(_error(one.row, "reports_to", "that would make a reporting loop"))
                continue
            contact.reports_to = manager.id
            contact.version += 1
            updated.add(contact.id)
            await add_event(session, SCHEMA, c.ContactUpdatedV1(contact=service.snapshot(contact),
                                                                changed=("reports_to",), correlation_id=actor))
    return errors


# -------------------------------------------------------------------------------------- calendar


async def import_calendar(session: AsyncSession, cmd: c.ImportCalendar) -> c.ImportResult:
    repo = ContactRepository(session)
    settings = await settings_of(session)
    now = datetime.now(UTC)
    events = formats.calendar_events(cmd.content)
    if not events:
        raise Invalid("no events (BEGIN:VEVENT ... END:VEVENT) in the file", field="content")
    errors: list[c.RowError] = []
    created = skipped = 0
    known = await repo.by_emails(sorted({m for e in events for m in (*e.attendees, e.organizer) if m}))
    for e in events:
        if e.problem:
            errors.append(_error(e.number, "event", e.problem))
            continue
        assert e.start is not None
        people = {x.id: x for m in dict.fromkeys((*e.attendees, e.organizer)) if m for x in known.get(m.lower(), [])}
        if e.cancelled or not people or e.start > now:
            skipped += 1
            continue
        organised_by_them = bool(e.organizer) and any(x.email and x.email.lower() == e.organizer.lower()
                                                      for x in people.values())
        try:
            stored = await service.record(
                session, kind=c.InteractionKind.meeting, occurred_at=e.start, contact_ids=list(people),
                initiated_by=c.Initiator.them if organised_by_them else c.Initiator.us, partner_id=None,
                opportunity_id=None, note=e.summary[:4000] or None, uid=e.uid[:500],
                source=c.InteractionSource.calendar,
                actor=cmd.actor, settings=settings, now=now)
        except DomainError as exc:
            errors.append(_error(e.number, exc.field, exc.message))
            continue
        if stored is None:
            skipped += 1
        else:
            created += 1
    return c.ImportResult(rows=len(events), created=created, updated=0, skipped=skipped, errors=errors, stored=True)
