"""Onboarding use cases: the template, a plan for each new partner, steps done or reassigned, time to
the first opportunity. Every change to a step republishes its deadline (met once done). Never commits.

Each step is its own deadline thing (`regarding_id` = a UUID made from the plan and the step key), so
each carries its own owner onto that owner's attention list."""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import deadlines as d
from contracts import onboarding as o
from contracts import pipeline as p
from runtime.errors import Conflict, NotFound
from services.relationships.deadlines import service as deadline_service
from services.relationships.onboarding.models import PlanRow, StepRow, TemplateRow
from services.relationships.pipeline_copy import DealRow

# Steps are due by the end of the plan's day in UTC: the team may span zones, the plan has no zone of its own.
ZONE = "UTC"


def due_date(started_on: date, week: int) -> date:
    """The last day of the step's week: week 1 of a plan started on a Monday is due that Sunday."""
    return started_on + timedelta(days=7 * week - 1)


def step_thing(plan_id: uuid.UUID, key: str) -> uuid.UUID:
    return uuid.uuid5(plan_id, key)


async def template(session: AsyncSession) -> o.OnboardingTemplate:
    row = await session.get(TemplateRow, 1)
    if row is None:
        return o.DEFAULT_TEMPLATE
    return o.OnboardingTemplate(steps=tuple(o.TemplateStep.model_validate(s) for s in row.steps), version=row.version)


async def get_template(session: AsyncSession, cmd: o.GetOnboardingTemplate) -> o.OnboardingTemplate:
    return await template(session)


async def set_template(session: AsyncSession, cmd: o.SetOnboardingTemplate) -> o.OnboardingTemplate:
    new = o.OnboardingTemplate(steps=cmd.steps)  # the unique-key rule
    row = await session.get(TemplateRow, 1, with_for_update=True)
    current = row.version if row else 0
    if cmd.expected_version is not None and cmd.expected_version != current:
        raise Conflict(f"the template changed since version {cmd.expected_version} (now {current})",
                       field="expected_version")
    steps = [s.model_dump() for s in new.steps]
    if row is None:
        row = TemplateRow(id=1, steps=steps, version=1)
        session.add(row)
    else:
        row.steps, row.version, row.updated_at = steps, row.version + 1, datetime.now(UTC)
    await session.flush()
    return o.OnboardingTemplate(steps=new.steps, version=row.version)


async def _sync_deadlines(session: AsyncSession, plan: PlanRow, steps: Sequence[StepRow],
                          correlation_id: str | None = None) -> None:
    for s in steps:
        wanted = [deadline_service.Wanted(
            key=f"onboarding:{plan.id}:{s.key}", kind=d.DeadlineKind.onboarding_step_due,
            status=d.DeadlineStatus.met if s.done_at else d.DeadlineStatus.open,
            title=f"{plan.partner_name} onboarding: {s.title}", due_date=s.due_date)]
        await deadline_service.sync(session, regarding=d.Regarding.onboarding_plan,
                                    regarding_id=step_thing(plan.id, s.key), link=f"/onboarding/{plan.partner_id}",
                                    owner=s.owner, currency=None, time_zone=ZONE, wanted=wanted,
                                    correlation_id=correlation_id)


async def start_plans(session: AsyncSession, events: Sequence[p.PartnerCreatedV1]) -> None:
    """A plan from the current template for each partner created (once, however often the event comes)."""
    if not events:
        return
    tpl = await template(session)
    for e in sorted(events, key=lambda x: x.partner_id):
        started_at = e.occurred_at
        row = {"id": uuid.uuid4(), "partner_id": e.partner_id, "partner_name": e.name, "partner_type": e.type.value,
               "started_on": started_at.astimezone(UTC).date(), "started_at": started_at, "version": 1}
        made = await session.scalar(insert(PlanRow).values(**row).on_conflict_do_nothing(
            index_elements=["partner_id"]).returning(PlanRow.id))
        if made is None:
            continue
        plan = await session.get(PlanRow, made)
        assert plan is not None
        steps = [StepRow(plan_id=plan.id, key=s.key, position=i, title=s.title, week=s.week,
                         owner=s.owner or e.owner, due_date=due_date(plan.started_on, s.week))
                 for i, s in enumerate(tpl.steps)]
        session.add_all(steps)
        await session.flush()
        await _sync_deadlines(session, plan, steps, e.correlation_id)


