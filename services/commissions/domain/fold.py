"""The fold: one revenue event on from the fold's state gives ledger lines (deal won, invoice, refund,
churn); folding every event from an empty state gives the ledger an agreement should hold."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from contracts.commissions import (
    Basis,
    Duration,
    EntryType,
    PartnerTierRate,
    RevenueKind,
    SpifRate,
    Terms,
)
from contracts.pipeline import PartnerTier
from contracts.quarters import add_months, month_start
from services.commissions.domain.rates import curve, describe_rate, describe_spif, rule_name
from services.commissions.domain.values import (
    ZERO,
    AgreementSpec,
    CustomerState,
    FoldState,
    Line,
    LineBook,
    LineFact,
    OutOfOrder,
    PeriodState,
    Revenue,
    TierHistory,
    Version,
    money,
    period_key,
    q,
    tier_at,
)


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
    if isinstance(terms.rate, SpifRate):
        return _spif(terms.rate, state, book, ev, version, tiers, deal_so_far=deal_so_far)
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
    amount, detail = _capped(terms, amount, detail, deal_so_far=deal_so_far, period=period, key=key)
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



def _capped(terms: Terms, amount: Decimal, detail: str, *, deal_so_far: Decimal, period: PeriodState,
            key: str) -> tuple[Decimal, str]:
    """The amount within the per-deal and per-period caps, and the detail saying which cap cut it."""
    if terms.cap_per_deal is not None and amount > terms.cap_per_deal - deal_so_far:
        amount = max(terms.cap_per_deal - deal_so_far, ZERO)
        detail += f"; per-deal cap {money(terms.cap_per_deal)} reached"
    if terms.cap_per_period is not None and amount > terms.cap_per_period - period.commission:
        amount = max(terms.cap_per_period - period.commission, ZERO)
        detail += f"; {key} cap {money(terms.cap_per_period)} reached"
    return amount, detail

def _spif(rule: SpifRate, state: FoldState, book: LineBook, ev: Revenue, version: Version, tiers: TierHistory,
          *, deal_so_far: Decimal) -> tuple[list[Line], list[str]]:
    """A SPIF version: the deal earns the fixed bonus once if it qualifies (won in the version's window,
    which `choose` already decided, for at least the minimum, by a partner of a named tier), else a note
    says which condition it missed. The line key is the deal's revenue key, so a deal earns once per
    SPIF agreement however often its win is delivered; a reopened deal is reversed by an adjustment."""
    terms = version.terms
    assert ev.amount is not None
    if rule.min_amount is not None and ev.amount < rule.min_amount:
        return [], [f"SPIF: the deal's {money(ev.amount)} is below the minimum of {money(rule.min_amount)}"]
    if rule.tiers:
        tier = tier_at(tiers, ev.at)
        if tier is None:
            return [], ["the partner's tier is not known yet"]
        if tier not in rule.tiers:
            names = " or ".join(t.value for t in rule.tiers)
            return [], [f"SPIF: the partner was {tier.value} when the deal was won; the SPIF is for {names}"]
    if rule.pipelines and ev.pipeline not in rule.pipelines:
        wanted = " or ".join(rule.pipelines)
        return [], [f"SPIF: the deal was won in the {ev.pipeline} pipeline; the SPIF is for {wanted}" if ev.pipeline
                    else f"SPIF: the deal's pipeline is not known (recorded before pipelines were kept); the SPIF "
                         f"is for {wanted}"]
    key = period_key(ev.day, terms.period)
    if state.period is None or state.period.key != key:
        state.period = PeriodState(key)
    period = state.period
    last_day = version.effective_to - timedelta(days=1) if version.effective_to else None
    window = f"{version.effective_from} to {last_day}" if last_day else f"from {version.effective_from}"
    amount = rule.bonus
    detail = f"{describe_spif(rule)}, {window}: deal of {money(ev.amount)} won {ev.day}"
    amount, detail = _capped(terms, amount, detail, deal_so_far=deal_so_far, period=period, key=key)
    period.basis += ev.amount
    period.commission += amount
    if amount == 0:
        return [], [f"nothing earned: {detail}"]
    line = Line(
        key=ev.key, entry_type=EntryType.accrual, amount=amount, version=version.number,
        revision=version.revision, rule="spif", detail=detail, period=month_start(ev.day),
        revenue_key=ev.key, revenue_at=ev.at, customer=ev.customer, basis_amount=ev.amount,
    )
    book.add(LineFact(key=line.key, version=version.number, customer=ev.customer, at=ev.at,
                      basis_amount=ev.amount, accrued=amount, net=amount))
    return [line], []


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
