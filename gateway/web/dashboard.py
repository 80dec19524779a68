"""The department dashboard, the VP's landing page. Every figure comes from the gateway's read
models (kept from the services' events), so the page stays quick however many deals there are; a
figure whose source has not landed yet shows an empty state, never a made-up number."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import contacts as cc
from contracts import pipeline as pc
from gateway.read_models import commissions as commission_models
from gateway.read_models import forecast as fc
from gateway.read_models import funding as funding_models
from gateway.read_models import partners as partner_models
from gateway.read_models import pipeline as pipeline_models
from gateway.read_models import week as week_models
from gateway.state import bus, sessions
from gateway.web import scope as scope_rows
from gateway.web.common import Viewer, render
from gateway.week_team import team
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
MOVERS = 5
MOVER_WINDOW = timedelta(days=7)


@dataclass
class Attainment:
    currency: str
    target: Decimal
    closed: Decimal
    projected: Decimal
    weighted_open: Decimal
    at_risk: bool
    start: date
    end: date
    trend: list[tuple[date, Decimal]] | None = None

    @property
    def attainment(self) -> float:
        return float(self.closed / self.target) if self.target else 0.0

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def projected_attainment(self) -> float:
        return float(self.projected / self.target) if self.target else 0.0


@dataclass
class Mover:
    id: str
    name: str
    to_stage: str
    amount: Decimal
    currency: str
    moved_at: datetime
    from_stage: str | None = None
    outcome: str = "open"


@dataclass
class Dashboard:
    quarter_label: str
    quarter_kind: str
    days_left: int | None
    currency: str = "USD"
    pipeline_ready: bool = False
    attainment: Attainment | None = None
    stages: list[tuple[str, Decimal, Decimal, int]] | None = None
    stages_pipeline: str = ""
    arr_by_type: list[tuple[str, Decimal]] | None = None
    launches: list[tuple[str, int]] | None = None
    launches_history: list[pipeline_models.Launches] = field(default_factory=list)
    win_rate: float | None = None
    won_count: int = 0
    lost_count: int = 0
    cycle_days: float | None = None
    movers: list[Mover] | None = None
    stuck: pipeline_models.Stuck | None = None
    unconverted: dict[str, Decimal] = field(default_factory=dict)
    partners_by_type: list[tuple[str, int]] = field(default_factory=list)
    partners_total: int = 0
    commissions: list[commission_models.Figure] | None = None
    commissions_quarter: str = ""
    relationships: list[tuple[str, int]] | None = None
    # The team's week: (member's name, their figures), and how many meetings on-time updates count.
    week: list[tuple[str, week_models.MemberWeek]] | None = None
    week_meetings: int = 0
    week_overdue: list[tuple[str, int]] = field(default_factory=list)
    funding: funding_models.Funding | None = None
    goals: list[funding_models.GoalFigure] = field(default_factory=list)
    relationship_health: cc.Health | None = None
    # {(pipeline, stage key): name}, for the `stage_name` filter.
    stage_names: dict[tuple[str, str], str] = field(default_factory=dict)
    # What the KPI strip covers (the forecast pipelines), and every pipeline apart and together.
    scope: scope_rows.PipelineRow | None = None
    pipelines: list[scope_rows.PipelineRow] = field(default_factory=list)
    all_pipelines: scope_rows.PipelineRow | None = None


async def _has_opportunities(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(pipeline_models.OpportunityView.id).limit(1)))


WEEK = timedelta(days=7)


def weekly_running(start: date, today: date, won_by_day: dict[date, dict[str, Decimal]],
                   settings: pc.PipelineSettings) -> list[tuple[date, Decimal]]:
    """Closed won so far, week by week: zero at the quarter's start, then the running total at the end of
    each week of the quarter that has ended, and today. Each point converts the running total of each
    currency (as the KPI does), so the last point equals the quarter's closed won to the cent."""
    running: dict[str, Decimal] = {}
    points = [(start, Decimal(0))]
    days = sorted(d for d in won_by_day if start <= d <= today)

    def upto(day: date) -> Decimal:
        while days and days[0] <= day:
            for currency, amount in won_by_day[days.pop(0)].items():
                running[currency] = running.get(currency, Decimal(0)) + amount
        return fc.convert(running, settings)[0]

    week_end = start + WEEK - timedelta(days=1)
    while week_end < today:
        points.append((week_end, upto(week_end)))
        week_end += WEEK
    if today >= start:
        points.append((today, upto(today)))
    return points


