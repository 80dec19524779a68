"""All SQL of the pipeline service."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.pipeline.models import Partner


class PartnerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, partner: Partner) -> Partner:
        self.session.add(partner)
        await self.session.flush()
        await self.session.refresh(partner)
        return partner

    async def get(self, partner_id: uuid.UUID) -> Partner | None:
        return await self.session.get(Partner, partner_id)

    async def name_taken(self, name: str) -> bool:
        found = await self.session.scalar(select(Partner.id).where(func.lower(Partner.name) == name.lower()))
        return found is not None

    async def list(self, *, type_: str | None, offset: int, limit: int) -> tuple[list[Partner], int]:
        query = select(Partner)
        count = select(func.count()).select_from(Partner)
        if type_:
            query = query.where(Partner.type == type_)
            count = count.where(Partner.type == type_)
        query = query.order_by(Partner.created_at.desc(), Partner.id).offset(offset).limit(limit)
        rows = await self.session.scalars(query)
        return list(rows), int(await self.session.scalar(count) or 0)
