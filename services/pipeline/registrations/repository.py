"""All SQL about deal registrations and the conflict check's look-ups."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import registrations as r
from services.pipeline.models import DealRegistration, Opportunity

# Open deals whose customer shares the key's first word are read, then compared by key in Python:
# the key drops accents and legal forms, which a LIKE cannot.
_CANDIDATES = 200


class RegistrationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: DealRegistration) -> DealRegistration:
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, registration_id: uuid.UUID, *, for_update: bool = False) -> DealRegistration | None:
        query = select(DealRegistration).where(DealRegistration.id == registration_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def list(self, cmd: r.ListRegistrations) -> tuple[list[DealRegistration], int]:
        query = select(DealRegistration)
        if cmd.partner_id is not None:
            query = query.where(DealRegistration.partner_id == cmd.partner_id)
        if cmd.status is not None:
            query = query.where(DealRegistration.status == cmd.status.value)
        total = await self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = await self.session.scalars(query.order_by(DealRegistration.submitted_at.desc(), DealRegistration.id)
                                          .offset(cmd.offset).limit(cmd.limit))
        return list(rows), total

    async def conflicts(self, key: str, *, exclude: uuid.UUID | None) -> list[r.Conflict]:
        """Open opportunities and pending registrations (other than `exclude`) for the customer `key`."""
        if not key:
            return []
        first = key.split()[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        deals = await self.session.execute(
            select(Opportunity.id, Opportunity.name, Opportunity.customer, Opportunity.partner_id)
            .where(Opportunity.outcome == "open", Opportunity.deleted_at.is_(None),
                   Opportunity.customer.ilike(f"%{first}%", escape="\\"))
            .order_by(Opportunity.created_at).limit(_CANDIDATES))
        found = [r.Conflict(kind=r.ConflictKind.opportunity, id=d.id, name=d.name, customer=d.customer,
                            partner_id=d.partner_id) for d in deals if r.customer_key(d.customer) == key]
        pending = select(DealRegistration).where(DealRegistration.customer_key == key,
                                                 DealRegistration.status == r.RegistrationStatus.pending.value)
        if exclude is not None:
            pending = pending.where(DealRegistration.id != exclude)
        for reg in await self.session.scalars(pending.order_by(DealRegistration.submitted_at).limit(_CANDIDATES)):
            found.append(r.Conflict(kind=r.ConflictKind.registration, id=reg.id, name=reg.name,
                                    customer=reg.customer, partner_id=reg.partner_id))
        return found
