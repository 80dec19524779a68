"""The team and each member's own KPIs. A member sees their own page; managers and the VP see all.

Figures come from the pipeline KPI read model narrowed to the deals a person owns (deals are owned
by user id, see gateway/people.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as pc
from gateway.auth import Role
from gateway.models import User
from gateway.read_models import pipeline as pipeline_models
from gateway.read_models import week as week_models
from gateway.state import sessions
from gateway.web import scope
from gateway.web.common import Viewer, not_found, render

router = APIRouter(include_in_schema=False)
ADVANCED_WINDOW = timedelta(days=7)


@dataclass
class MemberKpis:
    handle: str
    currency: str
    deals_owned: int
    open_amount: Decimal
    weighted_amount: Decimal
    closed_amount: Decimal
    won: int
    lost: int
    win_rate: Decimal | None
    cycle_days: Decimal | None
    advanced: int
    stale: int
    stale_after_days: int
    stale_deals: list[pipeline_models.StuckDeal]
    quarter: str
    quarter_kind: str
    # Closed won this quarter per pipeline (gateway/web/scope.py): the dashboard's table by pipeline, per person.
    pipelines: list[scope.PipelineRow] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.deals_owned or self.won or self.lost)


async def _advanced(session: AsyncSession, owner: str, since: datetime) -> int:
    """Deals of `owner` that moved to another stage since `since` and were not lost by it (a new deal
    has not moved yet)."""
    view = pipeline_models.OpportunityView
    count = await session.scalar(select(func.count()).select_from(view).where(
        view.owner == owner, view.stage_entered_at >= since, view.stage_entered_at > view.created_at,
        view.outcome.not_in([pc.Outcome.lost.value, pc.DELETED_OUTCOME])))
    return int(count or 0)


async def member_kpis(session: AsyncSession, owner: str, today: date, now: datetime) -> MemberKpis:
    k = await pipeline_models.kpis(session, as_of=today, owner=owner, top=5)
    return MemberKpis(
        handle=owner, currency=k.currency, quarter=k.forecast.quarter, quarter_kind=k.forecast.quarter_kind,
        deals_owned=sum(f.deals for f in k.pipeline_by_stage),
        open_amount=sum((f.amount for f in k.pipeline_by_stage), Decimal(0)),
        weighted_amount=sum((f.weighted for f in k.pipeline_by_stage), Decimal(0)),
        closed_amount=sum((o.won_amount for o in k.outcomes_by_pipeline), Decimal(0)),
        won=k.won, lost=k.lost, win_rate=k.win_rate, cycle_days=k.average_cycle_days,
        advanced=await _advanced(session, owner, now - ADVANCED_WINDOW),
        stale=k.stuck.count, stale_after_days=k.stuck.after_days, stale_deals=k.stuck.oldest,
        pipelines=[r for r in scope.by_pipeline(k, [])[0] if r.won or r.lost],
    )


@dataclass
class Reconciliation:
    """The team's won this quarter against the department's (the dashboard's), per pipeline and in all:
    what no listed member owns (no owner, a former member) is the difference, shown, not hidden."""

    rows: list[tuple[str, Decimal, Decimal, Decimal]]  # pipeline label, team, department, owned by no one listed
    currency: str


def reconcile(department: pipeline_models.PipelineKpis, members: list[MemberKpis]) -> Reconciliation:
    dept_rows, dept_all = scope.by_pipeline(department, [])
    rows = []
    for r in [*dept_rows, dept_all]:
        team_total = sum((p.closed_won for m in members for p in m.pipelines if not r.key or p.key == r.key),
                         Decimal(0))
        rows.append((r.label, team_total, r.closed_won, r.closed_won - team_total))
    return Reconciliation(rows=rows, currency=department.currency)


@router.get("/team", response_class=HTMLResponse)
async def team(request: Request, principal: Viewer) -> Response:
    query = select(User).where(User.active, User.role != Role.partner.value).order_by(User.name)
    if principal.role.rank < Role.manager.rank:
        query = query.where(User.id == uuid.UUID(principal.id))
    now = datetime.now(UTC)
    async with sessions(request)() as session:
        users = list(await session.scalars(query))
        kpis = {str(u.id): await member_kpis(session, str(u.id), now.date(), now) for u in users}
        weeks = await week_models.member_weeks(session, [str(u.id) for u in users])
        department = await pipeline_models.kpis(session, as_of=now.date(), top=1)
    totals = reconcile(department, list(kpis.values())) if principal.role.rank >= Role.manager.rank else None
    return render(request, "team.html", {"users": users, "kpis": kpis, "weeks": weeks, "totals": totals,
                                         "quarter": department.forecast.quarter})


@router.get("/team/{user_id}", response_class=HTMLResponse)
async def member(user_id: uuid.UUID, request: Request, principal: Viewer) -> Response:
    async with sessions(request)() as session:
        user = await session.get(User, user_id)
        if user is None or user.role == Role.partner.value:
            return not_found(request, "team member")
        if str(user_id) != principal.id and principal.role.rank < Role.manager.rank:
            return render(request, "forbidden.html",
                          {"detail": "You can see your own KPIs; managers see everyone's."}, status_code=403)
        now = datetime.now(UTC)
        kpis = await member_kpis(session, str(user.id), now.date(), now)
        week = (await week_models.member_weeks(session, [str(user.id)]))[str(user.id)]
    return render(request, "member.html", {"member": user, "kpis": kpis, "week": week})
