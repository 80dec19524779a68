"""Reading the pipeline KPIs for a fiscal quarter (optionally one owner's): by stage, the forecast, ARR,
launches, outcomes and stuck deals."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    String,
    Uuid,
    case,
    cast,
    func,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as pc
from contracts.quarters import Quarter, add_months
from gateway.read_models import forecast as fc
from gateway.read_models.partners import PartnerView
from gateway.read_models.pipeline.arr import _rates, _window_current
from gateway.read_models.pipeline.tables import (
    ArrWindow,
    ClosedAgg,
    LaunchAgg,
    OpenAgg,
    OpportunityView,
    PartnerArrTotal,
    PartnerWonAgg,
    StuckAgg,
    settings_of,
    stage_sets,
)


class StageFigure(BaseModel):
    pipeline: str
    stage: str
    name: str
    probability: int
    deals: int
    amount: Decimal
    weighted: Decimal


class PartnerArr(BaseModel):
    partner_id: uuid.UUID | None
    name: str
    type: str
    arr: Decimal


class PipelineOutcomes(BaseModel):
    pipeline: str
    won: int
    lost: int
    won_amount: Decimal
    win_rate: Decimal | None
    average_cycle_days: Decimal | None


class Launches(BaseModel):
    quarter: str
    by_hyperscaler: dict[str, int]


class StuckDeal(BaseModel):
    id: uuid.UUID
    name: str
    pipeline: str
    stage: str
    owner: str | None
    amount: Decimal
    currency: str
    in_stage_since: datetime
    days_in_stage: int


class Stuck(BaseModel):
    after_days: int
    count: int
    oldest: list[StuckDeal]


class PipelineKpis(BaseModel):
    """The pipeline's KPIs at a glance. Money is in `currency` (the reporting currency)."""

    as_of: date
    owner: str | None
    currency: str
    settings_version: int
    forecast: fc.Forecast
    pipeline_by_stage: list[StageFigure]
    weighted_pipeline_total: Decimal = Field(description=(
        "Every open deal of every pipeline, whatever its close date, amount x stage probability (the sum of "
        "pipeline_by_stage[].weighted). Not forecast.weighted_pipeline, which counts only the forecast "
        "pipelines' deals expected to close by this quarter's end (what `projected` adds to closed won)."))
    win_rate: Decimal | None
    won: int
    lost: int
    average_cycle_days: Decimal | None
    outcomes_by_pipeline: list[PipelineOutcomes]
    arr_from: date
    arr_to: date
    arr_by_partner: list[PartnerArr]
    arr_by_partner_type: dict[str, Decimal]
    launches: list[Launches]
    stuck: Stuck


def _owner_filter(column: Any, owner: str | None) -> list[Any]:
    return [column == owner] if owner is not None else []


