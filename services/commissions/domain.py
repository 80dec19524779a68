"""Commission maths: pure functions and value objects, no I/O.

The ledger of one agreement is a left fold over its partner's revenue events in business-time order
(`order`): `step` turns one event into ledger lines, given the fold's state so far. Folding every event
from an empty state (`fold`) gives the lines the ledger *should* hold; the service either steps new
events on from the stored state (events arriving in order, the common case) or folds again from scratch
and writes the difference as adjusting entries (an event arrived out of order, an agreement changed).

Rules, in the words of the agreement:
- A version is in force over [effective_from, effective_to). Revenue uses the version in force on its
  date; a deal booked before that version started keeps the version it was booked under, unless the
  newer version is retroactive.
- Basis `deal`: the deal amount earns once, when the opportunity is won. Basis `invoice`: each paid
  invoice earns, for the first invoice only (one-time), for invoices within N months of the
  customer's start (recurring), or for every invoice until the customer churns (lifetime).
- Tiered rates look at the agreement's revenue accumulated in the period (month/quarter/year):
  marginal tiers give each slice its own rate; whole-amount tiers put all of the period's revenue at the
  rate of the tier reached, so the event that crosses a threshold also carries the catch-up on the
  revenue before it. Both are `curve(cumulative)`; an event earns curve(after) - curve(before).
- Caps: per deal (for invoice basis, a deal is the customer's revenue stream) and per period; an event
  earns at most what is left under each.
- Clawback: a refund within the window reverses the refunded share of the commission; a churn reverses
  all commission on that customer's revenue dated within the window before it. Outside the window,
  nothing is reversed. Reversals do not give cap room back and do not lower the period's tier basis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from contracts.commissions import (
    Basis,
    Duration,
    EntryType,
    FlatRate,
    PartnerTierRate,
    RatePeriod,
    RateRule,
    RevenueKind,
    Terms,
    Tier,
    TieredRate,
    TierMode,
)
from contracts.pipeline import PartnerTier
from contracts.quarters import Quarter, add_months, month_start
from runtime import formatting
from runtime.errors import Invalid

ZERO = Decimal(0)
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MAX_RECURRING_MONTHS = 120
MAX_CLAWBACK_DAYS = 3650
KIND_RANK = {RevenueKind.deal_won: 0, RevenueKind.invoice_paid: 1, RevenueKind.refund: 2, RevenueKind.churn: 3}


def q(amount: Decimal) -> Decimal:
    """Round to cents, half up (the way invoices round)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def money(amount: Decimal) -> str:
    return formatting.number(amount, 2)


def pct(rate: Decimal) -> str:
    return formatting.rate(rate)


def customer_key(name: str) -> str:
    """Customers are named by people and systems; compare them case- and whitespace-insensitively."""
    return " ".join(name.split()).casefold()


# ------------------------------------------------------------------------------------------ periods


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


# ------------------------------------------------------------------------------------ value objects


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


# ------------------------------------------------------------------------------------------- rates


def curve(rule: RateRule, cumulative: Decimal, tier: PartnerTier | None) -> Decimal:
    """Commission on `cumulative` revenue in a period, exact (not rounded)."""
    if isinstance(rule, FlatRate):
        return cumulative * rule.rate / HUNDRED
    if isinstance(rule, PartnerTierRate):
        assert tier is not None
        return cumulative * rule.rates[tier] / HUNDRED
    if rule.mode is TierMode.marginal:
        total = ZERO
        for t in rule.tiers:
            top = cumulative if t.up_to is None else min(cumulative, t.up_to)
            if top > t.from_amount:
                total += (top - t.from_amount) * t.rate / HUNDRED
        return total
    return cumulative * tier_reached(rule, cumulative).rate / HUNDRED


def tier_reached(rule: TieredRate, cumulative: Decimal) -> Tier:
    for t in rule.tiers:
        if t.up_to is None or cumulative < t.up_to:
            return t
    return rule.tiers[-1]


def rule_name(rule: RateRule) -> str:
    if isinstance(rule, FlatRate):
        return "flat"
    if isinstance(rule, PartnerTierRate):
        return "partner_tier"
    return f"tiered_{rule.mode.value}"


