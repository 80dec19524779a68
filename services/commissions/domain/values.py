"""Commission values: rounding and printing, periods (calendar months, quarters, years), and the value objects the
fold works on (revenue facts, agreement versions, ledger lines, the fold's state)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from contracts.commissions import (
    EntryType,
    RatePeriod,
    RevenueKind,
    Terms,
)
from contracts.pipeline import PartnerTier
from contracts.quarters import Quarter, add_months
from runtime import formatting

ZERO = Decimal(0)


CENT = Decimal("0.01")


HUNDRED = Decimal(100)


MAX_RECURRING_MONTHS = 120


MAX_CLAWBACK_DAYS = 3650


KIND_RANK = {RevenueKind.deal_won: 0, RevenueKind.invoice_paid: 1, RevenueKind.refund: 2, RevenueKind.churn: 3}


def q(amount: Decimal) -> Decimal:
    """Round to cents, half up (the way invoices round)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


# Amounts below this print through the fast path of `money` (well inside the default context's 28 digits).
_FAST_MONEY_LIMIT = Decimal("1e15")


def money(amount: Decimal) -> str:
    """What `formatting.number(amount, 2)` prints ('1,234.50'); every ledger line's detail prints a few, so
    ordinary Decimal amounts take a direct path (the general one sets up a local decimal context per call)."""
    if type(amount) is Decimal and amount.is_finite() and -_FAST_MONEY_LIMIT < amount < _FAST_MONEY_LIMIT:
        rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
        return "0.00" if rounded.is_zero() else f"{rounded:,.2f}"
    return formatting.number(amount, 2)


@lru_cache(maxsize=1024)
def _pct(rate: Decimal) -> str:
    return formatting.rate(rate)


def pct(rate: Decimal) -> str:
    """`formatting.rate`, kept per rate: an agreement has a handful of rates, printed on every line."""
    return _pct(rate) if type(rate) is Decimal else formatting.rate(rate)


def customer_key(name: str) -> str:
    """Customers are named by people and systems; compare them case- and whitespace-insensitively."""
    return " ".join(name.split()).casefold()


def period_key(d: date, period: RatePeriod) -> str:
    if period is RatePeriod.month:
        return f"{d.year}-{d.month:02d}"
    if period is RatePeriod.quarter:
        return Quarter.calendar_of(d).label
    return f"{d.year}"


def statement_range(name: str) -> tuple[date, date]:
    """'2026-11' → (2026-11-01, 2026-12-01); '2026-Q4', a calendar quarter → (2026-10-01, 2027-01-01)."""
    if "Q" in name:
        return Quarter.parse(name).range()
    year, month = name.split("-")
    start = date(int(year), int(month), 1)
    return start, add_months(start, 1)


@dataclass(frozen=True, slots=True)
class Revenue:
    """One revenue fact of a partner, as the engine sees it."""

    kind: RevenueKind
    ref: str
    at: datetime
    customer: str  # customer_key()
    amount: Decimal | None = None
    currency: str | None = None
    opportunity_id: str | None = None
    deal_model: str | None = None
    customer_started_on: date | None = None
    invoice_ref: str | None = None  # refunds: the invoice refunded
    customer_name: str | None = None  # as written; `customer` is what matching uses
    pipeline: str | None = None  # a won deal's pipeline (a SPIF may be for some pipelines only)

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.ref}"

    @property
    def order(self) -> tuple[datetime, int, str]:
        return (self.at, KIND_RANK[self.kind], self.ref)

    @property
    def day(self) -> date:
        return self.at.date()


@dataclass(frozen=True, slots=True)
class Version:
    number: int
    effective_from: date
    effective_to: date | None
    retroactive: bool
    terms: Terms
    revision: int = 1

    def covers(self, d: date) -> bool:
        return self.effective_from <= d and (self.effective_to is None or d < self.effective_to)

    def describe_range(self) -> str:
        return f"{self.effective_from} - {self.effective_to or 'open'}"


@dataclass(frozen=True)
class AgreementSpec:
    id: str
    currency: str
    versions: tuple[Version, ...]
    deal_models: frozenset[str] | None = None

    def in_force(self, d: date) -> Version | None:
        for v in self.versions:
            if v.covers(d):
                return v
        return None

    def choose(self, d: date, booked: date) -> Version | None:
        """The version that governs revenue on `d` of a deal booked on `booked`."""
        current = self.in_force(d)
        if current is None or current.retroactive or booked >= current.effective_from:
            return current
        return self.in_force(booked) or current

    def version(self, number: int) -> Version | None:
        for v in self.versions:
            if v.number == number:
                return v
        return None

    @property
    def max_clawback_days(self) -> int:
        return max((v.terms.clawback_days for v in self.versions), default=0)


TierHistory = Sequence[tuple[datetime, PartnerTier]]


def tier_at(history: TierHistory, at: datetime) -> PartnerTier | None:
    """The partner's tier at `at`; revenue dated before the first known tier uses that first tier."""
    if not history:
        return None
    found = history[0][1]
    for since, tier in history:
        if since <= at:
            found = tier
        else:
            break
    return found


@dataclass(frozen=True, slots=True)
class Line:
    """A ledger line the fold says should exist, with the amount it should have."""

    key: str
    entry_type: EntryType
    amount: Decimal
    version: int
    revision: int
    rule: str
    detail: str
    period: date
    revenue_key: str
    revenue_at: datetime
    customer: str
    basis_amount: Decimal  # the revenue this line is on (refunded amount for a refund clawback)
    reverses: str | None = None


@dataclass(slots=True)
class LineFact:
    """What a later clawback needs to know about an accrual line."""

    key: str
    version: int
    customer: str
    at: datetime
    basis_amount: Decimal
    accrued: Decimal
    net: Decimal
    refunded: Decimal = ZERO


class LineBook:
    """Accrual lines by key and by customer: the fold's memory of what can be clawed back."""

    def __init__(self, facts: Iterable[LineFact] = ()) -> None:
        self.by_key: dict[str, LineFact] = {}
        self.by_customer: dict[str, list[LineFact]] = defaultdict(list)
        for fact in facts:
            self.add(fact)

    def add(self, fact: LineFact) -> None:
        if fact.key in self.by_key:
            return
        self.by_key[fact.key] = fact
        self.by_customer[fact.customer].append(fact)

    def get(self, key: str) -> LineFact | None:
        return self.by_key.get(key)


@dataclass(slots=True)
class CustomerState:
    start: date
    booked: date
    invoices: int = 0  # invoices that were eligible (one-time pays on the first)
    churned_on: date | None = None
    deal_commission: Decimal = ZERO  # per-deal cap accounting for invoice basis
    deal_model: str | None = None


@dataclass(slots=True)
class PeriodState:
    key: str
    basis: Decimal = ZERO
    commission: Decimal = ZERO


@dataclass(slots=True)
class FoldState:
    last: tuple[datetime, int, str] | None = None
    period: PeriodState | None = None  # events come in order, so only the latest period can still grow
    customers: dict[str, CustomerState] = field(default_factory=dict)


class OutOfOrder(Exception):
    """An event older than the fold's last one: fold again from scratch instead."""