async def kpis(session: AsyncSession, *, as_of: date, owner: str | None = None, top: int = 10) -> PipelineKpis:
    """Every pipeline KPI for the fiscal quarter holding `as_of`; `owner` narrows deal figures to the
    deals a team member owns, and partner figures (ARR) to the partners they own."""
    # The per-partner ARR aggregate holds tens of thousands of groups at scale: keep it in memory.
    await session.execute(text("SET LOCAL work_mem = '32MB'"))
    settings = await settings_of(session)
    stages = await stage_sets(session)
    stage_of = {(p, s.stage): s for p, ss in stages.items() for s in ss}
    # stage_sets() already holds the sets in force (built-in unless defined): the one rule weighs them.
    in_force: pc.Probabilities = {key: s.probability for key, s in stage_of.items()}
    quarter = Quarter.fiscal_of(as_of, settings.fiscal_year_start_month)
    first_month, last_month = quarter.months()
    forecast_pipelines = set(settings.forecast_pipelines)

    # Open deals: by stage (everything) and the weighted forecast (closing by the quarter's end).
    in_quarter = (OpenAgg.close_month <= last_month).label("by_quarter_end")
    open_rows = (await session.execute(
        select(OpenAgg.pipeline, OpenAgg.stage, OpenAgg.currency, in_quarter, func.sum(OpenAgg.deals),
               func.sum(OpenAgg.amount))
        .where(*_owner_filter(OpenAgg.owner, owner))
        .group_by(OpenAgg.pipeline, OpenAgg.stage, OpenAgg.currency, in_quarter)
    )).tuples().all()
    by_stage: dict[tuple[str, str], dict[str, Any]] = {}
    weighted_in_quarter: list[tuple[int, str, Decimal]] = []
    weighted_all: list[tuple[int, str, Decimal]] = []
    for pipeline, stage, currency, by_quarter_end, deals, amount in open_rows:
        if not deals and not amount:
            continue
        p = pc.probability_of(in_force, pipeline, stage)
        entry = by_stage.setdefault((pipeline, stage), {"deals": 0, "amount": {}, "weighted": []})
        entry["deals"] += int(deals)
        entry["amount"][currency] = entry["amount"].get(currency, Decimal(0)) + amount
        entry["weighted"].append((p, currency, amount))
        if pipeline in forecast_pipelines:
            weighted_all.append((p, currency, amount))
            if by_quarter_end:
                weighted_in_quarter.append((p, currency, amount))
    figures = []
    for (pipeline, stage), entry in by_stage.items():
        known = stage_of.get((pipeline, stage))
        figures.append(StageFigure(
            pipeline=pipeline, stage=stage, name=known.name if known else stage,
            probability=pc.probability_of(in_force, pipeline, stage), deals=entry["deals"],
            amount=fc.convert(entry["amount"], settings)[0], weighted=fc.convert(fc.weighted(entry["weighted"]),
                                                                                  settings)[0]))
    figures.sort(key=lambda f: (f.pipeline, stage_of[(f.pipeline, f.stage)].position
                                if (f.pipeline, f.stage) in stage_of else 99))

    # Closed in the quarter: closed won (forecast pipelines), win rate and cycle time per pipeline.
    closed_rows = (await session.execute(
        select(ClosedAgg.pipeline, ClosedAgg.outcome, ClosedAgg.currency, func.sum(ClosedAgg.deals),
               func.sum(ClosedAgg.amount), func.sum(ClosedAgg.cycle_seconds))
        .where(ClosedAgg.month >= first_month, ClosedAgg.month <= last_month, *_owner_filter(ClosedAgg.owner, owner))
        .group_by(ClosedAgg.pipeline, ClosedAgg.outcome, ClosedAgg.currency)
    )).tuples().all()
    closed_won: dict[str, Decimal] = {}
    per_pipeline: dict[str, dict[str, Any]] = {}
    for pipeline, outcome, currency, deals, amount, cycle in closed_rows:
        entry = per_pipeline.setdefault(pipeline, {"won": 0, "lost": 0, "won_amount": {}, "cycle": Decimal(0)})
        entry[outcome] += int(deals)
        if outcome == pc.Outcome.won.value:
            entry["won_amount"][currency] = entry["won_amount"].get(currency, Decimal(0)) + amount
            entry["cycle"] += cycle
            if pipeline in forecast_pipelines:
                closed_won[currency] = closed_won.get(currency, Decimal(0)) + amount
    outcomes = [PipelineOutcomes(
        pipeline=p, won=e["won"], lost=e["lost"], won_amount=fc.convert(e["won_amount"], settings)[0],
        win_rate=fc.ratio(Decimal(e["won"]), Decimal(e["won"] + e["lost"])),
        average_cycle_days=fc.average_days(e["cycle"], e["won"])) for p, e in sorted(per_pipeline.items())]
    won = sum(e["won"] for e in per_pipeline.values())
    lost = sum(e["lost"] for e in per_pipeline.values())

    arr_from, arr_to = add_months(fc.month_of(as_of), -11), fc.month_of(as_of)
    arr_top, arr_types = await _arr(session, settings, arr_from, arr_to, owner, top)
    launches = await _launches(session, settings, quarter, owner)
    stuck = await _stuck(session, as_of, settings.stuck_after_days, owner, top)
    return PipelineKpis(
        as_of=as_of, owner=owner, currency=settings.reporting_currency, settings_version=settings.version,
        forecast=fc.forecast(as_of=as_of, settings=settings, closed_won=closed_won,
                             weighted_open=fc.weighted(weighted_in_quarter)),
        pipeline_by_stage=figures, weighted_pipeline_total=fc.convert(fc.weighted(weighted_all), settings)[0],
        win_rate=fc.ratio(Decimal(won), Decimal(won + lost)), won=won, lost=lost,
        average_cycle_days=fc.average_days(sum((e["cycle"] for e in per_pipeline.values()), Decimal(0)), won),
        outcomes_by_pipeline=outcomes, arr_from=arr_from, arr_to=add_months(arr_to, 1) - timedelta(days=1),
        arr_by_partner=arr_top, arr_by_partner_type=arr_types, launches=launches, stuck=stuck,
    )