def describe_rate(rule: RateRule, before: Decimal, amount: Decimal, tier: PartnerTier | None,
                  period: str) -> str:
    if isinstance(rule, FlatRate):
        return f"{pct(rule.rate)} of {money(amount)}"
    if isinstance(rule, PartnerTierRate):
        assert tier is not None
        return f"{tier.value} partner rate {pct(rule.rates[tier])} of {money(amount)}"
    after = before + amount
    if rule.mode is TierMode.marginal:
        slices = []
        for t in rule.tiers:
            lo = max(before, t.from_amount)
            hi = after if t.up_to is None else min(after, t.up_to)
            if hi > lo:
                slices.append(f"{pct(t.rate)} on {money(hi - lo)}")
        return f"marginal tiers, {period} revenue {money(before)} → {money(after)}: " + ", ".join(slices)
    reached = tier_reached(rule, after)
    text = f"whole-amount tiers, {period} revenue {money(before)} → {money(after)}: {pct(reached.rate)} on all"
    if tier_reached(rule, before) is not reached and before > 0:
        text += f" (includes the catch-up on the {money(before)} before)"
    return text


# -------------------------------------------------------------------------------------------- fold


def step(spec: AgreementSpec, state: FoldState, book: LineBook, ev: Revenue,
         tiers: TierHistory = ()) -> tuple[list[Line], list[str]]:
    """Apply one event (newer than every event folded so far) and return the new lines and notes."""
    if state.last is not None and ev.order <= state.last:
        raise OutOfOrder(ev.key)
    state.last = ev.order
    if ev.kind is RevenueKind.deal_won:
        return _deal_won(spec, state, book, ev, tiers)
    if ev.kind is RevenueKind.invoice_paid:
        return _invoice(spec, state, book, ev, tiers)
    if ev.kind is RevenueKind.refund:
        return _refund(spec, book, ev)
    return _churn(spec, state, book, ev)


def _deal_won(spec: AgreementSpec, state: FoldState, book: LineBook, ev: Revenue,
              tiers: TierHistory) -> tuple[list[Line], list[str]]:
    d = ev.day
    customer = state.customers.get(ev.customer)
    if customer is None or (customer.churned_on is not None and customer.churned_on <= d):
        customer = state.customers[ev.customer] = CustomerState(start=d, booked=d)
    customer.deal_model = ev.deal_model or customer.deal_model
    version = spec.choose(d, d)
    if version is None:
        return [], [f"no version of the agreement is in force on {d}"]
    if version.terms.basis is not Basis.deal:
        return [], []
    refusal = _refuse(spec, ev, ev.deal_model)
    if refusal:
        return [], [refusal]
    return _accrue(spec, state, book, ev, version, tiers, deal_so_far=ZERO)


def _invoice(spec: AgreementSpec, state: FoldState, book: LineBook, ev: Revenue,
             tiers: TierHistory) -> tuple[list[Line], list[str]]:
    d = ev.day
    customer = state.customers.get(ev.customer)
    if customer is None:
        start = min(ev.customer_started_on, d) if ev.customer_started_on else d
        customer = state.customers[ev.customer] = CustomerState(start=start, booked=start)
    elif customer.churned_on is not None and d > customer.churned_on:
        return [], [f"the customer churned on {customer.churned_on}"]
    version = spec.choose(d, customer.booked)
    if version is None:
        return [], [f"no version of the agreement is in force on {d}"]
    terms = version.terms
    if terms.basis is not Basis.invoice:
        return [], []
    refusal = _refuse(spec, ev, ev.deal_model or customer.deal_model)
    if refusal:
        return [], [refusal]
    if terms.duration is Duration.one_time and customer.invoices > 0:
        customer.invoices += 1
        return [], ["one-time commission: only the customer's first invoice earns"]
    if terms.duration is Duration.recurring:
        end = add_months(customer.start, terms.duration_months or 0)
        if d >= end:
            return [], [f"after the {terms.duration_months}-month commission period from the customer's "
                        f"start on {customer.start} (ended {end})"]
    customer.invoices += 1
    lines, notes = _accrue(spec, state, book, ev, version, tiers, deal_so_far=customer.deal_commission)
    for line in lines:
        customer.deal_commission += line.amount
    return lines, notes


