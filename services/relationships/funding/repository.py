"""All SQL of funding: programs as configured, fund requests with their moves and milestones, roll-ups."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import funding as f
from services.relationships.deadlines.models import Deadline
from services.relationships.funding.models import FundingProgram, FundMilestone, FundRequest, FundRequestMove
from services.relationships.pipeline_copy import DealRow

COUNTED = sorted(s.value for s in f.COUNTED_STAGES)


class ProgramRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def stored(self) -> dict[str, FundingProgram]:
        return {p.key: p for p in (await self.session.scalars(select(FundingProgram))).all()}

    async def get(self, key: str) -> FundingProgram | None:
        return await self.session.get(FundingProgram, key)

    async def lock(self, key: str) -> FundingProgram | None:
        return await self.session.get(FundingProgram, key, with_for_update=True)


class FundRequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, request_id: uuid.UUID, *, lock: bool = False) -> FundRequest | None:
        return await self.session.get(FundRequest, request_id, with_for_update=lock)

    async def by_aws_id(self, aws_id: str) -> FundRequest | None:
        return await self.session.scalar(select(FundRequest).where(FundRequest.aws_fund_request_id == aws_id))

    async def moves(self, request_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[FundRequestMove]]:
        out: dict[uuid.UUID, list[FundRequestMove]] = {i: [] for i in request_ids}
        rows = await self.session.scalars(select(FundRequestMove).where(FundRequestMove.request_id.in_(
            list(request_ids))).order_by(FundRequestMove.id))
        for r in rows:
            out[r.request_id].append(r)
        return out

    async def milestones(self, request_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[FundMilestone]]:
        out: dict[uuid.UUID, list[FundMilestone]] = {i: [] for i in request_ids}
        rows = await self.session.scalars(select(FundMilestone).where(FundMilestone.request_id.in_(
            list(request_ids))).order_by(FundMilestone.position))
        for r in rows:
            out[r.request_id].append(r)
        return out

    async def milestone(self, request_id: uuid.UUID, milestone_id: uuid.UUID) -> FundMilestone | None:
        return await self.session.scalar(select(FundMilestone).where(
            FundMilestone.id == milestone_id, FundMilestone.request_id == request_id).with_for_update())

    async def list(self, c: f.ListFundRequests, today_by_zone: dict[str, date]) -> tuple[list[FundRequest], int]:
        query: Select[Any] = select(FundRequest)
        if c.stage is not None:
            query = query.where(FundRequest.stage == c.stage.value)
        elif not c.include_closed:
            query = query.where(FundRequest.stage.not_in(["completed", "terminated", "expired", "rejected"]))
        if c.program is not None:
            query = query.where(FundRequest.program == c.program)
        if c.partner_id is not None:
            query = query.where(FundRequest.partner_id == c.partner_id)
        if c.owner is not None:
            query = query.where(FundRequest.owner == c.owner)
        if c.q:
            pattern = "%" + c.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(FundRequest.title.ilike(pattern), FundRequest.aws_fund_request_id.ilike(pattern)))
        next_due = (select(func.min(Deadline.due_date)).where(Deadline.regarding_id == FundRequest.id,
                                                              Deadline.status == "open")
                    .correlate(FundRequest).scalar_subquery())
        if c.due_within_days is not None:
            # Days are counted in each deadline's own zone; the caller passes today per zone in use.
            conditions = [and_(Deadline.time_zone == zone, Deadline.due_date <= date.fromordinal(
                today.toordinal() + c.due_within_days)) for zone, today in today_by_zone.items()]
            query = query.where(select(Deadline.key).where(
                Deadline.regarding_id == FundRequest.id, Deadline.status == "open",
                or_(*conditions) if conditions else text("false")).exists())
        total = await self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        order = {
            f.FundRequestSort.created_desc: [FundRequest.created_at.desc()],
            f.FundRequestSort.created: [FundRequest.created_at],
            f.FundRequestSort.next_deadline: [next_due.asc().nulls_last(), FundRequest.created_at.desc()],
            f.FundRequestSort.requested_desc: [FundRequest.requested.desc()],
            f.FundRequestSort.activity_end: [FundRequest.activity_end],
        }[c.sort]
        rows = (await self.session.scalars(query.order_by(*order, FundRequest.id).offset(c.offset)
                                           .limit(c.limit))).all()
        return list(rows), total

    async def zones_in_use(self) -> list[str]:
        return list((await self.session.scalars(select(Deadline.time_zone).distinct())).all())

    async def rollup_rows(self, year: int | None) -> list[dict[str, Any]]:
        """Per counted request: its program, partner, creation day, currency and amounts."""
        claims = (select(FundMilestone.request_id,
                         func.sum(FundMilestone.amount).filter(FundMilestone.claim_status.in_(
                             ["submitted", "approved", "paid"])).label("claimed"),
                         func.sum(FundMilestone.received).filter(FundMilestone.claim_status == "paid")
                         .label("received"))
                  .group_by(FundMilestone.request_id).subquery())
        query = (select(FundRequest.id, FundRequest.program, FundRequest.partner_id, FundRequest.created_at,
                        FundRequest.currency, FundRequest.requested, FundRequest.approved,
                        func.coalesce(claims.c.claimed, 0).label("claimed"),
                        func.coalesce(claims.c.received, 0).label("received"), FundRequest.opportunities)
                 .outerjoin(claims, claims.c.request_id == FundRequest.id)
                 .where(FundRequest.stage.in_(COUNTED)))
        if year is not None:
            query = query.where(func.extract("year", func.timezone("UTC", FundRequest.created_at)) == year)
        return [dict(r._mapping) for r in (await self.session.execute(query)).all()]


async def deals(session: AsyncSession, ids: Sequence[uuid.UUID], refs: Sequence[str]) -> list[DealRow]:
    """Deals of the pipeline copy named by id or by external id (the ACE id)."""
    if not ids and not refs:
        return []
    return list((await session.scalars(select(DealRow).where(or_(
        DealRow.id.in_(list(ids)), DealRow.external_id.in_(list(refs)))))).all())