async def _arr(session: AsyncSession, settings: pc.PipelineSettings, first: date, last: date, owner: str | None,
               top: int) -> tuple[list[PartnerArr], dict[str, Decimal]]:
    """Won amounts over the trailing twelve months, per partner (top N) and per partner type. Each
    partner's total per currency is converted and rounded to the cent, then added up."""
    window = await session.scalar(select(ArrWindow).where(ArrWindow.id == 1))
    if _window_current(window, last, settings):
        # The consumers keep this window's ARR per partner: ten thousand partners, not a year of months.
        per_partner = select(PartnerArrTotal.partner_id, PartnerArrTotal.arr).cte("per_partner")
    else:
        rates = _rates(settings)
        per_currency = (
            select(PartnerWonAgg.partner_id, PartnerWonAgg.currency, func.sum(PartnerWonAgg.amount).label("amount"))
            .where(PartnerWonAgg.month >= first, PartnerWonAgg.month <= last)
            .group_by(PartnerWonAgg.partner_id, PartnerWonAgg.currency)
            .cte("per_currency")
        )
        per_partner = (
            select(per_currency.c.partner_id,
                   func.sum(func.round(per_currency.c.amount * rates.c.rate, 2)).label("arr"))
            .join(rates, rates.c.currency == per_currency.c.currency)
            .group_by(per_currency.c.partner_id)
            .cte("per_partner")
        )
    nil = uuid.UUID(fc.NIL_PARTNER)
    joined = (select(per_partner.c.partner_id, per_partner.c.arr, PartnerView.name, PartnerView.type)
              .outerjoin(PartnerView, PartnerView.id == per_partner.c.partner_id)
              .where(per_partner.c.arr > 0, PartnerView.archived.is_not(True)))
    if owner is not None:
        joined = joined.where(PartnerView.owner == owner)
    sub = joined.cte("arr")
    # One statement: the per-partner totals are computed once for both the top N and the types.
    type_label = case((sub.c.partner_id == nil, literal("unassigned")), else_=func.coalesce(sub.c.type, "unknown"))
    top_rows = (select(literal("top").label("kind"), sub.c.partner_id, sub.c.arr, sub.c.name, sub.c.type)
                .order_by(sub.c.arr.desc(), sub.c.partner_id).limit(top).subquery())
    type_rows = select(literal("type").label("kind"), cast(null(), Uuid).label("partner_id"),
                       func.sum(sub.c.arr).label("arr"), cast(null(), String).label("name"),
                       type_label.label("type")).group_by(type_label)
    rows = (await session.execute(union_all(select(top_rows), type_rows))).all()
    partners = [PartnerArr(partner_id=None if r.partner_id == nil else r.partner_id,
                           name=r.name or ("(no partner)" if r.partner_id == nil else "(unknown partner)"),
                           type=r.type or ("unassigned" if r.partner_id == nil else "unknown"), arr=r.arr)
                for r in sorted((r for r in rows if r.kind == "top"), key=lambda r: (-r.arr, str(r.partner_id)))]
    return partners, {r.type: r.arr for r in sorted((r for r in rows if r.kind == "type"), key=lambda r: r.type)}


async def _launches(session: AsyncSession, settings: pc.PipelineSettings, quarter: Quarter,
                    owner: str | None) -> list[Launches]:
    """Launches per hyperscaler for the fiscal quarter and the three before it."""
    quarters = [quarter.shift(n) for n in range(-3, 1)]
    start = settings.fiscal_year_start_month
    first = quarters[0].months()[0]
    last = quarters[-1].months()[1]
    rows = (await session.execute(
        select(LaunchAgg.month, LaunchAgg.hyperscaler, func.sum(LaunchAgg.launches))
        .where(LaunchAgg.month >= first, LaunchAgg.month <= last, *_owner_filter(LaunchAgg.owner, owner))
        .group_by(LaunchAgg.month, LaunchAgg.hyperscaler)
    )).tuples().all()
    out = {q: {h.value: 0 for h in pc.Hyperscaler} for q in quarters}
    for month, hyperscaler, n in rows:
        q = Quarter.fiscal_of(month, start)
        if q in out and n:
            key = hyperscaler or "unspecified"
            out[q][key] = out[q].get(key, 0) + int(n)
    return [Launches(quarter=q.label, by_hyperscaler=counts) for q, counts in out.items()]


async def _stuck(session: AsyncSession, as_of: date, after_days: int, owner: str | None, top: int) -> Stuck:
    """Open deals that entered their stage on or before the day `after_days` before `as_of` (UTC days)."""
    cutoff = as_of - timedelta(days=after_days)
    before = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC) + timedelta(days=1)
    if owner is None:
        count = await session.scalar(select(func.coalesce(func.sum(StuckAgg.deals), 0))
                                     .where(StuckAgg.entered_day <= cutoff))
    else:
        count = await session.scalar(select(func.count()).select_from(OpportunityView).where(
            OpportunityView.outcome == pc.Outcome.open.value, OpportunityView.owner == owner,
            OpportunityView.stage_entered_at < before))
    oldest = (await session.scalars(
        select(OpportunityView)
        .where(OpportunityView.outcome == pc.Outcome.open.value, OpportunityView.stage_entered_at < before,
               *_owner_filter(OpportunityView.owner, owner))
        .order_by(OpportunityView.stage_entered_at, OpportunityView.id).limit(top)
    )).all()
    return Stuck(after_days=after_days, count=int(count or 0), oldest=[
        StuckDeal(id=o.id, name=o.name, pipeline=o.pipeline, stage=o.stage, owner=o.owner, amount=o.amount,
                  currency=o.currency, in_stage_since=o.stage_entered_at,
                  days_in_stage=(as_of - fc.day_of(o.stage_entered_at)).days) for o in oldest])
