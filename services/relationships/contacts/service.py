"""Contact and interaction use cases. Never commits: the command or message boundary does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, literal, literal_column
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import contacts as c
from runtime.errors import Conflict, Invalid, NotFound
from runtime.outbox import add_event, add_events
from services.relationships.contacts import cooling, domain
from services.relationships.contacts.config import settings_of
from services.relationships.contacts.models import SCHEMA, Contact, Interaction
from services.relationships.contacts.repository import ContactRepository
from services.relationships.pipeline_copy import PartnerRow

# A touch dated this far ahead is a typo (a meeting planned for next week is not a touch yet).
FUTURE_SLACK = timedelta(days=1)
HISTORY_WEEKS = 52


def energy_of(contact: Contact) -> domain.Energy:
    return domain.Energy(contact.energy, contact.last_touch_at, contact.touches)


def set_energy(contact: Contact, energy: domain.Energy, settings: c.StrengthSettings) -> None:
    contact.energy = energy.value
    contact.last_touch_at = energy.anchor
    contact.touches = energy.touches
    contact.cold_at = domain.cold_at(settings, energy, c.Seniority(contact.seniority))


def strength_of(contact: Contact, settings: c.StrengthSettings, now: datetime) -> c.Strength:
    energy = energy_of(contact)
    score = domain.strength(settings, energy, now, c.Seniority(contact.seniority))
    cold = contact.cold_at
    return c.Strength(score=domain.display(score), band=domain.band(settings, score, energy.anchor is not None),
                      last_touch_at=contact.last_touch_at, cold_at=cold, days_until_cold=domain.days_until(cold, now),
                      touches=contact.touches)


def to_contract(contact: Contact, org_name: str | None, stake: Decimal, settings: c.RelationshipSettings,
                now: datetime, currency: str) -> c.Contact:
    return c.Contact(
        id=contact.id, partner_id=contact.partner_id, partner_name=org_name or "(unknown organisation)",
        name=contact.name, email=contact.email, phone=contact.phone, role=contact.role, title=contact.title,
        territory=contact.territory, segment=contact.segment, seniority=c.Seniority(contact.seniority),
        reports_to=contact.reports_to, owner=contact.owner, crucial=contact.crucial,
        archived=contact.archived_at is not None, version=contact.version, created_at=contact.created_at,
        updated_at=contact.updated_at, strength=strength_of(contact, settings.strength, now),
        value_at_stake=Decimal(stake).quantize(Decimal("0.01")), currency=currency)


def snapshot(contact: Contact) -> c.ContactSnapshot:
    return c.ContactSnapshot(id=contact.id, partner_id=contact.partner_id, name=contact.name, email=contact.email,
                             role=contact.role, territory=contact.territory, seniority=c.Seniority(contact.seniority),
                             owner=contact.owner, crucial=contact.crucial, archived=contact.archived_at is not None,
                             version=contact.version)


async def contract_of(session: AsyncSession, contact: Contact, settings: c.RelationshipSettings | None = None,
                      now: datetime | None = None) -> c.Contact:
    repo = ContactRepository(session)
    settings = settings or await settings_of(session)
    org = await repo.org(contact.partner_id)
    stake = (await repo.stakes([contact.id])).get(contact.id, Decimal(0))
    return to_contract(contact, org.name if org else None, stake, settings, now or datetime.now(UTC),
                       await repo.reporting_currency())


async def _known_org(repo: ContactRepository, partner_id: uuid.UUID) -> PartnerRow:
    org = await repo.org(partner_id)
    if org is None:
        raise Invalid(f"no partner organisation with id {partner_id} (or the pipeline's news of it has not "
                      "arrived yet)", field="partner_id")
    if org.archived:
        raise Invalid(f"the organisation {org.name!r} is archived", field="partner_id")
    return org


async def _check_manager(repo: ContactRepository, contact_id: uuid.UUID, reports_to: uuid.UUID | None) -> None:
    if reports_to is None:
        return
    if reports_to == contact_id:
        raise Invalid("a contact cannot report to themselves", field="reports_to")
    if await repo.get(reports_to) is None:
        raise Invalid(f"no contact with id {reports_to}", field="reports_to")
    if await repo.manager_chain_has(reports_to, contact_id):
        raise Invalid("that would make a reporting loop", field="reports_to")


def role_named(settings: c.RelationshipSettings, role: str | None) -> str | None:
    """The role as the settings spell it; a role outside the list is refused so filters stay useful."""
    if role is None or not role.strip():
        return None
    for known in settings.roles:
        if known.lower() == role.strip().lower():
            return known
    raise Invalid(f"{role!r} is not one of the roles ({', '.join(settings.roles)}); an admin can add it",
                  field="role")


async def new_contact(session: AsyncSession, *, partner_id: uuid.UUID, name: str, actor: str | None,
                      settings: c.RelationshipSettings, **fields: Any) -> Contact:
    """Store a contact and its created event (the organisation and the email's uniqueness checked)."""
    repo = ContactRepository(session)
    await _known_org(repo, partner_id)
    email = fields.get("email")
    if email and await repo.by_email(partner_id, email):
        raise Conflict(f"a contact with the email {email!r} already exists at this organisation", field="email")
    contact_id = uuid.uuid4()
    await _check_manager(repo, contact_id, fields.get("reports_to"))
    now = datetime.now(UTC)
    contact = Contact(id=contact_id, partner_id=partner_id, name=name, version=1, created_at=now, updated_at=now,
                      energy=0.0, touches=0, crucial=bool(fields.pop("crucial", False)),
                      seniority=(fields.pop("seniority", None) or c.Seniority.manager).value,
                      role=role_named(settings, fields.pop("role", None)), **fields)
    await repo.add(contact)
    await add_event(session, SCHEMA, c.ContactCreatedV1(contact=snapshot(contact), correlation_id=actor))
    return contact


async def create_contact(session: AsyncSession, cmd: c.CreateContact) -> c.Contact:
    settings = await settings_of(session)
    fields = cmd.model_dump(exclude={"actor", "partner_id", "name"})
    contact = await new_contact(session, partner_id=cmd.partner_id, name=cmd.name, actor=cmd.actor,
                                settings=settings, **fields)
    return await contract_of(session, contact, settings)


async def _locked(repo: ContactRepository, contact_id: uuid.UUID, expected: int | None = None) -> Contact:
    contact = await repo.get(contact_id, for_update=True)
    if contact is None:
        raise NotFound(f"no contact with id {contact_id}", field="contact_id")
    if expected is not None and expected != contact.version:
        raise Conflict(f"the contact changed since version {expected} (now {contact.version})",
                       field="expected_version")
    return contact


async def update_contact(session: AsyncSession, cmd: c.UpdateContact) -> c.Contact:
    repo = ContactRepository(session)
    settings = await settings_of(session)
    contact = await _locked(repo, cmd.contact_id, cmd.expected_version)
    changed: list[str] = []
    if cmd.archived is not None and (contact.archived_at is not None) != cmd.archived:
        contact.archived_at = datetime.now(UTC) if cmd.archived else None
        changed.append("archived")
    if contact.archived_at is not None and changed != ["archived"] and (cmd.set.model_fields_set or cmd.partner_id):
        raise Conflict("the contact is archived; restore it first", field="contact_id")
    if cmd.partner_id is not None and cmd.partner_id != contact.partner_id:
        await _known_org(repo, cmd.partner_id)
        contact.partner_id = cmd.partner_id
        changed.append("partner_id")
    values = cmd.set.model_dump(include=cmd.set.model_fields_set)
    if "role" in values:
        values["role"] = role_named(settings, values["role"])
    if "seniority" in values:
        values["seniority"] = (values["seniority"] or c.Seniority.manager).value
    if "crucial" in values:
        values["crucial"] = bool(values["crucial"])
    if "reports_to" in values:
        await _check_manager(repo, contact.id, values["reports_to"])
    email = values.get("email")
    if email and email.lower() != (contact.email or "").lower():
        other = await repo.by_email(contact.partner_id, email)
        if other is not None and other.id != contact.id:
            raise Conflict(f"a contact with the email {email!r} already exists at this organisation", field="email")
    for key, value in values.items():
        if getattr(contact, key) != value:
            setattr(contact, key, value)
            changed.append(key)
    if not changed:
        return await contract_of(session, contact, settings)
    if "seniority" in changed:
        set_energy(contact, energy_of(contact), settings.strength)
    contact.version += 1
    contact.updated_at = datetime.now(UTC)
    await add_event(session, SCHEMA, c.ContactUpdatedV1(contact=snapshot(contact), changed=tuple(changed),
                                                        correlation_id=cmd.actor))
    await cooling.check(session, [contact], settings, datetime.now(UTC))
    return await contract_of(session, contact, settings)


async def get_contact(session: AsyncSession, cmd: c.GetContact) -> c.ContactDetail:
    repo = ContactRepository(session)
    contact = await repo.get(cmd.contact_id)
    if contact is None:
        raise NotFound(f"no contact with id {cmd.contact_id}", field="contact_id")
    settings = await settings_of(session)
    now = datetime.now(UTC)
    interactions = await repo.interactions_of(contact.id, limit=200)
    deals = await repo.deals_of(contact)
    touches = [domain.Touch(at, c.InteractionKind(k), c.Initiator(i)) for at, k, i in await repo.touches_of(contact.id)]
    days = [(now - timedelta(weeks=w)).date() for w in range(HISTORY_WEEKS, -1, -1)]
    history = domain.history(settings.strength, touches, c.Seniority(contact.seniority), days)
    manager = (await repo.names([contact.reports_to])).get(contact.reports_to) if contact.reports_to else None
    return c.ContactDetail(
        contact=await contract_of(session, contact, settings, now),
        interactions=await interactions_out(repo, interactions),
        deals=[c.LinkedDeal(opportunity_id=d.id, name=d.name, stage=d.stage_name, amount=d.amount,
                            currency=d.currency, outcome=d.outcome, via=via) for d, via in deals],
        history=[c.StrengthPoint(day=d, score=s) for d, s in history],
        reports=await repo.reports_of(contact.id), manager_name=manager)


async def interactions_out(repo: ContactRepository, rows: Sequence[Interaction]) -> list[c.Interaction]:
    people = await repo.contacts_of([i.id for i in rows])
    deal_names = {}
    for i in rows:
        if i.opportunity_id is not None and i.opportunity_id not in deal_names:
            deal = await repo.deal(i.opportunity_id)
            deal_names[i.opportunity_id] = deal.name if deal else None
    return [c.Interaction(id=i.id, kind=c.InteractionKind(i.kind), occurred_at=i.occurred_at,
                          initiated_by=c.Initiator(i.initiated_by), contacts=people.get(i.id, []),
                          partner_id=i.partner_id, opportunity_id=i.opportunity_id,
                          opportunity_name=deal_names.get(i.opportunity_id) if i.opportunity_id else None,
                          note=i.note, source=c.InteractionSource(i.source), logged_by=i.logged_by,
                          created_at=i.created_at) for i in rows]


def strength_order(settings: c.StrengthSettings) -> Any:
    """A SQL key that orders contacts by strength at any instant: log E(t) = log(s·E_A) + A·ln2/h - t·ln2/h,
    and the last term is the same for everyone, so the order never changes as time passes."""
    factor = case(*((Contact.seniority == s.value, float(f)) for s, f in settings.seniority.items()), else_=1.0)
    per_second = 0.6931471805599453 / (float(settings.half_life_days) * domain.DAY)
    return case((Contact.last_touch_at.is_(None), literal(None)),
                else_=func.ln(func.greatest(Contact.energy * factor, 1e-300))
                + func.extract("epoch", Contact.last_touch_at) * per_second)


async def list_contacts(session: AsyncSession, cmd: c.ListContacts) -> c.ContactList:
    repo = ContactRepository(session)
    settings = await settings_of(session)
    key = strength_order(settings.strength)
    orders = {
        c.ContactSort.name: [func.lower(Contact.name)],
        c.ContactSort.strength: [key.asc().nulls_first()],
        c.ContactSort.strength_desc: [key.desc().nulls_last()],
        c.ContactSort.cold_at: [Contact.cold_at.asc().nulls_last()],
        c.ContactSort.last_touch_desc: [Contact.last_touch_at.desc().nulls_last()],
        c.ContactSort.stake_desc: [literal_column_stake().desc()],
    }
    rows, total = await repo.search(q=cmd.q, partner_id=cmd.partner_id, owner=cmd.owner, role=cmd.role,
                                    crucial=cmd.crucial, include_archived=cmd.include_archived,
                                    order=orders[cmd.sort], offset=cmd.offset, limit=cmd.limit)
    now = datetime.now(UTC)
    currency = await repo.reporting_currency()
    return c.ContactList(items=[to_contract(contact, org, Decimal(stake), settings, now, currency)
                                for contact, org, stake in rows],
                         total=total, offset=cmd.offset, limit=cmd.limit, currency=currency)


def literal_column_stake() -> Any:
    return literal_column("coalesce(stake.value, 0)")


# ---------------------------------------------------------------------------------- interactions


async def record(session: AsyncSession, *, kind: c.InteractionKind, occurred_at: datetime,
                 contact_ids: Sequence[uuid.UUID], initiated_by: c.Initiator, partner_id: uuid.UUID | None,
                 opportunity_id: uuid.UUID | None, note: str | None, uid: str | None, source: c.InteractionSource,
                 actor: str | None, settings: c.RelationshipSettings, now: datetime) -> Interaction | None:
    """Store one interaction and fold it into each contact's strength; None when its calendar UID is
    known already (nothing changes)."""
    repo = ContactRepository(session)
    ids = list(dict.fromkeys(contact_ids))
    if occurred_at > now + FUTURE_SLACK:
        raise Invalid("a touch cannot be dated in the future; log it once it happened", field="occurred_at")
    contacts = await repo.many(ids, for_update=True)
    missing = set(ids) - {x.id for x in contacts}
    if missing:
        raise Invalid(f"no contact with id {sorted(map(str, missing))[0]}", field="contact_ids")
    archived = [x for x in contacts if x.archived_at is not None]
    if archived:
        raise Invalid(f"{archived[0].name} is archived", field="contact_ids")
    if opportunity_id is not None:
        deal = await repo.deal(opportunity_id)
        if deal is None:
            raise Invalid(f"no deal with id {opportunity_id}", field="opportunity_id")
        partner_id = partner_id or deal.partner_id
    if partner_id is not None and await repo.org(partner_id) is None:
        raise Invalid(f"no partner organisation with id {partner_id}", field="partner_id")
    if partner_id is None and len({x.partner_id for x in contacts}) == 1:
        partner_id = contacts[0].partner_id
    interaction = Interaction(id=uuid.uuid4(), kind=kind.value, occurred_at=occurred_at.astimezone(UTC),
                              initiated_by=initiated_by.value, partner_id=partner_id, opportunity_id=opportunity_id,
                              note=note or None, source=source.value, uid=uid, logged_by=actor, created_at=now)
    if not await repo.add_interaction(interaction, ids):
        return None
    touch = domain.Touch(interaction.occurred_at, kind, initiated_by)
    for contact in contacts:
        set_energy(contact, domain.add(settings.strength, energy_of(contact), touch), settings.strength)
        if opportunity_id is not None:
            await repo.link(contact.id, opportunity_id, "interaction")
    await add_event(session, SCHEMA, c.InteractionLoggedV1(
        interaction_id=interaction.id, kind=kind, occurred_at=interaction.occurred_at, contact_ids=tuple(ids),
        partner_id=partner_id, opportunity_id=opportunity_id, initiated_by=initiated_by, logged_by=actor,
        correlation_id=actor))
    await cooling.check(session, contacts, settings, now)
    return interaction


async def log_interaction(session: AsyncSession, cmd: c.LogInteraction) -> c.Interaction:
    repo = ContactRepository(session)
    settings = await settings_of(session)
    source = c.InteractionSource.calendar if cmd.uid else c.InteractionSource.manual
    stored = await record(session, kind=cmd.kind, occurred_at=cmd.occurred_at, contact_ids=cmd.contact_ids,
                          initiated_by=cmd.initiated_by, partner_id=cmd.partner_id, opportunity_id=cmd.opportunity_id,
                          note=cmd.note, uid=cmd.uid, source=source, actor=cmd.actor, settings=settings,
                          now=datetime.now(UTC))
    if stored is None:
        raise Conflict("this calendar event is logged already", field="uid")
    return (await interactions_out(repo, [stored]))[0]


async def recompute(session: AsyncSession, contacts: Sequence[Contact], settings: c.StrengthSettings) -> None:
    """Fold a contact's touches again from scratch (after a deletion or a change of the settings)."""
    repo = ContactRepository(session)
    for contact in contacts:
        touches = [domain.Touch(at, c.InteractionKind(k), c.Initiator(i))
                   for at, k, i in await repo.touches_of(contact.id)]
        set_energy(contact, domain.fold(settings, touches), settings)


async def delete_interaction(session: AsyncSession, cmd: c.DeleteInteraction) -> c.Interaction:
    repo = ContactRepository(session)
    interaction = await repo.interaction(cmd.interaction_id)
    if interaction is None:
        raise NotFound(f"no interaction with id {cmd.interaction_id}", field="interaction_id")
    out = (await interactions_out(repo, [interaction]))[0]
    contacts = await repo.many([cid for cid, _ in out.contacts], for_update=True)
    await repo.delete_interaction(interaction.id)
    settings = await settings_of(session)
    await recompute(session, contacts, settings.strength)
    return out


# -------------------------------------------------------------------------------------- settings


async def get_settings(session: AsyncSession, _cmd: c.GetRelationshipSettings) -> c.RelationshipSettings:
    return await settings_of(session)


async def update_settings(session: AsyncSession, cmd: c.UpdateRelationshipSettings) -> c.RelationshipSettings:
    repo = ContactRepository(session)
    _, version = await repo.settings(for_update=True)
    if cmd.expected_version is not None and cmd.expected_version != version:
        raise Conflict(f"the settings changed since version {cmd.expected_version} (now {version})",
                       field="expected_version")
    old = await settings_of(session)
    new = cmd.settings.model_copy(update={"version": version + 1})
    await repo.save_settings(new.model_dump(mode="json", exclude={"version"}), version + 1)
    if new.strength != old.strength:
        # Every touched contact's stored sum depends on the half-life and weights: fold them again.
        ids = await repo.contacts_with_touches()
        for start in range(0, len(ids), 500):
            await recompute(session, await repo.many(ids[start:start + 500], for_update=True), new.strength)
    return new


async def set_capacity(session: AsyncSession, cmd: c.SetCapacity) -> c.Capacity:
    await ContactRepository(session).set_capacity(cmd.owner, cmd.hours_per_week)
    return c.Capacity(owner=cmd.owner, hours_per_week=cmd.hours_per_week)


async def publish_created(session: AsyncSession, contacts: Sequence[Contact], actor: str | None) -> None:
    await add_events(session, SCHEMA, [c.ContactCreatedV1(contact=snapshot(x), correlation_id=actor) for x in contacts])
