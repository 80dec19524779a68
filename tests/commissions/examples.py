"""Worked examples, one per rule kind, each with its ledger worked out by hand.

The same table runs through the pure fold (test_domain.py) and through the running service on real
Postgres and NATS (test_worked_examples.py): revenue published as bus events, the ledger read back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from contracts.commissions import (
    Basis,
    Duration,
    FlatRate,
    RatePeriod,
    RevenueKind,
    SpifRate,
    Terms,
    Tier,
    TieredRate,
    TierMode,
)
from contracts.quarters import Quarter

D = Decimal


def at(day: str, hour: int | str = 12) -> datetime:
    """Noon UTC of a day, or another hour, or a time of day "23:59:59"."""
    y, m, d = (int(p) for p in day.split("-"))
    h, mi, sec = (int(p) for p in f"{hour}:0:0".split(":")[:3]) if isinstance(hour, str) else (hour, 0, 0)
    return datetime(y, m, d, h, mi, sec, tzinfo=UTC)


@dataclass(frozen=True)
class Ev:
    """A revenue event in the examples' own words; `opp` names the deal, `customer` the customer."""

    kind: RevenueKind
    ref: str
    day: str
    amount: Decimal | None = None
    customer: str = "Acme"
    opp: str | None = None
    invoice: str | None = None
    started: str | None = None
    time: str = "12:00:00"  # UTC
    currency: str = "USD"
    pipeline: str = "resale"


def won(opp: str, amount: str, day: str, customer: str = "Acme", *, time: str = "12:00:00",
        currency: str = "USD", pipeline: str = "resale") -> Ev:
    return Ev(RevenueKind.deal_won, opp, day, D(amount), customer, opp=opp, time=time, currency=currency,
              pipeline=pipeline)


def inv(ref: str, amount: str, day: str, customer: str = "Acme", opp: str | None = None) -> Ev:
    return Ev(RevenueKind.invoice_paid, ref, day, D(amount), customer, opp=opp)


def refund(ref: str, invoice: str, amount: str, day: str) -> Ev:
    return Ev(RevenueKind.refund, ref, day, D(amount), invoice=invoice)


def churn(customer: str, day: str) -> Ev:
    return Ev(RevenueKind.churn, f"{customer}@{day}", day, customer=customer)


@dataclass(frozen=True)
class V:
    effective_from: str
    terms: Terms
    effective_to: str | None = None
    retroactive: bool = False

    @property
    def start(self) -> date:
        return date.fromisoformat(self.effective_from)

    @property
    def end(self) -> date | None:
        return date.fromisoformat(self.effective_to) if self.effective_to else None


@dataclass(frozen=True)
class Expect:
    """One expected ledger line: its key (what it is on), amount, the version that produced it, its month."""

    key: str
    amount: str
    version: int
    month: str
    reverses: str | None = None


@dataclass(frozen=True)
class Example:
    name: str
    versions: tuple[V, ...]
    events: tuple[Ev, ...]
    expected: tuple[Expect, ...]
    currency: str = "USD"
    notes: tuple[str, ...] = field(default=())  # substrings expected among the fold's notes


def flat(rate: str, **kw) -> Terms:
    return Terms(rate=FlatRate(rate=D(rate)), **kw)


MARGINAL = TieredRate(mode=TierMode.marginal, tiers=[
    Tier(from_amount=D(0), up_to=D(50000), rate=D(10)), Tier(from_amount=D(50000), rate=D(15))])
WHOLE = TieredRate(mode=TierMode.whole_amount, tiers=[
    Tier(from_amount=D(0), up_to=D(50000), rate=D(10)), Tier(from_amount=D(50000), rate=D(15))])
INVOICE_LIFETIME = {"basis": Basis.invoice, "duration": Duration.lifetime}

def spif(bonus: str, min_amount: str | None = None, pipelines: list[str] | None = None, **kw) -> Terms:
    return Terms(rate=SpifRate(bonus=D(bonus), min_amount=D(min_amount) if min_amount else None,
                               pipelines=pipelines), **kw)


