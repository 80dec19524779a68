"""Demo funding, goals and competencies, sent as the relationships service's own commands: a fund request
in every AWS stage (one pre-approved request expiring in a week, MAP with milestones claimed and paid),
linked to the demo's ISV partners and co-sell deals; goals with AWS and Google Cloud for this calendar
year and quarter; three competencies, one renewing soon. Relative to today; seeded once (skipped when
fund requests exist)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from nats.aio.client import Client as NATS

from contracts import competencies as kc
from contracts import funding as fc
from contracts import goals as gc
from contracts import pipeline as pc
from contracts.quarters import Quarter
from runtime.commands import send

logger = logging.getLogger(__name__)
ACTOR = "demo-seed"
D = Decimal
S = fc.FundStage

# (program, title, requested, days from today the activity started and ended, stage to reach, owner)
REQUESTS: tuple[tuple[str, str, str, int, int, fc.FundStage, str], ...] = (
    ("map", "Northwind ERP migration — migrate", "480000.00", -150, -30, S.completed, "maria"),
    ("map", "Contoso data centre exit — mobilize", "120000.00", -60, 45, S.cash_claim, "maria"),
    ("mdf", "Re:Invent joint booth with Fabrikam", "40000.00", -60, -23, S.pre_approved, "tom"),
    ("poa", "Tailspin SaaS launch acceleration", "25000.00", 10, 70, S.finance_approval, "aisha"),
    ("poc", "Litware GenAI proof of concept", "20000.00", 14, 60, S.technical_approval, "tom"),
    ("map", "Wingtip assessment — assess", "60000.00", 20, 80, S.aws_review, "maria"),
    ("mdf", "Partner webinar series Q1", "15000.00", 30, 120, S.business_approval, "aisha"),
    ("box", "BOX participation — Adventure Works", "10000.00", 21, 51, S.submitted, "tom"),
    ("poc", "Coho vector search pilot", "18000.00", 30, 75, S.draft, "aisha"),
    ("poa", "Margie's Travel co-marketing", "12000.00", -90, -40, S.rejected, "tom"),
    ("mdf", "Trade show that was cancelled", "30000.00", -100, -70, S.terminated, "maria"),
    ("mdf", "Summer roadshow (no claim filed)", "22000.00", -120, -80, S.expired, "aisha"),
    ("gcp_pdf", "Google Cloud deal funding — Fourth Coffee", "35000.00", -20, 40, S.pre_approved, "maria"),
)


async def _walk(nc: NATS, r: fc.FundRequest, to: fc.FundStage) -> fc.FundRequest:
    """Move a request along AWS's path until it reaches `to` (claims made where the path needs them)."""
    if to == S.draft:
        return r
    path = {S.rejected: [S.submitted, S.rejected], S.terminated: [S.submitted, S.terminated]}.get(to)
    if path is None:
        path = []
        while r.stage != to:
            forward = next(s for s in r.next_stages if s not in (S.rejected, S.terminated, S.expired))
            if to in (S.expired,) and r.stage == S.pre_approved:
                forward = S.expired
            if forward == S.cash_claim:
                r = await _claim_first(nc, r)
                if to == S.cash_claim:
                    return r
                continue
            if forward == S.completed:
                r = await _pay_all(nc, r)
            r = await send(nc, fc.MoveFundRequest(request_id=r.id, to_stage=forward, actor=ACTOR,
                                                  approved=r.requested * D("0.9") if forward == S.pre_approved
                                                  else None))
        return r
    for stage in path:
        r = await send(nc, fc.MoveFundRequest(request_id=r.id, to_stage=stage, actor=ACTOR,
                                              note="missing statement of work" if stage == S.rejected else None))
    return r


async def _claim_first(nc: NATS, r: fc.FundRequest) -> fc.FundRequest:
    approved = r.approved or r.requested
    first = await send(nc, fc.AddMilestone(request_id=r.id, name="Milestone 1", end_date=r.activity_start +
                                           (r.activity_end - r.activity_start) / 2, amount=(approved * D("0.6"))
                                           .quantize(D("0.01")), actor=ACTOR))
    await send(nc, fc.AddMilestone(request_id=r.id, name="Milestone 2", end_date=r.activity_end,
                                   amount=(approved * D("0.4")).quantize(D("0.01")), actor=ACTOR))
    return await send(nc, fc.UpdateMilestoneClaim(request_id=r.id, milestone_id=first.milestones[0].id,
                                                  claim_status=fc.ClaimStatus.submitted, claim_reference="CLM-1001",
                                                  actor=ACTOR))


async def _pay_all(nc: NATS, r: fc.FundRequest) -> fc.FundRequest:
    for m in r.milestones:
        steps = {fc.ClaimStatus.planned: [fc.ClaimStatus.submitted, fc.ClaimStatus.approved, fc.ClaimStatus.paid],
                 fc.ClaimStatus.submitted: [fc.ClaimStatus.approved, fc.ClaimStatus.paid]}.get(m.claim_status, [])
        for status in steps:
            r = await send(nc, fc.UpdateMilestoneClaim(request_id=r.id, milestone_id=m.id, claim_status=status,
                                                       actor=ACTOR))
    return r