def _refuse(spec: AgreementSpec, ev: Revenue, deal_model: str | None) -> str | None:
    if ev.currency != spec.currency:
        return f"the revenue is in {ev.currency}, the agreement in {spec.currency} (no conversion)"
    if spec.deal_models is not None and (deal_model or "").lower() not in spec.deal_models:
        return f"deal model {deal_model or 'unknown'} is not covered by this agreement"
    return None


def _accrue(spec: AgreementSpec, state: FoldState, book: LineBook, ev: Revenue, version: Version,
            tiers: TierHistory, *, deal_so_far: Decimal) -> tuple[list[Line], list[str]]:
    terms = version.terms
    assert ev.amount is not None
    tier: PartnerTier | None = None
    if isinstance(terms.rate, PartnerTierRate):
        tier = tier_at(tiers, ev.at)
        if tier is None:
            return [], ["the partner's tier is not known yet"]
    key = period_key(ev.day, terms.period)
    if state.period is None or state.period.key != key:
        state.period = PeriodState(key)
    period = state.period
    before = period.basis
    amount = q(curve(terms.rate, before + ev.amount, tier) - curve(terms.rate, before, tier))
    detail = describe_rate(terms.rate, before, ev.amount, tier, key)
    notes: list[str] = []
    if terms.cap_per_deal is not None and amount > terms.cap_per_deal - deal_so_far:
        amount = max(terms.cap_per_deal - deal_so_far, ZERO)
        detail += f"; per-deal cap {money(terms.cap_per_deal)} reached"
    if terms.cap_per_period is not None and amount > terms.cap_per_period - period.commission:
        amount = max(terms.cap_per_period - period.commission, ZERO)
        detail += f"; {key} cap {money(terms.cap_per_period)} reached"
    period.basis += ev.amount
    period.commission += amount
    if amount == 0:
        notes.append(f"nothing earned: {detail}")
        return [], notes
    line = Line(
        key=ev.key, entry_type=EntryType.accrual, amount=amount, version=version.number,
        revision=version.revision, rule=rule_name(terms.rate), detail=detail, period=month_start(ev.day),
        revenue_key=ev.key, revenue_at=ev.at, customer=ev.customer, basis_amount=ev.amount,
    )
    book.add(LineFact(key=line.key, version=version.number, customer=ev.customer, at=ev.at,
                      basis_amount=ev.amount, accrued=amount, net=amount))
    return [line], notes


def _refund(spec: AgreementSpec, book: LineBook, ev: Revenue) -> tuple[list[Line], list[str]]:
    assert ev.amount is not None
    fact = book.get(f"{RevenueKind.invoice_paid.value}:{ev.invoice_ref}")
    if fact is None and ev.opportunity_id:
        fact = book.get(f"{RevenueKind.deal_won.value}:{ev.opportunity_id}")
    if fact is None:
        return [], [f"no commission on invoice {ev.invoice_ref} to claw back"]
    version = spec.version(fact.version)
    assert version is not None
    window = version.terms.clawback_days
    days = (ev.day - fact.at.date()).days
    if ev.currency != spec.currency:
        return [], [f"the refund is in {ev.currency}, the agreement in {spec.currency} (no conversion)"]
    if window == 0:
        return [], ["the agreement has no clawback window"]
    if days > window:
        return [], [f"refunded {days} days after the revenue, outside the {window}-day clawback window"]
    refundable = fact.basis_amount - fact.refunded
    refunded = min(ev.amount, refundable)
    if refunded <= 0 or fact.net <= 0:
        return [], ["the commission on it is already fully reversed"]
    if refunded == refundable:
        reversal = fact.net
    else:
        reversal = min(fact.net, q(fact.accrued * refunded / fact.basis_amount))
    if reversal == 0:
        return [], ["the refund is too small to reverse a cent"]
    fact.refunded += refunded
    fact.net -= reversal
    return [Line(
        key=ev.key, entry_type=EntryType.clawback, amount=-reversal, version=fact.version,
        revision=version.revision, rule="clawback_refund",
        detail=f"refund of {money(refunded)} of {money(fact.basis_amount)}, {days} days after the revenue "
               f"(window {window} days)",
        period=month_start(ev.day), revenue_key=ev.key, revenue_at=ev.at, customer=fact.customer,
        basis_amount=refunded, reverses=fact.key,
    )], []


