"""Demo commissions: an agreement of every rule kind for the demo partners, sent as the commissions
service's own commands, and the revenue a billing system would publish for them (invoices, refunds inside
and outside the clawback window, a churn) as billing events on the bus. Won deals come from the pipeline
demo. Older entries are approved and paid and one agreement is corrected after the fact, so this
quarter's statements have opening balances, accruals, clawbacks, adjustments and payments.

Deterministic and relative to today; event ids are derived from their content, so seeding twice changes
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from nats.aio.client import Client as NATS

from contracts import billing as bc
from contracts import commissions as cc
from contracts import pipeline as pc
from contracts.base import Event
from contracts.quarters import Quarter
from runtime import bus
from runtime.commands import send
from runtime.errors import CommandFailed

logger = logging.getLogger(__name__)
ACTOR = "demo-seed"
D = Decimal
NAMESPACE = uuid.UUID("5f0c8a4e-4b7a-4a55-9a53-7c0f9b1c2d3e")


def _flat(rate: str, **kw: object) -> cc.Terms:
    return cc.Terms(rate=cc.FlatRate(rate=D(rate)), **kw)  # type: ignore[arg-type]


TIERS = [cc.Tier(from_amount=D(0), up_to=D(100000), rate=D(10)),
         cc.Tier(from_amount=D(100000), up_to=D(250000), rate=D(15)),
         cc.Tier(from_amount=D(250000), rate=D(20))]
INVOICES = {"basis": cc.Basis.invoice}


@dataclass(frozen=True)
class DemoAgreement:
    partner: str
    name: str
    direction: cc.Direction
    terms: cc.Terms
    months_back: int = 12  # in force from the first of the month this long ago
    deal_models: tuple[str, ...] | None = None
    monthly: tuple[tuple[str, Decimal], ...] = ()  # customers paying monthly invoices, and how much


AGREEMENTS: tuple[DemoAgreement, ...] = (
    DemoAgreement("Snowflake", "Resale share (flat, one-time on the deal)", cc.Direction.receivable,
                  _flat("20", clawback_days=90), deal_models=("resale",)),
    DemoAgreement("Datadog", "Resale share (whole-amount tiers per quarter)", cc.Direction.receivable,
                  cc.Terms(rate=cc.TieredRate(mode=cc.TierMode.whole_amount, tiers=TIERS), period=cc.RatePeriod.quarter,
                           clawback_days=60)),
    DemoAgreement("MongoDB", "Subscription share (marginal tiers per quarter, lifetime)", cc.Direction.receivable,
                  cc.Terms(rate=cc.TieredRate(mode=cc.TierMode.marginal, tiers=TIERS), period=cc.RatePeriod.quarter,
                           duration=cc.Duration.lifetime, clawback_days=60, **INVOICES),  # type: ignore[arg-type]
                  monthly=(("Initech", D("42000.00")), ("Globex", D("18500.00")), ("Hooli", D("9800.00")))),
    DemoAgreement("HashiCorp", "Resale share by partner tier", cc.Direction.receivable,
                  cc.Terms(rate=cc.PartnerTierRate(rates={pc.PartnerTier.bronze: D(10), pc.PartnerTier.silver: D(12),
                                                          pc.PartnerTier.gold: D(15), pc.PartnerTier.platinum: D(18)}),
                           clawback_days=30)),
    DemoAgreement("Elastic", "Subscription share (12 months, capped)", cc.Direction.receivable,
                  _flat("15", duration=cc.Duration.recurring, duration_months=12, cap_per_deal=D("20000.00"),
                        cap_per_period=D("25000.00"), period=cc.RatePeriod.quarter, clawback_days=45, **INVOICES),
                  monthly=(("Umbrella", D("12000.00")), ("Soylent", D("30000.00")))),
    DemoAgreement("Confluent", "Subscription share (lifetime; new terms from this quarter)", cc.Direction.receivable,
                  _flat("10", duration=cc.Duration.lifetime, clawback_days=60, **INVOICES), months_back=14,
                  monthly=(("Tyrell", D("8000.00")), ("Cyberdyne", D("6400.00")))),
    DemoAgreement("Northwind Referrals", "Referral fee (one-time on the deal)", cc.Direction.payable,
                  _flat("10", clawback_days=60), deal_models=("referral",)),
    DemoAgreement("Fabrikam Advisors", "Referral fee (12 months of subscription)", cc.Direction.payable,
                  _flat("12", duration=cc.Duration.recurring, duration_months=12, clawback_days=30, **INVOICES),
                  monthly=(("Pied Piper", D("5200.00")), ("Aperture", D("7300.00")))),
    DemoAgreement("Contoso Managed Services", "MSP fee (lifetime)", cc.Direction.payable,
                  _flat("8", duration=cc.Duration.lifetime, clawback_days=30, **INVOICES), deal_models=("msp",),
                  monthly=(("Massive Dynamic", D("15000.00")), ("Vandelay Industries", D("4300.00")))),
    DemoAgreement("Tailspin Partners", "Referral fee (first invoice)", cc.Direction.payable,
                  _flat("25", clawback_days=90, **INVOICES),
                  monthly=(("Monarch Solutions", D("3900.00")),)),
)


def _id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts))


def _month_start(d: date, back: int) -> date:
    index = d.year * 12 + d.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def _at(d: date, hour: int = 10) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


def billing_events(partners: dict[str, uuid.UUID], today: date) -> list[Event]:
    """Monthly invoices for the invoice-basis agreements' customers over the last eleven months (up to
    today), a few refunds (inside and outside the clawback window) and one churn this quarter."""
    rng = random.Random(2026)
    events: list[Event] = []
    for a in AGREEMENTS:
        partner_id = partners.get(a.partner)
        if partner_id is None or not a.monthly:
            continue
        for customer, monthly in a.monthly:
            for back in range(10, -1, -1):
                day = _month_start(today, back) + timedelta(days=4 + rng.randrange(0, 3))
                if day > today or (customer == "Cyberdyne" and back < 1):
                    continue
                invoice_id = f"DEMO-{a.partner[:4].upper()}-{customer[:4].upper()}-{day:%Y%m}"
                amount = (monthly * (1 + D(rng.randrange(-5, 6)) / 100)).quantize(D("0.01"))
                events.append(bc.InvoicePaidV1(
                    event_id=_id("invoice", invoice_id), invoice_id=invoice_id, customer=customer,
                    partner_id=partner_id, amount=amount, currency="USD", paid_at=_at(day),
                    deal_model=(a.deal_models or ("resale",))[0], occurred_at=_at(day, 11)))
    # Refunds: one inside the window this quarter, one long after its invoice (outside the window).
    for invoice_id, amount, days_after in ((f"DEMO-MONG-GLOB-{_month_start(today, 1):%Y%m}", "4000.00", 12),
                                           (f"DEMO-ELAS-UMBR-{_month_start(today, 5):%Y%m}", "12000.00", 120),
                                           (f"DEMO-FABR-APER-{_month_start(today, 1):%Y%m}", "1500.00", 9)):
        paid = next((e for e in events if isinstance(e, bc.InvoicePaidV1) and e.invoice_id == invoice_id), None)
        if paid is None:
            continue
        at = min(paid.paid_at + timedelta(days=days_after), _at(today, 9))
        events.append(bc.InvoiceRefundedV1(event_id=_id("refund", invoice_id), refund_id=f"{invoice_id}-R1",
                                           invoice_id=invoice_id, amount=D(amount), currency="USD", refunded_at=at,
                                           occurred_at=at))
    # Cyberdyne cancels Confluent this quarter, three weeks after its last invoice: that one is clawed back.
    confluent = partners.get("Confluent")
    if confluent is not None:
        churned = _month_start(today, 1) + timedelta(days=27)
        events.append(bc.CustomerChurnedV1(event_id=_id("churn", "Cyberdyne", churned), customer="Cyberdyne",
                                           partner_id=confluent, churned_at=_at(min(churned, today)),
                                           reason="moved to a competitor", occurred_at=_at(min(churned, today))))
    return events


async def _partner_ids(nc: NATS) -> dict[str, uuid.UUID]:
    listing = await send(nc, pc.ListPartners(limit=500, actor=ACTOR))
    return {p.name: p.id for p in listing.items}


async def _ensure_agreements(nc: NATS, partners: dict[str, uuid.UUID], today: date) -> dict[str, cc.Agreement]:
    existing = {(a.partner_id, a.name): a for a in (await send(nc, cc.ListAgreements(limit=500, actor=ACTOR))).items}
    made: dict[str, cc.Agreement] = {}
    for a in AGREEMENTS:
        partner_id = partners.get(a.partner)
        if partner_id is None:
            continue
        found = existing.get((partner_id, a.name))
        if found is None:
            found = await send(nc, cc.CreateAgreement(
                partner_id=partner_id, name=a.name, direction=a.direction, currency="USD",
                deal_models=list(a.deal_models) if a.deal_models else None,
                effective_from=_month_start(today, a.months_back), terms=a.terms, actor="maria@example.com"))
        made[a.partner] = found
    return made


async def _settled(nc: NATS, expected_keys: set[str], timeout: float = 60.0) -> None:
    """Wait until the commissions service has taken in the billing events just published."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        seen: set[str] = set()
        offset = 0
        while True:
            page = await send(nc, cc.ListRevenueEvents(offset=offset, limit=500, actor=ACTOR))
            seen |= {e.key for e in page.items}
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
        if expected_keys <= seen:
            return
        if asyncio.get_running_loop().time() > deadline:
            logger.warning("demo commissions: %d billing events not taken in yet", len(expected_keys - seen))
            return
        await asyncio.sleep(0.5)


