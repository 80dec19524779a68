"""The partner portal's API: what a partner user may see and do, always about their own organisation.

Every read here is scoped to `principal.partner_id` (from the signed-in user's record, never from
the request): a deal or registration of another partner answers 404, exactly as one that does not
exist, so ids of other partners' records cannot even be confirmed. What a partner sees of a deal or
a registration is a narrower shape than the team's (no conflicts found with other partners' deals,
no internal owner, no sync metadata).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts import commissions as cc
from contracts import enablement as ec
from contracts import onboarding as oc
from contracts import pipeline as pc
from contracts import registrations as rc
from contracts.fields import Currency, Day, Name, Offset, line, text
from contracts.money import Amount
from gateway import audit, people
from gateway.auth import Principal, require_partner
from gateway.routes.commissions import PeriodPath, statement_csv
from gateway.state import bus
from runtime.commands import send
from runtime.csv_cells import safe_row
from runtime.errors import CommandFailed

router = APIRouter(prefix="/api/portal", tags=["portal"])
PartnerUser = Annotated[Principal, Depends(require_partner())]


def partner_of(principal: Principal) -> UUID:
    assert principal.partner_id is not None  # require_partner refuses anyone without one
    return principal.partner_id


class TierProgress(BaseModel):
    tier: pc.PartnerTier
    tier_auto: bool = Field(description="False: the tier was set by hand and does not follow revenue.")
    trailing_revenue: Decimal = Field(description="Won revenue over the tier window, in the reporting currency.")
    currency: str = Field(description="The reporting currency.")
    window_days: int = Field(description="How many days of won revenue count.")
    next_tier: pc.PartnerTier | None = Field(description="None at the top tier.")
    next_threshold: Decimal | None = Field(description="Trailing revenue at which the next tier begins.")
    remaining: Decimal | None = Field(description="What is still missing to reach the next tier.")
    percent: int = Field(description="Progress from this tier's threshold to the next, 0-100.")
    benefits: list[str] = Field(default_factory=list, description="What this tier gives (the tier table).")
    commission_rate: Decimal | None = Field(default=None, description="This tier's commission rate, percent.")
    next_change: pc.TierChange | None = Field(default=None, description="What reaching the next tier gains and "
                                              "loses; none at the top tier.")


class PortalSummary(BaseModel):
    partner_id: UUID
    name: str
    type: pc.PartnerType
    status: pc.PartnerStatus
    owner_name: str | None = Field(description="Your contact on our team.")
    progress: TierProgress


class PortalDeal(BaseModel):
    """A deal as its partner sees it."""

    id: UUID
    name: str
    customer: str
    stage: str = Field(description="The stage's name.")
    outcome: pc.Outcome
    amount: Decimal
    currency: str
    expected_close_date: date | None
    created_at: datetime
    closed_at: datetime | None


class PortalDealList(BaseModel):
    items: list[PortalDeal]
    total: int = Field(description="Deals of your organisation matching the filter.")
    offset: int
    limit: int


class PortalRegistration(BaseModel):
    """A registration as the partner who made it sees it: the status and the owner's words, not what the
    conflict check found (that may be another partner's deal)."""

    id: UUID
    name: str
    customer: str
    amount: Decimal
    currency: str
    expected_close_date: date | None
    deal_model: pc.DealModel
    notes: str
    status: rc.RegistrationStatus
    submitted_by: str
    submitted_at: datetime
    decided_at: datetime | None
    reason: str | None
    opportunity_id: UUID | None


class PortalRegistrationList(BaseModel):
    items: list[PortalRegistration]
    total: int = Field(description="Registrations of your organisation with this status (all when none given).")
    offset: int
    limit: int


class PortalStep(BaseModel):
    title: str
    week: int
    due_date: date
    done: bool
    overdue: bool
    owner_name: str | None = Field(description="Who on our team sees to it.")


class PortalOnboarding(BaseModel):
    started_on: date
    steps: list[PortalStep]
    done: int = Field(description="Steps done.")
    total: int = Field(description="Steps in the plan.")


class PortalCertification(BaseModel):
    person: str
    module: str
    status: ec.CertificationStatus
    due_on: date | None
    taken_on: date | None
    expires_on: date | None


class PortalEnablement(BaseModel):
    score: Decimal | None = Field(description="Share of the required modules your people hold a valid "
                                              "certification for, percent; none while none is required.")
    required_modules: int
    covered_modules: int
    certifications: list[PortalCertification]


class RegistrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name = Field(description="What the deal is, e.g. 'Acme data platform migration'.")
    customer: Name
    amount: Amount
    currency: Currency = "USD"
    expected_close_date: Day | None = None
    deal_model: pc.DealModel = pc.DealModel.referral
    notes: text(4000) = ""


def progress(partner: pc.Partner, settings: pc.PipelineSettings) -> TierProgress:
    """Where the partner stands between its tier's threshold and the next one, what its tier gives and what
    the next one would gain or lose (thresholds, benefits and rates: the pipeline settings' one tier table)."""
    t = settings.tier_thresholds
    floors = {pc.PartnerTier.bronze: Decimal(0), pc.PartnerTier.silver: t.silver, pc.PartnerTier.gold: t.gold,
              pc.PartnerTier.platinum: t.platinum}
    revenue = partner.trailing_revenue or Decimal(0)
    order = pc.TIER_ORDER
    at = order.index(partner.tier)
    nxt = order[at + 1] if at + 1 < len(order) else None
    table = settings.tier_benefits
    here = table.of(partner.tier)
    mine = {"benefits": list(here.benefits), "commission_rate": here.commission_rate}
    if nxt is None:
        return TierProgress(tier=partner.tier, tier_auto=partner.tier_auto, trailing_revenue=revenue,
                            currency=settings.reporting_currency, window_days=settings.tier_window_days,
                            next_tier=None, next_threshold=None, remaining=None, percent=100, **mine)
    floor, ceiling = floors[partner.tier], floors[nxt]
    share = (revenue - floor) / (ceiling - floor) if ceiling > floor else Decimal(1)
    return TierProgress(tier=partner.tier, tier_auto=partner.tier_auto, trailing_revenue=revenue,
                        currency=settings.reporting_currency, window_days=settings.tier_window_days, next_tier=nxt,
                        next_threshold=ceiling, remaining=max(Decimal(0), ceiling - revenue),
                        percent=int(max(Decimal(0), min(Decimal(1), share)) * 100), **mine,
                        next_change=pc.tier_change(table, partner.tier, nxt))


def deal_view(o: pc.Opportunity) -> PortalDeal:
    return PortalDeal(id=o.id, name=o.name, customer=o.customer, stage=o.stage_name, outcome=o.outcome,
                      amount=o.amount, currency=o.currency, expected_close_date=o.expected_close_date,
                      created_at=o.created_at, closed_at=o.closed_at)


def registration_view(x: rc.Registration) -> PortalRegistration:
    return PortalRegistration(id=x.id, name=x.name, customer=x.customer, amount=x.amount, currency=x.currency,
                              expected_close_date=x.expected_close_date, deal_model=x.deal_model, notes=x.notes,
                              status=x.status, submitted_by=x.submitted_by, submitted_at=x.submitted_at,
                              decided_at=x.decided_at, reason=x.reason, opportunity_id=x.opportunity_id)


async def summary_of(request: Request, principal: Principal) -> PortalSummary:
    partner: pc.Partner = await send(bus(request), pc.GetPartner(partner_id=partner_of(principal),
                                                                 actor=principal.name))
    settings: pc.PipelineSettings = await send(bus(request), pc.GetPipelineSettings(actor=principal.name))
    owner = people.name_for(request, partner.owner) if partner.owner else None
    return PortalSummary(partner_id=partner.id, name=partner.name, type=partner.type, status=partner.status,
                         owner_name=owner, progress=progress(partner, settings))


async def deals_of(request: Request, principal: Principal, *, q: str | None = None, offset: int = 0,
                   limit: int = 50) -> PortalDealList:
    listing: pc.OpportunityList = await send(bus(request), pc.ListOpportunities(
        partner_id=partner_of(principal), q=q, offset=offset, limit=limit, actor=principal.name))
    return PortalDealList(items=[deal_view(o) for o in listing.items], total=listing.total, offset=offset,
                          limit=limit)


async def deal_of(request: Request, principal: Principal, opportunity_id: UUID) -> pc.OpportunityDetail:
    """The deal if it is this partner's; 404 otherwise (whether it exists is not the partner's business)."""
    try:
        o: pc.OpportunityDetail = await send(bus(request), pc.GetOpportunity(opportunity_id=opportunity_id,
                                                                              actor=principal.name))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            raise HTTPException(404, detail="no such deal") from exc
        raise
    # A deleted deal is gone from the portal as from everywhere else.
    if o.partner_id != partner_of(principal) or o.deleted_at is not None:
        raise HTTPException(404, detail="no such deal")
    return o


async def registrations_of(request: Request, principal: Principal, *, status: rc.RegistrationStatus | None = None,
                           offset: int = 0, limit: int = 50) -> PortalRegistrationList:
    listing: rc.RegistrationList = await send(bus(request), rc.ListRegistrations(
        partner_id=partner_of(principal), status=status, offset=offset, limit=limit, actor=principal.name))
    return PortalRegistrationList(items=[registration_view(x) for x in listing.items], total=listing.total,
                                  offset=offset, limit=limit)


async def register(request: Request, principal: Principal, body: RegistrationIn) -> PortalRegistration:
    made: rc.Registration = await send(bus(request), rc.RegisterDeal(
        partner_id=partner_of(principal), **body.model_dump(), actor=principal.name))
    await audit.record_change(request, principal.name, "registration.submitted", entity="deal_registration",
                              entity_id=made.id, after=registration_view(made))
    return registration_view(made)


async def onboarding_of(request: Request, principal: Principal) -> PortalOnboarding | None:
    """The partner's onboarding plan, or None when it has none (partners added before plans existed)."""
    try:
        plan: oc.OnboardingPlan = await send(bus(request), oc.GetOnboardingPlan(partner_id=partner_of(principal),
                                                                                 actor=principal.name))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return None
        raise
    steps = [PortalStep(title=s.title, week=s.week, due_date=s.due_date, done=s.done_at is not None,
                        overdue=s.overdue, owner_name=people.name_for(request, s.owner) if s.owner else None)
             for s in plan.steps]
    return PortalOnboarding(started_on=plan.started_on, steps=steps, done=plan.done, total=len(steps))


async def enablement_of(request: Request, principal: Principal) -> PortalEnablement:
    """The partner's own people's certifications (who on our team sees to them is left out)."""
    try:
        found: ec.PartnerEnablement = await send(bus(request), ec.GetPartnerEnablement(
            partner_id=partner_of(principal), actor=principal.name))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":  # the relationships service has not heard of the partner yet
            return PortalEnablement(score=None, required_modules=0, covered_modules=0, certifications=[])
        raise
    certs = [PortalCertification(person=c.contact_name, module=c.module_name, status=c.status, due_on=c.due_on,
                                 taken_on=c.taken_on, expires_on=c.expires_on) for c in found.certifications]
    return PortalEnablement(score=found.score, required_modules=found.required_modules,
                            covered_modules=found.covered_modules, certifications=certs)


async def statement_of(request: Request, principal: Principal, period: str) -> cc.Statement:
    statement: cc.Statement = await send(bus(request), cc.GetStatement(partner_id=partner_of(principal),
                                                                       period=period, actor=principal.name))
    return statement


def this_quarter(now: datetime | None = None) -> str:
    day = (now or datetime.now(UTC)).date()
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


@router.get("/summary", response_model=PortalSummary)
async def summary(request: Request, principal: PartnerUser) -> PortalSummary:
    """Your organisation, its tier and how far it is from the next one."""
    return await summary_of(request, principal)


@router.get("/onboarding", response_model=PortalOnboarding | None)
async def onboarding(request: Request, principal: PartnerUser) -> PortalOnboarding | None:
    """Your onboarding plan with us: the steps, when each is due and whether it is done (null: none)."""
    return await onboarding_of(request, principal)


@router.get("/certifications", response_model=PortalEnablement)
async def certifications(request: Request, principal: PartnerUser) -> PortalEnablement:
    """Your people's certifications with us: passed, failed, due or expired, and when each lapses."""
    return await enablement_of(request, principal)


@router.get("/deals", response_model=PortalDealList)
async def list_deals(
    request: Request,
    principal: PartnerUser,
    q: Annotated[line(200) | None, Query(description="Part of the name or customer.")] = None,
    offset: Annotated[Offset, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PortalDealList:
    """Your organisation's deals, newest first."""
    return await deals_of(request, principal, q=q, offset=offset, limit=limit)


PORTAL_CSV = ("id", "name", "customer", "stage", "outcome", "amount", "currency", "expected_close_date",
              "created_at", "closed_at")


@router.get("/deals.csv", response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def deals_csv(request: Request, principal: PartnerUser) -> StreamingResponse:
    """Your organisation's deals as CSV (every one, newest first)."""

    async def lines() -> AsyncIterator[str]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(PORTAL_CSV)
        offset = 0
        while True:
            page = await deals_of(request, principal, offset=offset, limit=500)
            for d in page.items:
                writer.writerow(safe_row(["" if getattr(d, c) is None else getattr(d, c) for c in PORTAL_CSV]))
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            offset += len(page.items)
            if not page.items or offset >= page.total:
                return

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": 'attachment; filename="deals.csv"'})


@router.get("/deals/{opportunity_id}", response_model=PortalDeal)
async def get_deal(opportunity_id: UUID, request: Request, principal: PartnerUser) -> PortalDeal:
    return deal_view(await deal_of(request, principal, opportunity_id))


@router.get("/registrations", response_model=PortalRegistrationList)
async def list_registrations(
    request: Request,
    principal: PartnerUser,
    status: rc.RegistrationStatus | None = None,
    offset: Annotated[Offset, Query()] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PortalRegistrationList:
    """The deals your organisation registered, newest first."""
    return await registrations_of(request, principal, status=status, offset=offset, limit=limit)


@router.post("/registrations", response_model=PortalRegistration, status_code=201)
async def create_registration(body: RegistrationIn, request: Request, principal: PartnerUser) -> PortalRegistration:
    """Register a deal: it waits for your contact on our team, who approves it (it becomes a deal you see
    under /deals) or declines it with a reason."""
    return await register(request, principal, body)


@router.get("/registrations/{registration_id}", response_model=PortalRegistration)
async def get_registration(registration_id: UUID, request: Request, principal: PartnerUser) -> PortalRegistration:
    try:
        x: rc.Registration = await send(bus(request), rc.GetRegistration(registration_id=registration_id,
                                                                         actor=principal.name))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            raise HTTPException(404, detail="no such registration") from exc
        raise
    if x.partner_id != partner_of(principal):
        raise HTTPException(404, detail="no such registration")
    return registration_view(x)


@router.get("/statements/{period}.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
async def statement_as_csv(period: PeriodPath, request: Request, principal: PartnerUser) -> StreamingResponse:
    s = await statement_of(request, principal, period)
    name = f"commission-statement-{period}.csv"
    return StreamingResponse(statement_csv(s), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": f'attachment; filename="{name}"'})


@router.get("/statements/{period}", response_model=cc.Statement)
async def statement(period: PeriodPath, request: Request, principal: PartnerUser) -> cc.Statement:
    """Your commission statement for a month (2026-11) or a quarter (2026-Q4)."""
    return await statement_of(request, principal, period)
