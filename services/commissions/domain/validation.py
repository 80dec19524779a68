"""Validation of agreement terms and of where a new version may be placed among the existing ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from contracts.commissions import (
    Basis,
    Duration,
    FlatRate,
    PartnerTierRate,
    SpifRate,
    Terms,
    TieredRate,
)
from contracts.pipeline import PartnerTier
from runtime.errors import Invalid
from services.commissions.domain.values import (
    HUNDRED,
    MAX_CLAWBACK_DAYS,
    MAX_RECURRING_MONTHS,
    ZERO,
    Version,
    money,
    pct,
)


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
    elif isinstance(rule, SpifRate):
        if terms.basis is not Basis.deal:
            raise Invalid("a SPIF pays its bonus per won deal: its basis is 'deal'", field=f"{field}.basis")
        if rule.tiers is not None and len(set(rule.tiers)) != len(rule.tiers):
            raise Invalid("each tier once", field=f"{where}.tiers")
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


def is_spif(terms: Terms) -> bool:
    return isinstance(terms.rate, SpifRate)


def validate_window(terms: Terms, effective_to: date | None, others: Sequence[Version] = ()) -> None:
    """A SPIF is time-boxed: its version must end. An agreement is a SPIF or a commission rate, not both
    in turn: a SPIF beside an agreement is an agreement of its own, with its own ledger lines."""
    if is_spif(terms) and effective_to is None:
        raise Invalid("a SPIF is time-boxed: give the day after its last day as effective_to "
                      "(a calendar quarter 2026-Q4 is 2026-10-01 to 2027-01-01)", field="effective_to")
    if any(is_spif(v.terms) != is_spif(terms) for v in others):
        raise Invalid("an agreement is either a SPIF or a commission rate in all its versions; make the SPIF an "
                      "agreement of its own", field="terms.rate.kind")


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
