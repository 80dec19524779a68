"""The cooling alert: `relationships.contact.cooling.v1`, once per crossing, for a crucial contact whose
score will fall below the cold threshold within the warning window (or has).

A crossing belongs to the contact's latest touch: a new touch that lifts the contact out of the window
ends the episode, and the next approach to cold is a new crossing with a new alert. The claim is a
conditional UPDATE of the contact row (`cooling_notified_for`), so two processes or a redelivered
command announce a crossing once; the event id is derived from the contact and the episode, so even a
re-sent outbox row is one message on the broker.

Time passing is what brings a contact into the window, so something must look: every write to a
contact checks it at once, and `scan` (the ScanCooling command, sent by the notification service's
schedule) reads only the contacts whose cold date is inside the window, through an index on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import contacts as c
from runtime.outbox import add_event
from services.relationships.contacts import domain
from services.relationships.contacts.config import settings_of
from services.relationships.contacts.models import SCHEMA, Contact
from services.relationships.contacts.repository import ContactRepository

NAMESPACE = uuid.UUID("0b7f6a52-6a0e-4b55-8e5e-2f7b8b7f1c11")


def due(contact: Contact, settings: c.RelationshipSettings, now: datetime) -> bool:
    """Whether the contact is inside the warning window of a crossing it was not warned of."""
    if not contact.crucial or contact.archived_at is not None or contact.cold_at is None:
        return False
    if contact.cold_at - timedelta(days=settings.strength.warning_days) > now:
        return False
    return contact.cooling_notified_for != contact.last_touch_at


def event_id(contact_id: uuid.UUID, episode: datetime) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{contact_id}:{episode.astimezone(UTC).isoformat()}")


async def check(session: AsyncSession, contacts: Sequence[Contact], settings: c.RelationshipSettings,
                now: datetime) -> int:
    repo = ContactRepository(session)
    candidates = [x for x in contacts if due(x, settings, now)]
    if not candidates:
        return 0
    stakes = await repo.stakes([x.id for x in candidates])
    orgs = await repo.orgs([x.partner_id for x in candidates])
    currency = await repo.reporting_currency()
    published = 0
    for contact in candidates:
        episode = contact.last_touch_at
        assert episode is not None and contact.cold_at is not None
        if not await repo.mark_cooling_notified(contact.id, episode):
            continue
        contact.cooling_notified_for = episode
        energy = domain.Energy(contact.energy, contact.last_touch_at, contact.touches)
        score = domain.display(domain.strength(settings.strength, energy, now, c.Seniority(contact.seniority)))
        org = orgs.get(contact.partner_id)
        await add_event(session, SCHEMA, c.ContactCoolingV1(
            event_id=event_id(contact.id, episode), contact_id=contact.id, contact_name=contact.name,
            partner_id=contact.partner_id, partner_name=org.name if org else "(unknown organisation)",
            owner=contact.owner, score=score, cold_threshold=settings.strength.cold_threshold,
            cold_at=contact.cold_at, days_until_cold=domain.days_until(contact.cold_at, now) or 0,
            last_touch_at=contact.last_touch_at, value_at_stake=stakes.get(contact.id, Decimal(0)),
            currency=currency, link=f"/contacts/{contact.id}"))
        published += 1
    return published


async def scan(session: AsyncSession, now: datetime, settings: c.RelationshipSettings) -> int:
    repo = ContactRepository(session)
    window = now + timedelta(days=settings.strength.warning_days)
    ids = [row[0] for row in await repo.near_cold(window, crucial_only=True)]
    published = 0
    for start in range(0, len(ids), 500):
        published += await check(session, await repo.many(ids[start:start + 500], for_update=True), settings, now)
    return published


async def scan_cooling(session: AsyncSession, cmd: c.ScanCooling) -> c.CoolingScan:
    return c.CoolingScan(published=await scan(session, cmd.as_of or datetime.now(UTC), await settings_of(session)))
