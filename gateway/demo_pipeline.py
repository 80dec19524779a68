"""Demo pipeline: partners of every kind and a few hundred opportunities over both pipelines, all
stages, four owners, this quarter and the previous ones, sent through the pipeline's own commands
(and, for AWS and GCP co-sell, as a sync worker would: external events on the bus).

Deterministic (a seeded random), relative to today, so the dashboard always shows a quarter in
progress. Deals closed in the past are recorded after the fact (`occurred_at`), as a team does when it
catches up after the weekly meeting.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from nats.aio.client import Client as NATS

from contracts import pipeline as pc
from contracts import sync
from runtime import bus
from runtime.commands import send
from runtime.errors import CommandFailed

logger = logging.getLogger(__name__)
ACTOR = "demo-seed"
OWNERS = ("maria", "tom", "aisha", "vp")

# name, type, owner, size (how much business it brings), tier pinned by hand (None: follows revenue).
# Hyperscaler tiers are pinned: their "revenue" is co-sell spend, not what they bring us.
PARTNERS: tuple[tuple[str, pc.PartnerType, str, int, pc.PartnerTier | None], ...] = (
    ("Amazon Web Services", pc.PartnerType.hyperscaler, "vp", 0, pc.PartnerTier.platinum),
    ("Google Cloud", pc.PartnerType.hyperscaler, "vp", 0, pc.PartnerTier.gold),
    ("Microsoft Azure", pc.PartnerType.hyperscaler, "vp", 0, pc.PartnerTier.silver),
    ("Snowflake", pc.PartnerType.isv, "maria", 12, None),
    ("Datadog", pc.PartnerType.isv, "maria", 8, None),
    ("MongoDB", pc.PartnerType.isv, "maria", 11, pc.PartnerTier.platinum),
    ("HashiCorp", pc.PartnerType.isv, "tom", 6, None),
    ("Elastic", pc.PartnerType.isv, "tom", 6, None),
    ("Confluent", pc.PartnerType.isv, "aisha", 5, None),
    ("Databricks", pc.PartnerType.isv, "maria", 7, None),
    ("GitLab", pc.PartnerType.isv, "tom", 4, None),
    ("Okta", pc.PartnerType.isv, "aisha", 4, None),
    ("CrowdStrike", pc.PartnerType.isv, "maria", 5, None),
    ("Twilio", pc.PartnerType.isv, "aisha", 3, None),
    ("Cloudflare", pc.PartnerType.isv, "tom", 4, None),
    ("PagerDuty", pc.PartnerType.isv, "aisha", 2, None),
    ("New Relic", pc.PartnerType.isv, "tom", 3, None),
    ("Fivetran", pc.PartnerType.isv, "maria", 3, None),
    ("dbt Labs", pc.PartnerType.isv, "aisha", 2, None),
    ("Redis", pc.PartnerType.isv, "tom", 2, None),
    ("Grafana Labs", pc.PartnerType.isv, "aisha", 2, None),
    ("Wiz", pc.PartnerType.isv, "maria", 3, None),
    ("Sysdig", pc.PartnerType.isv, "tom", 1, None),
    ("Couchbase", pc.PartnerType.isv, "aisha", 1, None),
    ("Northwind Referrals", pc.PartnerType.referral, "aisha", 2, None),
    ("Fabrikam Advisors", pc.PartnerType.referral, "tom", 1, None),
    ("Tailspin Partners", pc.PartnerType.referral, "maria", 1, None),
    ("Contoso Managed Services", pc.PartnerType.msp, "tom", 3, None),
    ("Adatum Cloud Ops", pc.PartnerType.msp, "aisha", 2, None),
    ("Litware MSP", pc.PartnerType.msp, "maria", 1, None),
    ("Proseware Consulting", pc.PartnerType.cosell, "vp", 1, None),
    ("Wide World Resellers", pc.PartnerType.reseller, "tom", 1, None),
)
CUSTOMERS = ("Initech", "Globex", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", "Acme Corp",
             "Soylent", "Tyrell", "Cyberdyne", "Massive Dynamic", "Vandelay Industries", "Pied Piper", "Aperture",
             "Monarch Solutions", "Oscorp", "Gringotts", "Wonka Industries", "Dunder Mifflin", "Blue Sun")
PROJECTS = ("data platform", "observability rollout", "security uplift", "migration to cloud", "analytics lakehouse",
            "zero-trust access", "CI/CD modernisation", "search relaunch", "streaming backbone", "SRE tooling")
RESALE_FLOW = ("lead", "qualified", "proposal", "negotiation")
COSELL_FLOW = ("prospect", "qualified", "technical_validation", "business_validation", "committed")
LOST_REASONS = ("Price", "Lost to Competitor - Microsoft", "Delay / Cancellation of Project", "No Opportunity",
                "Technical Limitations")


@dataclass
class Plan:
    """One demo deal: where it starts, the stages it goes through (with when), where it ends."""

    partner: str
    name: str
    customer: str
    amount: Decimal
    currency: str
    owner: str
    deal_model: pc.DealModel
    created: datetime
    moves: list[tuple[str, datetime]]
    close: date | None
    hyperscaler: pc.Hyperscaler | None = None


def _days_ago(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)


def _timeline(rng: random.Random, created: datetime, now: datetime, path: list[str], closed: bool
              ) -> list[tuple[str, datetime]]:
    """When each move happened: a closed deal closes after a sales cycle of one to four months (never
    today), an open one moved somewhere between its start and now."""
    if closed:
        end = min(created + timedelta(days=rng.uniform(25, 110)), now - timedelta(days=1))
    else:
        end = created + (now - created) * rng.uniform(0.3, 0.95)
    span = (end - created).total_seconds()
    times = sorted(created + timedelta(seconds=span * rng.random()) for _ in path[:-1])
    return list(zip(path, [*times, end] if path else [], strict=True))


def _plan_resale(rng: random.Random, now: datetime, partner: str, size: int, deal_model: pc.DealModel,
                 owner: str) -> Plan:
    age = rng.uniform(5, 330)
    created = _days_ago(now, age)
    amount = Decimal(rng.randrange(3, 5 + 2 * size) * 1000 + rng.choice((0, 250, 500, 750)))
    roll = rng.random()
    path = list(RESALE_FLOW[1:rng.randint(1, len(RESALE_FLOW))])
    closed = False
    if roll < 0.36 and age > 30:
        path, closed = [*RESALE_FLOW[1:rng.randint(2, len(RESALE_FLOW))], "won"], True
    elif roll < 0.56 and age > 30:
        path, closed = [*RESALE_FLOW[1:rng.randint(1, 3)], "lost"], True
    close = None if closed else (now + timedelta(days=rng.randint(-10, 110))).date()
    return Plan(partner=partner, name=f"{rng.choice(PROJECTS).capitalize()}", customer=rng.choice(CUSTOMERS),
                amount=amount, currency=rng.choice(("USD",) * 9 + ("EUR",)), owner=owner, deal_model=deal_model,
                created=created, moves=_timeline(rng, created, now, path, closed), close=close)


def _plan_cosell(rng: random.Random, now: datetime, partner: str, hyperscaler: pc.Hyperscaler, owner: str) -> Plan:
    age = rng.uniform(10, 330)
    created = _days_ago(now, age)
    path = list(COSELL_FLOW[1:rng.randint(1, len(COSELL_FLOW))])
    closed = False
    roll = rng.random()
    if roll < 0.35 and age > 30:
        path, closed = [*COSELL_FLOW[1:], "launched"], True
    elif roll < 0.5 and age > 30:
        path, closed = [*COSELL_FLOW[1:rng.randint(2, 4)], "closed_lost"], True
    close = None if closed else (now + timedelta(days=rng.randint(0, 150))).date()
    return Plan(partner=partner, name=f"{rng.choice(PROJECTS).capitalize()} on {hyperscaler.value.upper()}",
                customer=rng.choice(CUSTOMERS), amount=Decimal(rng.randrange(2, 40) * 2500), currency="USD",
                owner=owner, deal_model=pc.DealModel.cosell, created=created,
                moves=_timeline(rng, created, now, path, closed), close=close, hyperscaler=hyperscaler)


def plans(now: datetime, seed: int = 2026) -> list[Plan]:
    rng = random.Random(seed)
    out: list[Plan] = []
    for name, kind, owner, size, _tier in PARTNERS:
        if kind == pc.PartnerType.isv:
            out += [_plan_resale(rng, now, name, size, pc.DealModel.resale, owner) for _ in range(3 + size)]
        elif kind == pc.PartnerType.referral:
            out += [_plan_resale(rng, now, name, size, pc.DealModel.referral, owner) for _ in range(4)]
        elif kind in (pc.PartnerType.msp, pc.PartnerType.reseller):
            out += [_plan_resale(rng, now, name, size, pc.DealModel.msp, owner) for _ in range(4)]
    for name, hyperscaler, count in (("Amazon Web Services", pc.Hyperscaler.aws, 70),
                                     ("Google Cloud", pc.Hyperscaler.gcp, 30),
                                     ("Microsoft Azure", pc.Hyperscaler.azure, 15)):
        out += [_plan_cosell(rng, now, name, hyperscaler, rng.choice(OWNERS)) for _ in range(count)]
    return out


async def _partners(nc: NATS, rng: random.Random, owners: Mapping[str, str]) -> tuple[dict[str, UUID], int]:
    ids: dict[str, UUID] = {}
    created = 0
    for name, kind, owner, size, tier in PARTNERS:
        card = pc.Scorecard(strategic_fit=Decimal(rng.randint(4, 10)), revenue_potential=Decimal(min(10, 3 + size)),
                            feasibility=Decimal(rng.randint(5, 10)), risk=Decimal(rng.randint(4, 9)))
        try:
            partner = await send(nc, pc.CreatePartner(name=name, type=kind, owner=owners.get(owner, owner), tier=tier,
                                                      status=pc.PartnerStatus.active, scorecard=card, actor=ACTOR))
            created += 1
        except CommandFailed as exc:
            if exc.error.kind != "conflict":
                raise
            found = await send(nc, pc.ListPartners(q=name, include_archived=True, actor=ACTOR))
            partner = next(p for p in found.items if p.name.lower() == name.lower())
        ids[name] = partner.id
    return ids, created


async def _manual(nc: NATS, plan: Plan, partner_id: UUID, owners: Mapping[str, str]) -> None:
    opp = await send(nc, pc.CreateOpportunity(
        name=plan.name, customer=plan.customer, partner_id=partner_id, amount=plan.amount, currency=plan.currency,
        expected_close_date=plan.close, owner=owners.get(plan.owner, plan.owner), deal_model=plan.deal_model,
        hyperscaler=plan.hyperscaler,
        created_at=plan.created, actor=plan.owner))
    for stage, at in plan.moves:
        reason = random.Random(str(opp.id)).choice(LOST_REASONS) if stage in ("lost", "closed_lost") else None
        await send(nc, pc.MoveOpportunity(opportunity_id=opp.id, stage=stage, occurred_at=at,
                                          closed_lost_reason=reason, actor=plan.owner))


def _external(plan: Plan, partner_id: UUID, number: int, now: datetime,
              owners: Mapping[str, str]) -> list[sync.OpportunityExternalUpsertedV1]:
    """A sync worker's view: one event per change it saw, each with the source's last-modified time."""
    rng = random.Random(number)
    source = pc.ExternalSource.aws if plan.hyperscaler == pc.Hyperscaler.aws else pc.ExternalSource.gcp
    external_id = f"O{7_000_000 + number}" if source == pc.ExternalSource.aws else f"gcp-opp-{40_000 + number}"
    events = []
    states = [("prospect", plan.created), *plan.moves]
    for i, (stage, at) in enumerate(states):
        last = i == len(states) - 1
        ace = gcp = None
        if source == pc.ExternalSource.aws:
            review = pc.AceReviewStatus.approved if i else pc.AceReviewStatus.submitted
            due = None
            if last and stage not in ("launched", "closed_lost") and rng.random() < 0.25:
                review, due = pc.AceReviewStatus.action_required, (now + timedelta(days=rng.randint(1, 10))).date()
            ace = pc.AceState(review_status=review, action_due_date=due,
                              reviewer_comments="Please add the customer's business problem" if due else None,
                              next_steps=f"{'Technical workshop' if i % 2 else 'Pricing call'} with {plan.customer}",
                              closed_lost_reason=rng.choice(LOST_REASONS) if stage == "closed_lost" else None)
        else:
            status = pc.GcpStatus.accepted if i else pc.GcpStatus.submitted
            if stage == "closed_lost":
                status = pc.GcpStatus.not_accepted
            gcp = pc.GcpState(status=status, stage=stage.replace("_", " ").title())
        events.append(sync.OpportunityExternalUpsertedV1(
            source=source, external_id=external_id, last_modified=at, created_at=plan.created, name=plan.name,
            customer=plan.customer, stage=stage, amount=plan.amount, currency=plan.currency,
            expected_close_date=plan.close, partner_id=partner_id, owner=owners.get(plan.owner, plan.owner), ace=ace,
            gcp=gcp))
    return events


async def seed_pipeline(nc: NATS, *, now: datetime | None = None,
                        owners: Mapping[str, str] | None = None) -> dict[str, int]:
    """`owners` maps the demo's handles (maria, tom, ...) to the seeded users' ids: deals are owned by
    user id (gateway/people.py). Without it the handles themselves are stored (service-level tests)."""
    owners = owners or {}
    now = now or datetime.now(UTC)
    rng = random.Random(31)
    ids, created = await _partners(nc, rng, owners)
    if not created:
        logger.info("demo partners already there: opportunities not seeded again")
        return {"partners": 0, "opportunities": 0, "external": 0}
    # The demo's EUR deals count toward the USD target at a configured rate.
    await send(nc, pc.UpdatePipelineSettings(fx_rates={"EUR": Decimal("1.08"), "GBP": Decimal("1.27")}, actor=ACTOR))
    all_plans = plans(now)
    js = nc.jetstream()
    await bus.ensure_streams(js, [sync.STREAM])
    external = []
    manual = []
    for i, plan in enumerate(all_plans):
        # Most AWS and GCP co-sell comes from the partner portals, through the sync worker.
        if plan.hyperscaler in (pc.Hyperscaler.aws, pc.Hyperscaler.gcp) and i % 4:
            external += _external(plan, ids[plan.partner], i, now, owners)
        else:
            manual.append(plan)
    slots = asyncio.Semaphore(8)

    async def one(plan: Plan) -> None:
        async with slots:
            await _manual(nc, plan, ids[plan.partner], owners)

    await asyncio.gather(*(one(p) for p in manual))
    # Oldest first, as the worker would have seen them.
    for event in sorted(external, key=lambda e: e.last_modified):
        await js.publish(event.subject, event.model_dump_json().encode(), headers={"Nats-Msg-Id": str(event.event_id)})
    await send(nc, pc.RecomputeTiers(actor=ACTOR), timeout=60)
    return {"partners": created, "opportunities": len(manual) + len({e.external_id for e in external}),
            "external": len(external)}