def _churn(spec: AgreementSpec, state: FoldState, book: LineBook, ev: Revenue) -> tuple[list[Line], list[str]]:
    d = ev.day
    customer = state.customers.get(ev.customer)
    if customer is not None:
        customer.churned_on = d
    lines: list[Line] = []
    outside = 0
    for fact in sorted(book.by_customer.get(ev.customer, ()), key=lambda f: (f.at, f.key)):
        if fact.net <= 0:
            continue
        version = spec.version(fact.version)
        assert version is not None
        window = version.terms.clawback_days
        days = (d - fact.at.date()).days
        if window == 0 or days > window or days < 0:
            outside += 1
            continue
        lines.append(Line(
            key=f"{ev.key}>{fact.key}", entry_type=EntryType.clawback, amount=-fact.net, version=fact.version,
            revision=version.revision, rule="clawback_churn",
            detail=f"customer churned {days} days after the revenue (window {window} days)",
            period=month_start(d), revenue_key=ev.key, revenue_at=ev.at, customer=fact.customer,
            basis_amount=fact.basis_amount, reverses=fact.key,
        ))
        fact.net = ZERO
    notes = []
    if not lines:
        notes.append("no commission inside the clawback window to reverse" if outside
                     else "no commission on this customer to reverse")
    return lines, notes


@dataclass
class FoldResult:
    lines: dict[str, Line]
    notes: list[tuple[str, str]]
    state: FoldState
    book: LineBook


def fold(spec: AgreementSpec, events: Iterable[Revenue], tiers: TierHistory = ()) -> FoldResult:
    """Every line an agreement's ledger should hold, from all its partner's revenue."""
    state, book = FoldState(), LineBook()
    lines: dict[str, Line] = {}
    notes: list[tuple[str, str]] = []
    unique = {ev.key: ev for ev in events}
    for ev in sorted(unique.values(), key=lambda e: e.order):
        new, why = step(spec, state, book, ev, tiers)
        for line in new:
            lines[line.key] = line
        notes.extend((ev.key, n) for n in why)
    return FoldResult(lines, notes, state, book)


# ------------------------------------------------------------------------------------ recalculation


@dataclass(frozen=True, slots=True)
class PostedRow:
    """One stored ledger entry, as the engine needs it."""

    id: int
    line_key: str
    entry_type: EntryType
    rule: str
    amount: Decimal
    basis_amount: Decimal
    reverses: str | None
    version: int
    customer: str
    revenue_at: datetime
    period: date


def facts_from_rows(rows: Iterable[PostedRow]) -> list[LineFact]:
    """Rebuild the fold's memory of accrual lines from stored entries (originals plus adjustments, and
    the clawbacks that reverse them), exactly as the fold would have it."""
    by_line: dict[str, list[PostedRow]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.id):
        by_line[row.line_key].append(row)
    facts: dict[str, LineFact] = {}
    for key, rs in by_line.items():
        if rs[0].reverses is not None:
            continue
        accrued = sum((r.amount for r in rs), ZERO)
        if accrued != 0:
            # A corrected fact's adjusting entry carries the line as it is now (its revenue and basis), so
            # a later refund's share is of the corrected amount, as in a fold from scratch.
            facts[key] = LineFact(key=key, version=rs[-1].version, customer=rs[-1].customer, at=rs[-1].revenue_at,
                                  basis_amount=rs[-1].basis_amount, accrued=accrued, net=accrued)
    for rs in by_line.values():
        target = facts.get(rs[0].reverses or "")
        if target is None:
            continue
        total = sum((r.amount for r in rs), ZERO)
        target.net += total
        if total != 0 and rs[0].rule == "clawback_refund":
            target.refunded += rs[0].basis_amount
    return list(facts.values())


