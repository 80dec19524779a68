"""Use cases of the pipeline service. Never commits: the command or message boundary does."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from runtime.errors import Conflict, NotFound
from runtime.outbox import add_event
from services.pipeline.models import SCHEMA, Partner
from services.pipeline.repository import PartnerRepository


def to_contract(p: Partner) -> c.Partner:
    return c.Partner(id=p.id, name=p.name, type=c.PartnerType(p.type), tier=c.PartnerTier(p.tier),
                     status=c.PartnerStatus(p.status), owner=p.owner, created_at=p.created_at)


async def create_partner(session: AsyncSession, cmd: c.CreatePartner) -> c.Partner:
    repo = PartnerRepository(session)
    if await repo.name_taken(cmd.name):
        raise Conflict(f"a partner named {cmd.name!r} already exists", field="name")
    partner = await repo.add(Partner(name=cmd.name, type=cmd.type.value, tier=cmd.tier.value,
                                     status=cmd.status.value, owner=cmd.owner))
    await add_event(session, SCHEMA, c.PartnerCreatedV1(
        partner_id=partner.id, name=partner.name, type=cmd.type, tier=cmd.tier, status=cmd.status,
        owner=partner.owner, correlation_id=cmd.actor,
    ))
    return to_contract(partner)


async def get_partner(session: AsyncSession, cmd: c.GetPartner) -> c.Partner:
    partner = await PartnerRepository(session).get(cmd.partner_id)
    if partner is None:
        raise NotFound(f"no partner with id {cmd.partner_id}", field="partner_id")
    return to_contract(partner)


async def list_partners(session: AsyncSession, cmd: c.ListPartners) -> c.PartnerList:
    rows, total = await PartnerRepository(session).list(
        type_=cmd.type.value if cmd.type else None, offset=cmd.offset, limit=cmd.limit
    )
    return c.PartnerList(items=[to_contract(p) for p in rows], total=total, offset=cmd.offset, limit=cmd.limit)