async def _first_opportunities(session: AsyncSession, partner_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    if not partner_ids:
        return {}
    rows = await session.execute(select(DealRow.partner_id, func.min(DealRow.created_at))
                                 .where(DealRow.partner_id.in_(partner_ids)).group_by(DealRow.partner_id))
    return {pid: at for pid, at in rows}


def _days(plan: PlanRow, first: datetime | None) -> int | None:
    # Deals recorded with an earlier start than the partner's own (backfilled history) count as day 0.
    return None if first is None else max(0, (first.astimezone(UTC).date() - plan.started_on).days)


def _contract(plan: PlanRow, steps: Sequence[StepRow], first: datetime | None, today: date) -> o.OnboardingPlan:
    out = [o.PlanStep(key=s.key, title=s.title, week=s.week, owner=s.owner, due_date=s.due_date, done_at=s.done_at,
                      done_by=s.done_by, overdue=s.done_at is None and s.due_date < today) for s in steps]
    return o.OnboardingPlan(
        id=plan.id, version=plan.version, partner_id=plan.partner_id, partner_name=plan.partner_name,
        partner_type=p.PartnerType(plan.partner_type), started_on=plan.started_on, steps=out,
        done=sum(1 for s in out if s.done_at), overdue=sum(1 for s in out if s.overdue),
        first_opportunity_at=first, days_to_first_opportunity=_days(plan, first))


async def _steps(session: AsyncSession, plan_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[StepRow]]:
    out: dict[uuid.UUID, list[StepRow]] = {i: [] for i in plan_ids}
    if plan_ids:
        for s in await session.scalars(select(StepRow).where(StepRow.plan_id.in_(plan_ids))
                                       .order_by(StepRow.plan_id, StepRow.position)):
            out[s.plan_id].append(s)
    return out


async def _plan(session: AsyncSession, partner_id: uuid.UUID, *, for_update: bool = False) -> PlanRow:
    query = select(PlanRow).where(PlanRow.partner_id == partner_id)
    plan = await session.scalar(query.with_for_update() if for_update else query)
    if plan is None:
        raise NotFound(f"no onboarding plan for partner {partner_id}", field="partner_id")
    return plan


async def get_plan(session: AsyncSession, cmd: o.GetOnboardingPlan) -> o.OnboardingPlan:
    plan = await _plan(session, cmd.partner_id)
    first = await _first_opportunities(session, [plan.partner_id])
    return _contract(plan, (await _steps(session, [plan.id]))[plan.id], first.get(plan.partner_id),
                     datetime.now(UTC).date())


async def list_plans(session: AsyncSession, cmd: o.ListOnboardingPlans) -> o.OnboardingPlanList:
    today = datetime.now(UTC).date()
    overdue = (select(func.count()).where(StepRow.plan_id == PlanRow.id, StepRow.done_at.is_(None),
                                          StepRow.due_date < today).scalar_subquery())
    query = select(PlanRow)
    if cmd.open_only:
        query = query.where(select(StepRow.key).where(StepRow.plan_id == PlanRow.id, StepRow.done_at.is_(None))
                            .exists())
    if cmd.owner:
        query = query.where(select(StepRow.key).where(StepRow.plan_id == PlanRow.id, StepRow.owner == cmd.owner)
                            .exists())
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    plans = list(await session.scalars(query.order_by(overdue.desc(), PlanRow.started_on.desc(), PlanRow.id)
                                       .offset(cmd.offset).limit(cmd.limit)))
    steps = await _steps(session, [x.id for x in plans])
    firsts = await _first_opportunities(session, [x.partner_id for x in plans])
    return o.OnboardingPlanList(items=[_contract(x, steps[x.id], firsts.get(x.partner_id), today) for x in plans],
                                total=total, offset=cmd.offset, limit=cmd.limit)


async def update_step(session: AsyncSession, cmd: o.UpdateOnboardingStep) -> o.OnboardingPlan:
    plan = await _plan(session, cmd.partner_id, for_update=True)
    if cmd.expected_version is not None and cmd.expected_version != plan.version:
        raise Conflict(f"the plan changed since version {cmd.expected_version} (now {plan.version})",
                       field="expected_version")
    step = await session.get(StepRow, (plan.id, cmd.key), with_for_update=True)
    if step is None:
        raise NotFound(f"the plan has no step {cmd.key!r}", field="key")
    sent = cmd.model_fields_set
    if "done" in sent and cmd.done is not None and cmd.done != (step.done_at is not None):
        step.done_at, step.done_by = (datetime.now(UTC), cmd.actor) if cmd.done else (None, None)
    if "owner" in sent:
        step.owner = cmd.owner
    if "due_date" in sent and cmd.due_date is not None:
        step.due_date = cmd.due_date
    plan.version += 1
    await session.flush()
    await _sync_deadlines(session, plan, [step], cmd.actor)
    return await get_plan(session, o.GetOnboardingPlan(partner_id=plan.partner_id))


def _summary(partner_type: p.PartnerType, days: list[int | None]) -> o.FirstOpportunityByType:
    known = [x for x in days if x is not None]
    return o.FirstOpportunityByType(
        partner_type=partner_type, partners=len(days), with_opportunity=len(known),
        median_days=float(statistics.median(known)) if known else None,
        average_days=round(statistics.fmean(known), 1) if known else None)


async def first_opportunity_stats(session: AsyncSession, cmd: o.GetFirstOpportunityStats) -> o.FirstOpportunityStats:
    plans = list(await session.scalars(select(PlanRow)))
    firsts = await _first_opportunities(session, [x.partner_id for x in plans])
    by_type: dict[p.PartnerType, list[int | None]] = {}
    for plan in plans:
        by_type.setdefault(p.PartnerType(plan.partner_type), []).append(_days(plan, firsts.get(plan.partner_id)))
    rows = [_summary(t, by_type[t]) for t in p.PartnerType if t in by_type]
    everyone = [x for t in by_type for x in by_type[t]]
    return o.FirstOpportunityStats(by_type=rows, overall=_summary(rows[0].partner_type, everyone) if rows else None)