async def _quarter_trend(session: AsyncSession, settings: pc.PipelineSettings, start: date, today: date,
                         ) -> list[tuple[date, Decimal]]:
    """The quarter's closed won (forecast pipelines), week by week (`weekly_running`), from the won deals
    of the read model summed per day and currency."""
    view = pipeline_models.OpportunityView
    day = func.date(func.timezone("UTC", view.closed_at))
    since = datetime(start.year, start.month, start.day, tzinfo=UTC)
    until = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    rows = (await session.execute(
        select(day, view.currency, func.sum(view.amount))
        .where(view.outcome == pc.Outcome.won.value, view.closed_at >= since, view.closed_at < until,
               view.pipeline.in_(settings.forecast_pipelines))
        .group_by(day, view.currency))).tuples().all()
    won: dict[date, dict[str, Decimal]] = {}
    for d, currency, amount in rows:
        won.setdefault(d, {})[currency] = amount
    return weekly_running(start, today, won, settings)


async def _movers(session: AsyncSession, now: datetime, names: dict[tuple[str, str], str]) -> list[Mover]:
    """The biggest deals that changed stage in the last seven days (new deals are not moves), with the
    stage names they moved from and to, all from the read model (the page works with the pipeline down)."""
    view = pipeline_models.OpportunityView
    # Ids first, from the covering index alone (gateway_web_0001); then the few rows themselves.
    top = (select(view.id).where(view.stage_entered_at >= now - MOVER_WINDOW, view.stage_entered_at > view.created_at,
                                 view.outcome != pc.DELETED_OUTCOME)
           .order_by(view.amount.desc(), view.id).limit(MOVERS).subquery())
    rows = await session.scalars(select(view).join(top, top.c.id == view.id).order_by(view.amount.desc(), view.id))
    return [Mover(id=str(o.id), name=o.name, to_stage=names.get((o.pipeline, o.stage), o.stage), amount=o.amount,
                  currency=o.currency, moved_at=o.stage_entered_at, outcome=o.outcome,
                  from_stage=names.get((o.pipeline, o.previous_stage), o.previous_stage) if o.previous_stage else None)
            for o in rows]


async def _relationship_health(request: Request, actor: str) -> cc.Health | None:
    """Relationship health from the relationships service (strength is a function of the time, so it is
    asked, not kept); without the service the card shows that it is unavailable, never a made-up number."""
    with contextlib.suppress(CommandFailed, TimeoutError):
        health: cc.Health = await send(bus(request), cc.GetRelationshipHealth(actor=actor), timeout=3)
        return health
    return None


@dataclass
class _Read:
    """Everything the dashboard shows, as the read models hold it (one session, no service asked)."""

    counts: dict[str, int]
    kpis: pipeline_models.PipelineKpis
    has_deals: bool
    settings: pc.PipelineSettings
    stage_sets: dict[str, list[pipeline_models.StageView]]
    names: dict[tuple[str, str], str]
    trend: list[tuple[date, Decimal]] | None
    movers: list[Mover]
    commissions: commission_models.CommissionKpis
    weeks: dict[Any, Any]
    funding: Any
    goals: Any


async def _read(session: AsyncSession, members: list[Any], now: datetime, today: date) -> _Read:
    k = await pipeline_models.kpis(session, as_of=today)
    has_deals = await _has_opportunities(session)
    settings = await pipeline_models.settings_of(session)
    stage_sets = await pipeline_models.stage_sets(session)
    names = {(p, s.stage): s.name for p, stages in stage_sets.items() for s in stages}
    return _Read(
        counts=await partner_models.partner_counts(session), kpis=k, has_deals=has_deals, settings=settings,
        stage_sets=stage_sets, names=names,
        trend=await _quarter_trend(session, settings, k.forecast.starts_on, today) if has_deals else None,
        movers=await _movers(session, now, names) if has_deals else [],
        commissions=await commission_models.kpis(session, today),
        weeks=await week_models.member_weeks(session, [m.user_id for m in members]),
        funding=await funding_models.funding(session, today.year), goals=await funding_models.goals(session, today))


