"""Goal use cases: commit, change, and read with progress counted from the pipeline copy (launches and
sourced co-sell pipeline) or entered by hand (certifications, marketplace revenue, custom), a pace
forecast and at-risk status. Never commits."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import goals as g
from contracts.base import utc_now
from runtime.errors import Conflict, Invalid, NotFound
from runtime.outbox import add_events
from services.relationships.goals import repository
from services.relationships.goals.models import GoalRow
from services.relationships.pipeline_copy import DealRow

SCHEMA = "relationships"


def today() -> date:
    return datetime.now(UTC).date()


def _contributions(goal: GoalRow, deals: list[DealRow]) -> list[g.Contribution]:
    out = []
    for d in deals:
        if goal.metric == g.GoalMetric.launched_opportunities:
            at, counted, why = d.launched_at, True, "launched in the period"
        else:
            at = d.created_at
            counted = d.currency == goal.currency
            why = "co-sell deal created in the period" if counted else f"in {d.currency}, not {goal.currency}"
        assert at is not None
        out.append(g.Contribution(opportunity_id=d.id, name=d.name, amount=d.amount,
                                  currency=d.currency, at=at, counted=counted, why=why))
    return out


def _progress(goal: GoalRow, contributions: list[g.Contribution]) -> tuple[Decimal, int]:
    metric = g.GoalMetric(goal.metric)
    if metric not in g.COUNTED_FROM_EVENTS:
        return goal.manual_progress or Decimal(0), 0
    counted = [c for c in contributions if c.counted]
    if metric == g.GoalMetric.launched_opportunities:
        return Decimal(len(counted)), 0
    return sum((c.amount for c in counted), Decimal(0)), len(contributions) - len(counted)


def _snapshot(goal: GoalRow, contributions: list[g.Contribution], on: date) -> g.Goal:
    start, end = g.period_range(goal.period)
    metric = g.GoalMetric(goal.metric)
    progress, not_counted = _progress(goal, contributions)
    kind = "quarter" if "Q" in goal.period else "year"
    return g.Goal(
        id=goal.id, version=goal.version, hyperscaler=goal.hyperscaler, period=goal.period,
        period_label=f"calendar {kind} {goal.period} (UTC)", period_start=start, period_end=end, metric=metric,
        metric_label=g.METRIC_LABELS[metric], name=goal.name, target=goal.target, currency=goal.currency,
        source="events" if metric in g.COUNTED_FROM_EVENTS else "manual", progress=progress,
        forecast=g.pace(progress, start, end, on), status=g.status(progress, goal.target, start, end, on),
        not_counted=not_counted, owner=goal.owner, archived=goal.archived, created_at=goal.created_at,
        updated_at=goal.updated_at)


async def _read(session: AsyncSession, goal: GoalRow) -> tuple[g.Goal, list[g.Contribution]]:
    contributions = []
    if g.GoalMetric(goal.metric) in g.COUNTED_FROM_EVENTS:
        contributions = _contributions(goal, await repository.counted_deals(session, goal))
    return _snapshot(goal, contributions, today()), contributions


async def _publish(session: AsyncSession, goal: GoalRow) -> g.Goal:
    await session.flush()
    snapshot, _ = await _read(session, goal)
    goal.progress = snapshot.progress
    await add_events(session, SCHEMA, [g.GoalChangedV1(goal=snapshot)])
    return snapshot


async def recount(session: AsyncSession) -> None:
    """After the pipeline copy changed: every goal counted from events whose progress moved is published
    again (a new version), so read models of goals follow launches and new co-sell deals."""
    for goal in await repository.counted_goals(session):
        snapshot, _ = await _read(session, goal)
        if goal.progress is None or Decimal(goal.progress) != snapshot.progress:
            goal.version += 1
            goal.updated_at = utc_now()
            await _publish(session, goal)


async def create_goal(session: AsyncSession, c: g.CreateGoal) -> g.Goal:
    money = c.metric in g.MONEY_METRICS
    if c.currency is not None and not money:
        raise Invalid(f"{g.METRIC_LABELS[c.metric]} is a count; it has no currency", field="currency")
    if c.manual_progress is not None and c.metric in g.COUNTED_FROM_EVENTS:
        raise Invalid(f"{g.METRIC_LABELS[c.metric]} is counted from the pipeline, not entered", field="manual_progress")
    if not money and c.target != c.target.to_integral_value():
        raise Invalid("a count is a whole number", field="target")
    now = utc_now()
    goal = GoalRow(id=uuid.uuid4(), version=1, hyperscaler=c.hyperscaler.value, period=c.period, metric=c.metric.value,
                   name=c.name or g.METRIC_LABELS[c.metric], target=c.target,
                   currency=(c.currency or "USD") if money else None, manual_progress=c.manual_progress,
                   owner=c.owner, archived=False, created_at=now, updated_at=now)
    session.add(goal)
    return await _publish(session, goal)


async def update_goal(session: AsyncSession, c: g.UpdateGoal) -> g.Goal:
    goal = await repository.get(session, c.goal_id, lock=True)
    if goal is None:
        raise NotFound(f"no goal {c.goal_id}", field="goal_id")
    if c.expected_version is not None and c.expected_version != goal.version:
        raise Conflict(f"the goal changed since version {c.expected_version}; reload it", field="expected_version")
    fields = c.model_dump(exclude_unset=True, exclude={"goal_id", "expected_version", "actor"})
    for required in ("name", "target", "archived"):
        if required in fields and fields[required] is None:
            raise Invalid("cannot be cleared", field=required)
    if "manual_progress" in fields and g.GoalMetric(goal.metric) in g.COUNTED_FROM_EVENTS:
        raise Invalid("this goal is counted from the pipeline, not entered", field="manual_progress")
    changed = {k: v for k, v in fields.items() if getattr(goal, k) != v}
    if not changed:
        return (await _read(session, goal))[0]
    for k, v in changed.items():
        setattr(goal, k, v)
    goal.version += 1
    goal.updated_at = utc_now()
    return await _publish(session, goal)


async def get_goal(session: AsyncSession, c: g.GetGoal) -> g.GoalDetail:
    goal = await repository.get(session, c.goal_id)
    if goal is None:
        raise NotFound(f"no goal {c.goal_id}", field="goal_id")
    snapshot, contributions = await _read(session, goal)
    return g.GoalDetail(**snapshot.model_dump(), contributions=contributions)


async def list_goals(session: AsyncSession, c: g.ListGoals) -> g.GoalList:
    return g.GoalList(items=[(await _read(session, goal))[0] for goal in await repository.listing(session, c)],
                      today=today())
