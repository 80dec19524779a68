"""All SQL about opportunities, their stage history and next steps."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from services.pipeline.models import NextStep, Opportunity, StageChange

_ORDER = {
    c.OpportunitySort.created: (Opportunity.created_at.asc(),),
    c.OpportunitySort.created_desc: (Opportunity.created_at.desc(),),
    c.OpportunitySort.amount: (Opportunity.amount.asc(),),
    c.OpportunitySort.amount_desc: (Opportunity.amount.desc(),),
    c.OpportunitySort.close: (Opportunity.expected_close_date.asc().nulls_last(),),
    c.OpportunitySort.close_desc: (Opportunity.expected_close_date.desc().nulls_last(),),
    c.OpportunitySort.stage_entered: (Opportunity.stage_entered_at.asc(),),
    c.OpportunitySort.stage_entered_desc: (Opportunity.stage_entered_at.desc(),),
    c.OpportunitySort.name: (func.lower(Opportunity.name).asc(),),
    c.OpportunitySort.name_desc: (func.lower(Opportunity.name).desc(),),
}


class OpportunityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, opportunity_id: uuid.UUID, *, for_update: bool = False) -> Opportunity | None:
        query = select(Opportunity).where(Opportunity.id == opportunity_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def by_external_id(self, source: str, external_id: str) -> Opportunity | None:
        return await self.session.scalar(
            select(Opportunity).where(Opportunity.source == source, Opportunity.external_id == external_id)
            .with_for_update().execution_options(populate_existing=True)
        )

    async def add(self, opportunity: Opportunity) -> None:
        self.session.add(opportunity)
        await self.session.flush()

    async def record_stage(self, opportunity_id: uuid.UUID, from_stage: str | None, to_stage: str,
                           changed_by: str | None, changed_at: datetime) -> None:
        self.session.add(StageChange(opportunity_id=opportunity_id, from_stage=from_stage, to_stage=to_stage,
                                     changed_by=changed_by, changed_at=changed_at))

    async def record_next_step(self, opportunity_id: uuid.UUID, text: str, by: str | None, at: datetime) -> None:
        self.session.add(NextStep(opportunity_id=opportunity_id, text=text, recorded_by=by, recorded_at=at))

    async def stage_history(self, opportunity_id: uuid.UUID) -> list[StageChange]:
        return list(await self.session.scalars(
            select(StageChange).where(StageChange.opportunity_id == opportunity_id).order_by(StageChange.id)))

    async def next_steps(self, opportunity_id: uuid.UUID) -> list[NextStep]:
        return list(await self.session.scalars(
            select(NextStep).where(NextStep.opportunity_id == opportunity_id).order_by(NextStep.id)))

    async def list(self, cmd: c.ListOpportunities, quarter: tuple[date, date] | None
                   ) -> tuple[list[Opportunity], int]:
        conditions = []
        if cmd.owner:
            conditions.append(Opportunity.owner == cmd.owner)
        if cmd.partner_id:
            conditions.append(Opportunity.partner_id == cmd.partner_id)
        if cmd.pipeline:
            conditions.append(Opportunity.pipeline == cmd.pipeline)
        if cmd.stage:
            conditions.append(Opportunity.stage == cmd.stage)
        if cmd.outcome:
            conditions.append(Opportunity.outcome == cmd.outcome.value)
        if cmd.source:
            conditions.append(Opportunity.source == cmd.source.value)
        if cmd.deal_model:
            conditions.append(Opportunity.deal_model == cmd.deal_model.value)
        if quarter:
            when = func.coalesce(cast(Opportunity.closed_at, Date), Opportunity.expected_close_date)
            conditions.append(when >= quarter[0])
            conditions.append(when < quarter[1])
        if cmd.q:
            pattern = f"%{_escape_like(cmd.q)}%"
            conditions.append(or_(Opportunity.name.ilike(pattern, escape="\\"),
                                  Opportunity.customer.ilike(pattern, escape="\\")))
        query = select(Opportunity).where(*conditions).order_by(*_ORDER[cmd.sort], Opportunity.id)
        rows = list(await self.session.scalars(query.offset(cmd.offset).limit(cmd.limit)))
        total = await self.session.scalar(select(func.count()).select_from(Opportunity).where(*conditions))
        return rows, int(total or 0)

    async def page_by_id(self, after: uuid.UUID | None, limit: int) -> list[Opportunity]:
        query = select(Opportunity).order_by(Opportunity.id).limit(limit)
        if after is not None:
            query = query.where(Opportunity.id > after)
        return list(await self.session.scalars(query))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
