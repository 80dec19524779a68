"""All SQL of goals: the commitments, and the deals of the pipeline copy that count toward them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import goals as g
from services.relationships.goals.models import GoalRow
from services.relationships.pipeline_copy import DealRow


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


async def get(session: AsyncSession, goal_id: uuid.UUID, *, lock: bool = False) -> GoalRow | None:
    return await session.get(GoalRow, goal_id, with_for_update=lock)


async def listing(session: AsyncSession, c: g.ListGoals) -> list[GoalRow]:
    query = select(GoalRow)
    if c.hyperscaler is not None:
        query = query.where(GoalRow.hyperscaler == c.hyperscaler.value)
    if c.period is not None:
        query = query.where(GoalRow.period == c.period)
    if not c.include_archived:
        query = query.where(GoalRow.archived.is_(False))
    query = query.order_by(GoalRow.hyperscaler, GoalRow.period.desc(), GoalRow.metric, GoalRow.created_at)
    return list((await session.scalars(query.limit(1000))).all())


async def counted_deals(session: AsyncSession, goal: GoalRow) -> list[DealRow]:
    """The deals a goal counted from events looks at: launched in the period (launch goals; a deal moved
    back out of Launched has no launch time any more), or co-sell deals created in it (sourced pipeline)."""
    start, end = g.period_range(goal.period)
    query = select(DealRow).where(DealRow.hyperscaler == goal.hyperscaler)
    if goal.metric == g.GoalMetric.launched_opportunities:
        query = query.where(DealRow.launched_at >= _utc(start), DealRow.launched_at < _utc(end),
                            DealRow.outcome == "won").order_by(DealRow.launched_at)
    else:
        query = query.where(DealRow.deal_model == "cosell", DealRow.created_at >= _utc(start),
                            DealRow.created_at < _utc(end)).order_by(DealRow.created_at)
    return list((await session.scalars(query)).all())


async def counted_goals(session: AsyncSession) -> list[GoalRow]:
    """Goals counted from the pipeline that are not archived, locked (two consumers' batches recount in turn)."""
    return list((await session.scalars(select(GoalRow).where(
        GoalRow.metric.in_([m.value for m in g.COUNTED_FROM_EVENTS]), GoalRow.archived.is_(False))
        .order_by(GoalRow.id).with_for_update())).all())