async def seed_funding(nc: NATS, *, owners: Mapping[str, str] | None = None,
                       today: date | None = None) -> dict[str, int]:
    owners = owners or {}
    today = today or datetime.now(UTC).date()
    if (await send(nc, fc.ListFundRequests(limit=1, actor=ACTOR))).total:
        logger.info("demo fund requests already there: funding, goals and competencies not seeded again")
        return {"fund_requests": 0, "goals": 0, "competencies": 0}
    partners = (await send(nc, pc.ListPartners(type=pc.PartnerType.isv, sort=pc.PartnerSort.name, limit=50,
                                               actor=ACTOR))).items
    deals = (await send(nc, pc.ListOpportunities(pipeline=pc.COSELL, outcome=pc.Outcome.won, limit=20,
                                                 actor=ACTOR))).items
    slots = asyncio.Semaphore(6)

    async def one(i: int, program: str, title: str, requested: str, start: int, end: int, stage: fc.FundStage,
                  owner: str) -> None:
        links = [fc.OpportunityLink(opportunity_id=deals[i].id, ace_id=deals[i].external_id
                                    if deals[i].external_id and deals[i].source == pc.Source.aws else None)] \
            if i < len(deals) else []
        async with slots:
            r = await send(nc, fc.CreateFundRequest(
                program=program, title=title, requested=D(requested), phase=title.rsplit("— ", 1)[-1]
                if program == "map" else None, partner_id=partners[i % len(partners)].id if partners else None,
                owner=owners.get(owner, owner), aws_fund_request_id=f"FR-DEMO-{1000 + i}" if stage != S.draft
                else None, activity_start=today + timedelta(days=start), activity_end=today + timedelta(days=end),
                opportunities=links, actor=ACTOR))
            await _walk(nc, r, stage)

    # Requests side by side (each one's moves in order): the demo is seeded while a person waits for `up`.
    await asyncio.gather(*(one(i, *plan) for i, plan in enumerate(REQUESTS)))
    made = len(REQUESTS)
    goals, competencies = await asyncio.gather(_goals(nc, today, owners), _competencies(nc, today, owners))
    return {"fund_requests": made, "goals": goals, "competencies": competencies}


async def _goals(nc: NATS, today: date, owners: Mapping[str, str]) -> int:
    year, quarter = str(today.year), Quarter.calendar_of(today).label
    plans = (
        ("aws", quarter, gc.GoalMetric.launched_opportunities, "6", None, None),
        ("aws", year, gc.GoalMetric.launched_opportunities, "24", None, None),
        ("aws", year, gc.GoalMetric.sourced_pipeline, "2000000", "USD", None),
        ("aws", year, gc.GoalMetric.certifications, "20", None, "12"),
        ("gcp", quarter, gc.GoalMetric.launched_opportunities, "2", None, None),
        ("gcp", year, gc.GoalMetric.sourced_pipeline, "600000", "USD", None),
        ("gcp", year, gc.GoalMetric.marketplace_revenue, "250000", "USD", "61000"),
    )
    for hs, period, metric, target, currency, manual in plans:
        await send(nc, gc.CreateGoal(hyperscaler=hs, period=period, metric=metric, target=D(target), currency=currency,
                                     manual_progress=D(manual) if manual else None, owner=owners.get("vp"),
                                     actor=ACTOR))
    return len(plans)


async def _competencies(nc: NATS, today: date, owners: Mapping[str, str]) -> int:
    plans = (
        ("aws", "AWS Migration Consulting Competency", kc.CompetencyKind.competency, 700, 30, "maria", (
            (kc.RequirementKind.certified_individuals, "4 AWS Certified Solutions Architects", 4, 3, 14),
            (kc.RequirementKind.customer_reference, "4 public customer references", 4, 2, 21),
            (kc.RequirementKind.case_study, "2 published case studies", 2, 2, None),
            (kc.RequirementKind.audit, "Technical validation audit", 1, 0, 25))),
        ("aws", "AWS SaaS Competency", kc.CompetencyKind.competency, 400, 300, "tom", (
            (kc.RequirementKind.certified_individuals, "2 AWS Certified professionals", 2, 2, None),
            (kc.RequirementKind.customer_reference, "2 customer references", 2, 1, 200))),
        ("gcp", "Google Cloud Data Analytics Specialization", kc.CompetencyKind.specialization, 300, 240, "aisha", (
            (kc.RequirementKind.certified_individuals, "3 Professional Data Engineers", 3, 1, 120),
            (kc.RequirementKind.customer_reference, "3 customer success stories", 3, 3, None))),
    )
    for hs, name, kind, achieved_ago, renews_in, owner, items in plans:
        c = await send(nc, kc.CreateCompetency(hyperscaler=hs, name=name, kind=kind,
                                               achieved_on=today - timedelta(days=achieved_ago),
                                               renewal_date=today + timedelta(days=renews_in),
                                               owner=owners.get(owner, owner), actor=ACTOR))
        for req_kind, title, required, done, due_in in items:
            await send(nc, kc.AddRequirement(competency_id=c.id, kind=req_kind, title=title, required=required,
                                             done=done, owner=owners.get(owner, owner),
                                             due_date=today + timedelta(days=due_in) if due_in else None, actor=ACTOR))
    return len(plans)