def _team_and_money(d: Dashboard, r: _Read, members: list[Any]) -> None:
    """Partners, commissions, the team's week, funding and goals: shown with or without deals."""
    d.partners_by_type = [(t, n) for t, n in r.counts.items() if n]
    d.partners_total = sum(r.counts.values())
    d.commissions = list(r.commissions.figures) or None
    d.commissions_quarter = r.commissions.quarter
    d.week_meetings = max((w.weeks for w in r.weeks.values()), default=0)
    if d.week_meetings or any(w.open_tasks for w in r.weeks.values()):
        d.week = [(m.name, r.weeks[m.user_id]) for m in members]
        d.week_overdue = [(name, w.overdue_tasks) for name, w in d.week]
    d.funding = r.funding if r.funding.figures or r.funding.deadlines else None
    d.goals = r.goals


def _funnel(d: Dashboard, r: _Read) -> None:
    """The forecast pipeline (the one the target is about), every open stage in order."""
    key = r.settings.forecast_pipelines[0]
    d.stages_pipeline = key
    figures = {s.stage: s for s in r.kpis.pipeline_by_stage if s.pipeline == key}
    d.stages = [(s.name, figures[s.stage].amount if s.stage in figures else Decimal(0),
                 figures[s.stage].weighted if s.stage in figures else Decimal(0),
                 figures[s.stage].deals if s.stage in figures else 0)
                for s in r.stage_sets.get(key, []) if s.outcome == pc.Outcome.open.value]
    if not any(amount for _, amount, _, _ in d.stages):
        d.stages = None


def _pipeline(d: Dashboard, r: _Read) -> None:
    """The pipeline's cards: attainment, funnel, ARR, launches, outcomes, stuck deals and movers."""
    k, f = r.kpis, r.kpis.forecast
    d.attainment = Attainment(currency=f.currency, target=f.target, closed=f.closed_won, projected=f.projected,
                              weighted_open=f.weighted_pipeline, at_risk=f.at_risk, start=f.starts_on,
                              end=f.ends_on + timedelta(days=1), trend=r.trend)
    d.unconverted = f.unconverted
    _funnel(d, r)
    d.arr_by_type = [(t, a) for t, a in k.arr_by_partner_type.items() if a] or None
    current = k.launches[-1] if k.launches else None
    if current and any(current.by_hyperscaler.values()):
        d.launches = [(h.upper(), n) for h, n in current.by_hyperscaler.items()]
    d.launches_history = k.launches
    # Win rate and cycle time cover the same pipelines as closed won (the target's); the table by
    # pipeline shows each apart and all together.
    d.pipelines, d.all_pipelines = scope_rows.by_pipeline(k, [*r.settings.forecast_pipelines, *r.stage_sets])
    d.scope = scope_rows.forecast_scope(d.pipelines, list(r.settings.forecast_pipelines))
    d.win_rate = float(d.scope.win_rate) if d.scope.win_rate is not None else None
    d.won_count, d.lost_count = d.scope.won, d.scope.lost
    d.cycle_days = float(d.scope.cycle_days) if d.scope.cycle_days is not None else None
    d.stuck = k.stuck
    d.stage_names = r.names
    d.movers = r.movers


async def load(request: Request, actor: str, today: date | None = None) -> Dashboard:
    now = datetime.now(UTC)
    today = today or now.date()
    members, _ = await team(request)
    async with sessions(request)() as session:
        r = await _read(session, members, now, today)
    f = r.kpis.forecast
    d = Dashboard(quarter_label=f.quarter, quarter_kind=f.quarter_kind, days_left=f.days_left,
                  currency=r.kpis.currency, pipeline_ready=r.has_deals)
    _team_and_money(d, r, members)
    d.relationship_health = await _relationship_health(request, actor)
    if d.relationship_health and d.relationship_health.contacts:
        d.relationships = list(d.relationship_health.distribution)
    if r.has_deals:
        _pipeline(d, r)
    return d


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, principal: Viewer) -> Response:
    d = await load(request, principal.name)
    return render(request, "dashboard.html", {"d": d, "stage_names": d.stage_names})
