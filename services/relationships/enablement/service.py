"""Enablement use cases: training modules, each partner person's certifications, and each partner's
enablement score (published when it changes). Never commits.

Each certification is its own deadline thing (`regarding_id` = the certification's id): a date to
pass by (`certification_due`, met once passed) and the day a pass lapses (`certification_expiry`,
open: it stands on the attention list as it nears, and as late once passed). The owner is the
contact's owner, else the partner's."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import deadlines as d
from contracts import enablement as e
from contracts.quarters import add_months
from runtime.errors import Conflict, NotFound
from runtime.outbox import add_events
from services.relationships.contacts.models import Contact
from services.relationships.deadlines import service as deadline_service
from services.relationships.enablement.models import CertificationRow, ModuleRow, ScoreRow
from services.relationships.pipeline_copy import PartnerRow

SCHEMA = "relationships"
# Certifications are dated in UTC: partner people and the team may span zones, a certification has none.
ZONE = "UTC"
EXPIRING_DAYS = 60
_ORDER = {e.CertificationStatus.failed: 0, e.CertificationStatus.expired: 1, e.CertificationStatus.due: 2,
          e.CertificationStatus.passed: 3}


def today() -> date:
    return datetime.now(UTC).date()


def status_of(row: CertificationRow, on: date) -> e.CertificationStatus:
    if row.passed_on is not None:
        if row.expires_on is None or row.expires_on >= on:
            return e.CertificationStatus.passed
        return e.CertificationStatus.expired
    return e.CertificationStatus.failed if row.score is not None else e.CertificationStatus.due


def score_of(covered: int, required: int) -> Decimal | None:
    if required == 0:
        return None
    return (Decimal(covered) * 100 / required).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# ------------------------------------------------------------------------------------------ modules


def module_contract(row: ModuleRow) -> e.Module:
    return e.Module(id=row.id, name=row.name, description=row.description, duration_minutes=row.duration_minutes,
                    pass_mark=row.pass_mark, valid_months=row.valid_months, required=row.required,
                    archived=row.archived, version=row.version)


async def list_modules(session: AsyncSession, cmd: e.ListModules) -> e.ModuleList:
    query = select(ModuleRow).order_by(ModuleRow.archived, ModuleRow.name)
    if not cmd.include_archived:
        query = query.where(ModuleRow.archived.is_(False))
    return e.ModuleList(items=[module_contract(r) for r in await session.scalars(query)])


async def _name_taken(session: AsyncSession, name: str, other_than: uuid.UUID | None = None) -> bool:
    query = select(ModuleRow.id).where(ModuleRow.name == name)
    if other_than is not None:
        query = query.where(ModuleRow.id != other_than)
    return await session.scalar(query) is not None


async def create_module(session: AsyncSession, cmd: e.CreateModule) -> e.Module:
    if await _name_taken(session, cmd.name):
        raise Conflict(f"a module named {cmd.name!r} already exists", field="name")
    row = ModuleRow(id=uuid.uuid4(), name=cmd.name, description=cmd.description,
                    duration_minutes=cmd.duration_minutes, pass_mark=cmd.pass_mark, valid_months=cmd.valid_months,
                    required=cmd.required, archived=False, version=1)
    session.add(row)
    await session.flush()
    if row.required:
        await refresh(session, None, actor=cmd.actor)
    return module_contract(row)


async def update_module(session: AsyncSession, cmd: e.UpdateModule) -> e.Module:
    row = await session.get(ModuleRow, cmd.module_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no module with id {cmd.module_id}", field="module_id")
    if cmd.expected_version is not None and cmd.expected_version != row.version:
        raise Conflict(f"the module changed since version {cmd.expected_version} (now {row.version})",
                       field="expected_version")
    sent = cmd.model_fields_set
    if "name" in sent and cmd.name is not None and cmd.name != row.name:
        if await _name_taken(session, cmd.name, other_than=row.id):
            raise Conflict(f"a module named {cmd.name!r} already exists", field="name")
        row.name = cmd.name
    if "description" in sent:
        row.description = cmd.description
    if "valid_months" in sent:  # null: passes never lapse (from the next attempt on)
        row.valid_months = cmd.valid_months
    for field in ("duration_minutes", "pass_mark", "required", "archived"):
        value = getattr(cmd, field)
        if field in sent and value is not None:
            setattr(row, field, value)
    row.version += 1
    await session.flush()
    await refresh(session, None, actor=cmd.actor)
    return module_contract(row)


# ----------------------------------------------------------------------------------- certifications


async def _owners(session: AsyncSession, contacts: Iterable[Contact]) -> dict[uuid.UUID, str | None]:
    """Who sees to each contact's certifications: its owner, else its partner's."""
    contacts = list(contacts)
    partners = {p.id: p.owner for p in await session.scalars(
        select(PartnerRow).where(PartnerRow.id.in_({c.partner_id for c in contacts})))} if contacts else {}
    return {c.id: c.owner or partners.get(c.partner_id) for c in contacts}


def _contract(row: CertificationRow, contact: Contact, module: ModuleRow, owner: str | None,
              on: date) -> e.Certification:
    return e.Certification(
        id=row.id, contact_id=row.contact_id, contact_name=contact.name, partner_id=row.partner_id,
        module_id=row.module_id, module_name=module.name, status=status_of(row, on), due_on=row.due_on,
        taken_on=row.taken_on, score=row.score, passed_on=row.passed_on, expires_on=row.expires_on, owner=owner,
        version=row.version)


async def _sync_deadlines(session: AsyncSession, row: CertificationRow, contact: Contact, module: ModuleRow,
                          owner: str | None, actor: str | None) -> None:
    wanted = []
    valid = status_of(row, today()) == e.CertificationStatus.passed
    if row.due_on is not None:
        wanted.append(deadline_service.Wanted(
            key=f"certification:{row.id}:due", kind=d.DeadlineKind.certification_due,
            status=d.DeadlineStatus.met if valid else d.DeadlineStatus.open,
            title=f"{contact.name}: pass {module.name}", due_date=row.due_on))
    if row.expires_on is not None:
        wanted.append(deadline_service.Wanted(
            key=f"certification:{row.id}:expiry", kind=d.DeadlineKind.certification_expiry,
            status=d.DeadlineStatus.open, title=f"{contact.name}: {module.name} certification lapses",
            due_date=row.expires_on))
    await deadline_service.sync(session, regarding=d.Regarding.certification, regarding_id=row.id,
                                link=f"/enablement/{row.partner_id}", owner=owner, currency=None, time_zone=ZONE,
                                wanted=wanted, correlation_id=actor)


async def record_certification(session: AsyncSession, cmd: e.RecordCertification) -> e.Certification:
    contact = await session.get(Contact, cmd.contact_id)
    if contact is None:
        raise NotFound(f"no contact with id {cmd.contact_id}", field="contact_id")
    if contact.archived_at is not None:
        raise Conflict("the contact is archived", field="contact_id")
    module = await session.get(ModuleRow, cmd.module_id)
    if module is None:
        raise NotFound(f"no module with id {cmd.module_id}", field="module_id")
    if module.archived:
        raise Conflict("the module is archived", field="module_id")
    row = await session.scalar(select(CertificationRow).where(
        CertificationRow.contact_id == contact.id, CertificationRow.module_id == module.id).with_for_update())
    if row is None:
        row = CertificationRow(id=uuid.uuid4(), contact_id=contact.id, partner_id=contact.partner_id,
                               module_id=module.id, version=0)
        session.add(row)
    sent = cmd.model_fields_set
    if "due_on" in sent:
        row.due_on = cmd.due_on
    if cmd.taken_on is not None and cmd.score is not None:
        if row.taken_on is not None and cmd.taken_on < row.taken_on:
            raise Conflict(f"a later attempt ({row.taken_on}) is already recorded", field="taken_on")
        row.taken_on, row.score = cmd.taken_on, cmd.score
        if cmd.score >= module.pass_mark:
            row.passed_on = cmd.taken_on
            row.expires_on = add_months(cmd.taken_on, module.valid_months) if module.valid_months else None
        # A failed retake keeps an earlier pass until it lapses.
    row.partner_id = contact.partner_id
    row.version += 1
    row.updated_at = datetime.now(UTC)
    await session.flush()
    owner = (await _owners(session, [contact]))[contact.id]
    await _sync_deadlines(session, row, contact, module, owner, cmd.actor)
    await refresh(session, [contact.partner_id], actor=cmd.actor)
    return _contract(row, contact, module, owner, today())


async def _certifications(session: AsyncSession, *, partner_ids: Sequence[uuid.UUID] | None = None,
                          contact_id: uuid.UUID | None = None, on: date | None = None) -> list[e.Certification]:
    query = (select(CertificationRow, Contact, ModuleRow).join(Contact, Contact.id == CertificationRow.contact_id)
             .join(ModuleRow, ModuleRow.id == CertificationRow.module_id)
             .where(Contact.archived_at.is_(None), ModuleRow.archived.is_(False)))
    if partner_ids is not None:
        query = query.where(CertificationRow.partner_id.in_(partner_ids))
    if contact_id is not None:
        query = query.where(CertificationRow.contact_id == contact_id)
    rows = (await session.execute(query)).all()
    owners = await _owners(session, {c.id: c for _, c, _ in rows}.values())
    on = on or today()
    out = [_contract(r, c, m, owners.get(c.id), on) for r, c, m in rows]
    return sorted(out, key=lambda x: (_ORDER[x.status], x.expires_on or x.due_on or date.max, x.contact_name,
                                      x.module_name))


async def list_certifications(session: AsyncSession, cmd: e.ListCertifications) -> e.CertificationList:
    # A partner's people and their modules are few: filter and order in Python, on the status of today.
    found = await _certifications(session, partner_ids=[cmd.partner_id] if cmd.partner_id else None,
                                  contact_id=cmd.contact_id)
    if cmd.status is not None:
        found = [x for x in found if x.status == cmd.status]
    if cmd.expiring_within_days is not None:
        until = today() + timedelta(days=cmd.expiring_within_days)
        found = [x for x in found if x.status == e.CertificationStatus.passed and x.expires_on is not None
                 and x.expires_on <= until]
    return e.CertificationList(items=found[cmd.offset:cmd.offset + cmd.limit], total=len(found), offset=cmd.offset,
                               limit=cmd.limit)


# ------------------------------------------------------------------------------------------- scores


def _summary(partner_id: uuid.UUID, name: str, certs: list[e.Certification], required: set[uuid.UUID],
             on: date) -> e.PartnerEnablement:
    valid = [c for c in certs if c.status == e.CertificationStatus.passed]
    covered = {c.module_id for c in valid} & required
    soon = on + timedelta(days=EXPIRING_DAYS)
    return e.PartnerEnablement(
        partner_id=partner_id, partner_name=name, score=score_of(len(covered), len(required)),
        required_modules=len(required), covered_modules=len(covered), valid_certifications=len(valid),
        due=sum(1 for c in certs if c.status != e.CertificationStatus.passed),
        expiring=sum(1 for c in valid if c.expires_on is not None and c.expires_on <= soon), certifications=certs)


async def _required(session: AsyncSession) -> set[uuid.UUID]:
    return set(await session.scalars(select(ModuleRow.id).where(ModuleRow.required.is_(True),
                                                                ModuleRow.archived.is_(False))))


async def _partner_names(session: AsyncSession, ids: Iterable[uuid.UUID] | None = None) -> dict[uuid.UUID, str]:
    query = select(PartnerRow.id, PartnerRow.name)
    query = query.where(PartnerRow.id.in_(list(ids))) if ids is not None else query.where(
        PartnerRow.archived.is_(False))
    return {pid: name for pid, name in await session.execute(query)}


async def partner_enablement(session: AsyncSession, cmd: e.GetPartnerEnablement) -> e.PartnerEnablement:
    names = await _partner_names(session, [cmd.partner_id])
    if cmd.partner_id not in names:
        raise NotFound(f"no partner with id {cmd.partner_id}", field="partner_id")
    certs = await _certifications(session, partner_ids=[cmd.partner_id])
    return _summary(cmd.partner_id, names[cmd.partner_id], certs, await _required(session), today())


async def _summaries(session: AsyncSession, partner_ids: Sequence[uuid.UUID] | None,
                     on: date) -> list[e.PartnerEnablement]:
    names = await _partner_names(session, partner_ids)
    required = await _required(session)
    certs = await _certifications(session, partner_ids=list(names), on=on)
    by_partner: dict[uuid.UUID, list[e.Certification]] = {}
    for c in certs:
        by_partner.setdefault(c.partner_id, []).append(c)
    return [_summary(pid, names[pid], by_partner.get(pid, []), required, on) for pid in sorted(names)]


async def list_scores(session: AsyncSession, cmd: e.ListEnablementScores) -> e.EnablementScores:
    items = [s.model_copy(update={"certifications": []}) for s in await _summaries(session, None, today())
             if s.score is not None or s.certifications]
    return e.EnablementScores(items=sorted(items, key=lambda s: (s.score is None, -(s.score or 0), s.partner_name)))


async def refresh(session: AsyncSession, partner_ids: Sequence[uuid.UUID] | None, *, actor: str | None,
                  now: datetime | None = None) -> list[e.PartnerEnablement]:
    """Each partner's score as of now; publish those that changed since last published (a partner
    never scored and with nothing to count publishes nothing)."""
    now = now or datetime.now(UTC)
    summaries = await _summaries(session, partner_ids, now.date())
    stored = {r.partner_id: r for r in await session.scalars(
        select(ScoreRow).where(ScoreRow.partner_id.in_([s.partner_id for s in summaries])).with_for_update())}
    events = []
    for s in summaries:
        figures = (s.score, s.required_modules, s.covered_modules, s.valid_certifications)
        row = stored.get(s.partner_id)
        if row is None:
            if s.score is None and not s.valid_certifications:
                continue
            row = ScoreRow(partner_id=s.partner_id, version=0)
            session.add(row)
        elif (row.score, row.required_modules, row.covered_modules, row.valid_certifications) == figures:
            continue
        row.score, row.required_modules, row.covered_modules, row.valid_certifications = figures
        row.version += 1
        row.computed_at = now
        events.append(e.EnablementScoreChangedV1(
            partner_id=s.partner_id, score=s.score, required_modules=s.required_modules,
            covered_modules=s.covered_modules, valid_certifications=s.valid_certifications, as_of=now,
            version=row.version, correlation_id=actor))
    if events:
        await session.flush()
        await add_events(session, SCHEMA, events)
    return summaries


async def refresh_all(session: AsyncSession, cmd: e.RefreshEnablement) -> e.EnablementScores:
    summaries = await refresh(session, None, actor=cmd.actor, now=cmd.as_of)
    return e.EnablementScores(items=[s.model_copy(update={"certifications": []}) for s in summaries])
