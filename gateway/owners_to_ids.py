"""`python -m gateway owners-to-ids`: moves partners and deals owned by an old handle ("maria") or an
email to their owner's user id, once, after upgrading to ownership by id (gateway/people.py).

Through the pipeline's own commands (so the change is an event every read model sees); a handle that
several people share, or nobody has, is left as it is and listed."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from contracts import pipeline as pc
from gateway import people
from runtime import bus
from runtime.commands import send
from runtime.db import create_engine, session_factory
from runtime.settings import Settings

ACTOR = "owners-to-ids"
PAGE = 500


async def _members(settings: Settings) -> list[people.Member]:
    engine = create_engine(settings.database_url, trace_sql=False)
    try:
        async with session_factory(engine)() as session:
            return list((await people.load(session)).by_id.values())
    finally:
        await engine.dispose()


def _is_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def run(settings: Settings) -> dict[str, object]:
    members = await _members(settings)
    moved: Counter[str] = Counter()
    left: Counter[str] = Counter()
    nc = await bus.connect(settings.nats_url, name=ACTOR)
    try:
        offset = 0
        while True:
            page: pc.PartnerList = await send(nc, pc.ListPartners(include_archived=True, offset=offset, limit=PAGE,
                                                                  sort=pc.PartnerSort.created_desc, actor=ACTOR))
            for p in page.items:
                if p.owner and not _is_id(p.owner):
                    if member := people.legacy_owner(members, p.owner):
                        await send(nc, pc.UpdatePartner(partner_id=p.id, owner=member.id, actor=ACTOR))
                        moved["partners"] += 1
                    else:
                        left[p.owner] += 1
            offset += PAGE
            if offset >= page.total:
                break
        offset = 0
        while True:
            deals: pc.OpportunityList = await send(nc, pc.ListOpportunities(offset=offset, limit=PAGE, actor=ACTOR))
            for o in deals.items:
                if o.owner and not _is_id(o.owner):
                    if member := people.legacy_owner(members, o.owner):
                        await send(nc, pc.UpdateOpportunity(opportunity_id=o.id, owner=member.id, actor=ACTOR))
                        moved["opportunities"] += 1
                    else:
                        left[o.owner] += 1
            offset += PAGE
            if offset >= deals.total:
                break
    finally:
        await nc.close()
    return {"moved": dict(moved), "left_as_they_are": dict(left)}


def main(settings: Settings) -> dict[str, object]:
    return asyncio.run(run(settings))