def posted_from_rows(rows: Iterable[PostedRow]) -> dict[str, Posted]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    first: dict[str, PostedRow] = {}
    for row in sorted(rows, key=lambda r: r.id):
        sums[row.line_key] += row.amount
        first.setdefault(row.line_key, row)
    return {k: Posted(key=k, amount=sums[k], first_entry_id=first[k].id, period=first[k].period) for k in sums}


@dataclass(frozen=True, slots=True)
class Posted:
    """What the ledger holds for one line key: the sum of its entries and its first (original) entry."""

    key: str
    amount: Decimal
    first_entry_id: int
    period: date


@dataclass(frozen=True, slots=True)
class Adjustment:
    key: str
    delta: Decimal
    adjusts_entry_id: int
    line: Line | None  # the line as it should be now; None when it should no longer exist


def differences(desired: dict[str, Line], posted: dict[str, Posted]) -> tuple[list[Line], list[Adjustment]]:
    """New lines to post, and adjusting amounts for lines whose posted sum differs from what they should be."""
    new = [line for key, line in desired.items() if key not in posted]
    adjustments = []
    for key, p in posted.items():
        line = desired.get(key)
        delta = (line.amount if line else ZERO) - p.amount
        if delta != 0:
            adjustments.append(Adjustment(key=key, delta=delta, adjusts_entry_id=p.first_entry_id, line=line))
    new.sort(key=lambda line: (line.revenue_at, line.key))
    adjustments.sort(key=lambda a: a.adjusts_entry_id)
    return new, adjustments


# ------------------------------------------------------------------------------------- validation


def validate_terms(terms: Terms, field: str = "terms") -> None:
    """Refuse terms that cannot mean what their author intended, saying which field and why."""
    rule = terms.rate
    where = f"{field}.rate"
    if isinstance(rule, FlatRate):
        _rate_in_range(rule.rate, f"{where}.rate")
    elif isinstance(rule, PartnerTierRate):
        for tier in PartnerTier:
            if tier not in rule.rates:
                raise Invalid(f"no rate for the {tier.value} tier; give one for each of bronze, silver, gold "
                              "and platinum", field=f"{where}.rates.{tier.value}")
            _rate_in_range(rule.rates[tier], f"{where}.rates.{tier.value}")
    else:
        _validate_tiers(rule, where)
    if terms.basis is Basis.deal and terms.duration is not Duration.one_time:
        raise Invalid("a deal-basis agreement earns once, on the deal amount; for recurring or lifetime "
                      "commission use basis 'invoice'", field=f"{field}.duration")
    if terms.duration is Duration.recurring:
        if terms.duration_months is None or not 1 <= terms.duration_months <= MAX_RECURRING_MONTHS:
            raise Invalid(f"recurring commission needs duration_months between 1 and {MAX_RECURRING_MONTHS}",
                          field=f"{field}.duration_months")
    elif terms.duration_months is not None:
        raise Invalid("duration_months applies only to recurring commission", field=f"{field}.duration_months")
    for name in ("cap_per_deal", "cap_per_period"):
        cap = getattr(terms, name)
        if cap is not None and cap <= 0:
            raise Invalid(f"{name} must be more than 0 (leave it empty for no cap)", field=f"{field}.{name}")
    if not 0 <= terms.clawback_days <= MAX_CLAWBACK_DAYS:
        raise Invalid(f"clawback_days must be between 0 and {MAX_CLAWBACK_DAYS}", field=f"{field}.clawback_days")


def _rate_in_range(rate: Decimal, field: str) -> None:
    if not ZERO <= rate <= HUNDRED:
        raise Invalid(f"rate {pct(rate)} is outside 0-100%", field=field)