def _key(e: Event) -> str:
    if isinstance(e, bc.InvoicePaidV1):
        return f"invoice_paid:{e.invoice_id}"
    if isinstance(e, bc.InvoiceRefundedV1):
        return f"refund:{e.refund_id}"
    assert isinstance(e, bc.CustomerChurnedV1)
    return f"churn:{' '.join(e.customer.split()).casefold()}@{e.churned_at.date()}"


async def _won_deal_keys(nc: NATS) -> set[str]:
    """The pipeline's won deals with a partner: the commissions service books each as revenue."""
    keys: set[str] = set()
    offset = 0
    while True:
        page = await send(nc, pc.ListOpportunities(outcome=pc.Outcome.won, offset=offset, limit=500, actor=ACTOR))
        keys |= {f"deal_won:{o.id}" for o in page.items if o.partner_id is not None}
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return keys


async def _ensure_won_this_quarter(nc: NATS, partner_id: uuid.UUID, quarter_start: date, owner: str) -> None:
    """The retroactive correction below recalculates this quarter's deals; the demo pipeline is random
    and relative to today, so on some dates the partner has none. Give it one, once."""
    name = "Snowflake expansion (demo)"
    if (await send(nc, pc.ListOpportunities(partner_id=partner_id, q=name, limit=1, actor=ACTOR))).total:
        return
    now = datetime.now(UTC)
    start = _at(quarter_start, 0)
    won_at = max(start, min(start + timedelta(days=2), now - timedelta(minutes=5)))
    opp = await send(nc, pc.CreateOpportunity(
        name=name, customer="Initech", partner_id=partner_id, amount=D("36000.00"), currency="USD",
        expected_close_date=won_at.date(), owner=owner, deal_model=pc.DealModel.resale,
        created_at=won_at - timedelta(days=40), actor="maria"))
    await send(nc, pc.MoveOpportunity(opportunity_id=opp.id, stage="won", occurred_at=won_at, actor="maria"))


