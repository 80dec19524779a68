"""The hyperscaler's people named on co-sell deals (ACE's AWS opportunity team, the GCP account owner)
become contacts of the deal's organisation, matched by email, and are linked to the deal. Called by the
service's pipeline copy for every opportunity snapshot it takes in; matching by email and linking with
ON CONFLICT DO NOTHING make a redelivered or older snapshot harmless. Never commits."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import contacts as c
from contracts import pipeline as p
from services.relationships.contacts.config import settings_of
from services.relationships.contacts.repository import ContactRepository
from services.relationships.contacts.service import new_contact

logger = logging.getLogger(__name__)

# ACE's business titles and the roles they are (the rest are kept as the contact's title).
ROLE_ALIASES = {"awsaccountowner": "account manager", "accountowner": "account manager",
                "account owner": "account manager", "awssalesrep": "account manager", "wwpspdm": "pdm",
                "isvsm": "isv success", "partner development manager": "pdm",
                "partner solutions architect": "solution architect", "psa": "solution architect"}


async def on_deals(session: AsyncSession, opportunities: Sequence[p.Opportunity]) -> None:
    settings: c.RelationshipSettings | None = None
    for o in opportunities:
        team = [*(o.ace.team if o.ace else ()), *(o.gcp.team if o.gcp else ())]
        if not team:
            continue
        repo = ContactRepository(session)
        org = await repo.org(o.partner_id) if o.partner_id is not None else None
        if org is None or org.archived:
            logger.info("co-sell deal %s names %d people but no known organisation; not made contacts", o.id,
                        len(team))
            continue
        settings = settings or await settings_of(session)
        for person in team:
            contact = await repo.by_email(org.id, person.email)
            if contact is None:
                role = known_role(settings, person.role)
                contact = await new_contact(
                    session, partner_id=org.id, name=person.name or person.email.split("@", 1)[0],
                    actor=f"deal:{o.id}", settings=settings, email=person.email, owner=o.owner,
                    title=person.role if role is None else None, role=role)
            await repo.link(contact.id, o.id, "deal")


def known_role(settings: c.RelationshipSettings, role: str | None) -> str | None:
    """ACE's business title when it is one of our roles (PDM, PSM, ...); None otherwise."""
    if not role:
        return None
    wanted = ROLE_ALIASES.get(role.strip().lower(), role.strip().lower())
    return next((r for r in settings.roles if r.lower() == wanted), None)