def _validate_tiers(rule: TieredRate, where: str) -> None:
    tiers = rule.tiers
    if tiers[0].from_amount != 0:
        raise Invalid(f"the first tier must start at 0, not {money(tiers[0].from_amount)}, so all revenue has "
                      "a rate", field=f"{where}.tiers.0.from_amount")
    for i, t in enumerate(tiers):
        n = i + 1
        _rate_in_range(t.rate, f"{where}.tiers.{i}.rate")
        last = i == len(tiers) - 1
        if t.up_to is None and not last:
            raise Invalid(f"only the last tier may be open-ended; tier {n} has no up_to",
                          field=f"{where}.tiers.{i}.up_to")
        if last and t.up_to is not None:
            raise Invalid(f"the last tier must be open-ended (no up_to), or revenue above {money(t.up_to)} "
                          "has no rate", field=f"{where}.tiers.{i}.up_to")
        if t.up_to is not None and t.up_to <= t.from_amount:
            raise Invalid(f"tier {n} ends at {money(t.up_to)}, not after it starts at {money(t.from_amount)}",
                          field=f"{where}.tiers.{i}.up_to")
        if i > 0:
            prev_end = tiers[i - 1].up_to
            assert prev_end is not None
            if t.from_amount > prev_end:
                raise Invalid(f"gap between tiers: tier {n - 1} ends at {money(prev_end)} but tier {n} starts "
                              f"at {money(t.from_amount)}; revenue in between would have no rate",
                              field=f"{where}.tiers.{i}.from_amount")
            if t.from_amount < prev_end:
                raise Invalid(f"tiers {n - 1} and {n} overlap: tier {n - 1} ends at {money(prev_end)} but tier "
                              f"{n} starts at {money(t.from_amount)}", field=f"{where}.tiers.{i}.from_amount")


@dataclass(frozen=True)
class Placement:
    """Where a new or corrected version goes, and which open-ended version it ends."""

    closes: Version | None = None


def place_version(existing: Sequence[Version], effective_from: date, effective_to: date | None,
                  replacing: int | None = None) -> Placement:
    """Check a version's dates against the others. Adding a version after an open-ended latest version
    ends that one where the new one starts; any other overlap is refused, naming the version in the way."""
    if effective_to is not None and effective_to <= effective_from:
        raise Invalid(f"effective_to {effective_to} must be after effective_from {effective_from}",
                      field="effective_to")
    others = [v for v in existing if v.number != replacing]
    closes: Version | None = None
    latest = max(others, key=lambda v: v.effective_from, default=None)
    for v in others:
        ends_before = effective_to is not None and effective_to <= v.effective_from
        starts_after = v.effective_to is not None and effective_from >= v.effective_to
        if ends_before or starts_after:
            continue
        if (replacing is None and v is latest and v.effective_to is None
                and v.effective_from < effective_from):
            closes = v
            continue
        raise Invalid(f"overlaps version {v.number} ({v.describe_range()}); versions of an agreement may not "
                      "overlap", field="effective_from")
    return Placement(closes=closes)


# ------------------------------------------------------------------------------------------ forecast


@dataclass(frozen=True, slots=True)
class Expected:
    version: Version
    rate: Decimal  # effective percent on this amount
    commission: Decimal
    note: str


def expected_commission(spec: AgreementSpec, *, amount: Decimal, currency: str, probability: Decimal,
                        on: date, deal_model: str | None, tier: PartnerTier | None,
                        period_basis: Decimal) -> Expected | None:
    """Commission an open opportunity would earn if won on `on`, weighted by its probability (0..1).
    Tiered rates start from the revenue already in the period (`period_basis`)."""
    version = spec.in_force(on)
    if version is None or currency != spec.currency:
        return None
    if spec.deal_models is not None and (deal_model or "").lower() not in spec.deal_models:
        return None
    terms = version.terms
    if isinstance(terms.rate, PartnerTierRate) and tier is None:
        return None
    raw = curve(terms.rate, period_basis + amount, tier) - curve(terms.rate, period_basis, tier)
    note = ""
    if terms.cap_per_deal is not None and raw > terms.cap_per_deal:
        raw, note = terms.cap_per_deal, f"capped at {money(terms.cap_per_deal)} per deal"
    if terms.basis is Basis.invoice:
        note = "; ".join(filter(None, [note, "invoice basis: estimated on the deal amount"]))
    rate = (raw / amount * HUNDRED).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP) if amount else ZERO
    return Expected(version=version, rate=rate, commission=q(raw * probability), note=note)