async def _pay_last_quarters(nc: NATS, agreements: dict[str, cc.Agreement], quarter_start: date) -> int:
    """Approve everything before this quarter and pay it, one payment per partner, at each quarter's end."""
    paid = 0
    for agreement in agreements.values():
        page = await send(nc, cc.ListLedgerEntries(agreement_id=agreement.id, limit=1000, actor=ACTOR))
        old = [e for e in page.items if e.period < quarter_start and e.status != cc.EntryStatus.paid]
        if not old:
            continue
        await send(nc, cc.ApproveEntries(entry_ids=[e.id for e in old], actor="maria@example.com"))
        if sum(e.amount for e in old) < 0:
            continue
        try:
            await send(nc, cc.PayEntries(entry_ids=[e.id for e in old], paid_on=quarter_start + timedelta(days=14),
                                         reference=f"{agreement.name[:40]} - settlement to {quarter_start}",
                                         actor="vp@example.com"))
            paid += len(old)
        except CommandFailed as exc:
            logger.info("demo commissions: payment for %s skipped: %s", agreement.name, exc)
    return paid


async def seed_commissions(nc: NATS, *, today: date | None = None,
                           owners: Mapping[str, str] | None = None) -> dict[str, int]:
    owners = owners or {}
    today = today or datetime.now(UTC).date()
    quarter_start = Quarter.calendar_of(today).first_day
    partners = await _partner_ids(nc)
    agreements = await _ensure_agreements(nc, partners, today)
    js = nc.jetstream()
    await bus.ensure_streams(js, [bc.STREAM])
    if "Snowflake" in partners:
        await _ensure_won_this_quarter(nc, partners["Snowflake"], quarter_start, owners.get("maria", "maria"))
    events = billing_events(partners, today)
    for e in events:
        await js.publish(e.subject, e.model_dump_json().encode(), headers={"Nats-Msg-Id": str(e.event_id)})
    await _settled(nc, {_key(e) for e in events} | await _won_deal_keys(nc))
    paid = await _pay_last_quarters(nc, agreements, quarter_start)
    # New terms from this quarter, entered now. Confluent's are not retroactive: its customers, booked
    # earlier, keep 10%. Snowflake's 22% is: this quarter's deals are recalculated as adjusting entries.
    corrections = 0
    for partner, rate, retroactive in (("Confluent", "12", False), ("Snowflake", "22", True)):
        a = agreements.get(partner)
        if a is None or any(v.effective_from == quarter_start for v in a.versions):
            continue
        terms = a.versions[-1].terms.model_copy(update={"rate": cc.FlatRate(rate=D(rate))})
        await send(nc, cc.AddAgreementVersion(agreement_id=a.id, effective_from=quarter_start, retroactive=retroactive,
                                              terms=terms, actor="vp@example.com"))
        corrections += 1
    counts = {"agreements": len(agreements), "billing_events": len(events), "entries_paid": paid,
              "versions_added": corrections}
    logger.info("demo commissions: %s", counts)
    return counts