# A SPIF's window is its version's [effective_from, effective_to): here the calendar quarter 2026-Q4, the
# period kind the engine uses (contracts/quarters.py), in UTC days of the deal's win.
Q4_FROM, Q4_TO = (d.isoformat() for d in Quarter.parse("2026-Q4").range())

# Line keys: what a line is on. deal_won:<opportunity>, invoice_paid:<invoice>, refund:<refund>,
# churn:<customer@day>><the line it reverses>.
EXAMPLES: tuple[Example, ...] = (
    Example(
        "flat one-time on the deal amount",
        (V("2026-01-01", flat("10")),),
        (won("opp-a", "50000.00", "2026-02-10"),
         won("opp-b", "12345.67", "2026-03-05", customer="Globex"),
         inv("inv-a1", "50000.00", "2026-02-20", opp="opp-a")),
        # 10% of 50,000 = 5,000; 10% of 12,345.67 = 1,234.567 → 1,234.57 (half up). Invoices earn nothing.
        (Expect("deal_won:opp-a", "5000.00", 1, "2026-02"),
         Expect("deal_won:opp-b", "1234.57", 1, "2026-03")),
    ),
    Example(
        "flat recurring for 12 months from the customer's start",
        (V("2026-01-01", flat("20", basis=Basis.invoice, duration=Duration.recurring, duration_months=12)),),
        tuple(inv(f"inv-{i:02d}", "1000.00", f"{2026 + (i - 1) // 12}-{(i - 1) % 12 + 1:02d}-15")
              for i in range(1, 15)),
        # Start 2026-01-15; the 12 months end 2027-01-15 (exclusive): Jan..Dec 2026 earn 200 each,
        # the invoices of 2027-01-15 and 2027-02-15 earn nothing.
        tuple(Expect(f"invoice_paid:inv-{i:02d}", "200.00", 1, f"2026-{i:02d}") for i in range(1, 13)),
        notes=("after the 12-month commission period",),
    ),
    Example(
        "lifetime: every invoice until the customer churns",
        (V("2026-01-01", flat("15", **INVOICE_LIFETIME)),),
        (inv("inv-1", "1000.00", "2026-01-20"), inv("inv-2", "1000.00", "2027-06-20"),
         inv("inv-3", "1000.00", "2029-12-20"), churn("Acme", "2030-01-10"),
         inv("inv-4", "1000.00", "2030-02-20")),
        # 15% of each of the first three; no clawback window, so the churn reverses nothing; the invoice
        # after the churn earns nothing.
        (Expect("invoice_paid:inv-1", "150.00", 1, "2026-01"), Expect("invoice_paid:inv-2", "150.00", 1, "2027-06"),
         Expect("invoice_paid:inv-3", "150.00", 1, "2029-12")),
        notes=("churned on 2030-01-10",),
    ),
    Example(
        "marginal tiers by quarter: 10% up to 50,000, 15% above",
        (V("2026-01-01", Terms(rate=MARGINAL, period=RatePeriod.quarter, **INVOICE_LIFETIME)),),
        (inv("inv-1", "30000.00", "2026-01-10"), inv("inv-2", "30000.00", "2026-02-10"),
         inv("inv-3", "10000.00", "2026-03-10"), inv("inv-4", "20000.00", "2026-04-10")),
        # Q1: 30,000 x 10% = 3,000; then 20,000 x 10% + 10,000 x 15% = 3,500; then 10,000 x 15% = 1,500.
        # Q2 starts again at 0: 20,000 x 10% = 2,000.
        (Expect("invoice_paid:inv-1", "3000.00", 1, "2026-01"), Expect("invoice_paid:inv-2", "3500.00", 1, "2026-02"),
         Expect("invoice_paid:inv-3", "1500.00", 1, "2026-03"), Expect("invoice_paid:inv-4", "2000.00", 1, "2026-04")),
    ),
    Example(
        "whole-amount tiers by quarter: reaching 50,000 puts the whole quarter at 15%",
        (V("2026-01-01", Terms(rate=WHOLE, period=RatePeriod.quarter, **INVOICE_LIFETIME)),),
        (inv("inv-1", "30000.00", "2026-01-10"), inv("inv-2", "30000.00", "2026-02-10"),
         inv("inv-3", "10000.00", "2026-03-10")),
        # 30,000 at 10% = 3,000. At 60,000 the quarter is at 15% = 9,000, so the second invoice earns
        # 9,000 - 3,000 = 6,000 (4,500 on itself + 1,500 catch-up on the first). Then 10,000 x 15% = 1,500.
        # Quarter total 10,500 = 15% of 70,000.
        (Expect("invoice_paid:inv-1", "3000.00", 1, "2026-01"), Expect("invoice_paid:inv-2", "6000.00", 1, "2026-02"),
         Expect("invoice_paid:inv-3", "1500.00", 1, "2026-03")),
    ),
    Example(
        "caps: 1,000 per deal and 1,500 per quarter",
        (V("2026-01-01", flat("20", cap_per_deal=D("1000.00"), cap_per_period=D("1500.00"), **INVOICE_LIFETIME)),),
        (inv("x-1", "3000.00", "2026-01-10", customer="X"), inv("x-2", "3000.00", "2026-02-10", customer="X"),
         inv("y-1", "5000.00", "2026-03-10", customer="Y"), inv("x-3", "3000.00", "2026-04-10", customer="X"),
         inv("y-2", "2000.00", "2026-04-20", customer="Y")),
        # X: 600, then 600 capped to the 400 left of its 1,000 → X is done (x-3 earns nothing).
        # Y in Q1: 1,000, but only 1,500 - 1,000 = 500 is left of the quarter's cap → 500.
        # Q2: the quarter cap starts again; Y has 500 left of its deal cap, 20% of 2,000 = 400 fits.
        (Expect("invoice_paid:x-1", "600.00", 1, "2026-01"), Expect("invoice_paid:x-2", "400.00", 1, "2026-02"),
         Expect("invoice_paid:y-1", "500.00", 1, "2026-03"), Expect("invoice_paid:y-2", "400.00", 1, "2026-04")),
        notes=("per-deal cap 1,000.00 reached",),
    ),
    Example(
        "clawback inside the window: a partial refund, then a churn",
        (V("2026-01-01", flat("10", clawback_days=90)),),
        (won("opp-d", "20000.00", "2026-03-01"), inv("inv-d", "20000.00", "2026-03-10", opp="opp-d"),
         refund("ref-1", "inv-d", "8000.00", "2026-04-15"), churn("Acme", "2026-05-01")),
        # 10% of 20,000 = 2,000. Refund of 8,000 of 20,000, 45 days after the win: -2,000 x 8/20 = -800.
        # Churn 61 days after the win: the remaining 1,200 is reversed.
        (Expect("deal_won:opp-d", "2000.00", 1, "2026-03"),
         Expect("refund:ref-1", "-800.00", 1, "2026-04", reverses="deal_won:opp-d"),
         Expect("churn:acme@2026-05-01>deal_won:opp-d", "-1200.00", 1, "2026-05", reverses="deal_won:opp-d")),
    ),
    Example(
        "clawback outside the window: nothing is reversed",
        (V("2026-01-01", flat("10", clawback_days=60, **INVOICE_LIFETIME)),),
        (inv("inv-1", "5000.00", "2026-01-10"), inv("inv-2", "4000.00", "2026-04-01"),
         refund("ref-1", "inv-1", "5000.00", "2026-04-20"), churn("Acme", "2026-05-01")),
        # inv-1: 500, refunded 100 days later (window 60): kept. inv-2: 400.
        # The churn is 111 days after inv-1 (kept) and 30 days after inv-2 (reversed: -400).
        (Expect("invoice_paid:inv-1", "500.00", 1, "2026-01"), Expect("invoice_paid:inv-2", "400.00", 1, "2026-04"),
         Expect("churn:acme@2026-05-01>invoice_paid:inv-2", "-400.00", 1, "2026-05",
                reverses="invoice_paid:inv-2")),
        notes=("outside the 60-day clawback window",),
    ),
    Example(
        "non-retroactive version change: deals booked before keep their terms",
        (V("2026-01-01", flat("10", **INVOICE_LIFETIME)),
         V("2026-07-01", flat("15", **INVOICE_LIFETIME))),
        (inv("a-1", "1000.00", "2026-02-01", customer="A"), inv("a-2", "1000.00", "2026-08-01", customer="A"),
         inv("b-1", "1000.00", "2026-08-05", customer="B")),
        # A was booked in February under version 1: 10% before and after July. B started in August: 15%.
        (Expect("invoice_paid:a-1", "100.00", 1, "2026-02"), Expect("invoice_paid:a-2", "100.00", 1, "2026-08"),
         Expect("invoice_paid:b-1", "150.00", 2, "2026-08")),
    ),
    Example(
        "retroactive version change: from its date it applies to every deal",
        (V("2026-01-01", flat("10", **INVOICE_LIFETIME)),
         V("2026-07-01", flat("15", **INVOICE_LIFETIME), retroactive=True)),
        (inv("a-1", "1000.00", "2026-02-01", customer="A"), inv("a-2", "1000.00", "2026-08-01", customer="A"),
         inv("b-1", "1000.00", "2026-08-05", customer="B")),
        # Revenue before July stays at 10%; from July A's invoices move to 15% too.
        (Expect("invoice_paid:a-1", "100.00", 1, "2026-02"), Expect("invoice_paid:a-2", "150.00", 2, "2026-08"),
         Expect("invoice_paid:b-1", "150.00", 2, "2026-08")),
    ),
    Example(
        "SPIF 2026-Q4: 500 per won deal of at least 10,000, at the window's edges",
        (V(Q4_FROM, spif("500.00", "10000.00"), effective_to=Q4_TO),),
        (won("q3-last", "20000.00", "2026-09-30", time="23:59:59"),
         won("q4-first", "20000.00", "2026-10-01", time="00:00:00"),
         won("below", "9999.99", "2026-11-15"),
         won("exact", "10000.00", "2026-11-16"),
         won("in-eur", "50000.00", "2026-11-20", currency="EUR"),
         won("q4-last", "10000.01", "2026-12-31", time="23:59:59"),
         won("q1-first", "20000.00", "2027-01-01", time="00:00:00")),
        # The first and last second of the quarter are in it, the second before and after are not; a deal
        # of exactly the minimum qualifies, one a cent below does not; a deal in EUR does not (no
        # conversion). The bonus is the same whatever the amount: 3 x 500.
        (Expect("deal_won:q4-first", "500.00", 1, "2026-10"), Expect("deal_won:exact", "500.00", 1, "2026-11"),
         Expect("deal_won:q4-last", "500.00", 1, "2026-12")),
        notes=("no version of the agreement is in force on 2026-09-30", "below the minimum of 10,000.00",
               "the revenue is in EUR, the agreement in USD", "no version of the agreement is in force on 2027-01-01"),
    ),
    Example(
        "SPIF with a budget: 400 per deal, at most 1,000 a month",
        (V(Q4_FROM, spif("400.00", period=RatePeriod.month, cap_per_period=D("1000.00")), effective_to=Q4_TO),),
        (won("a", "5000.00", "2026-10-05"), won("b", "100.00", "2026-10-06", customer="Globex"),
         won("c", "7000.00", "2026-10-07", customer="Initech"), won("d", "7000.00", "2026-11-02")),
        # No minimum: October pays 400, 400, then the 200 left of the month's 1,000; November starts again.
        (Expect("deal_won:a", "400.00", 1, "2026-10"), Expect("deal_won:b", "400.00", 1, "2026-10"),
         Expect("deal_won:c", "200.00", 1, "2026-10"), Expect("deal_won:d", "400.00", 1, "2026-11")),
        notes=(),
    ),
    Example(
        "SPIF for co-sell deals only: 1,000 per deal won in the cosell pipeline",
        (V(Q4_FROM, spif("1000.00", pipelines=["cosell"]), effective_to=Q4_TO),),
        (won("resale-deal", "80000.00", "2026-10-05"), won("cosell-deal", "5000.00", "2026-10-06", pipeline="cosell")),
        (Expect("deal_won:cosell-deal", "1000.00", 1, "2026-10"),),
        notes=("the deal was won in the resale pipeline; the SPIF is for cosell",),
    ),
)
