"""The forecast: commission an open opportunity would earn if won, weighted by its probability."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from contracts.commissions import (
    Basis,
    PartnerTierRate,
    SpifRate,
)
from contracts.pipeline import PartnerTier
from services.commissions.domain.rates import curve
from services.commissions.domain.values import HUNDRED, ZERO, AgreementSpec, Version, money, q


@dataclass(frozen=True, slots=True)
class Expected:
    version: Version
    rate: Decimal  # effective percent on this amount
    commission: Decimal
    note: str


def expected_commission(spec: AgreementSpec, *, amount: Decimal, currency: str, probability: Decimal,
                        on: date, deal_model: str | None, tier: PartnerTier | None,
                        period_basis: Decimal, pipeline: str | None = None) -> Expected | None:
    """Commission an open opportunity would earn if won on `on`, weighted by its probability (0..1).
    Tiered rates start from the revenue already in the period (`period_basis`)."""
    version = spec.in_force(on)
    if version is None or currency != spec.currency:
        return None
    if spec.deal_models is not None and (deal_model or "").lower() not in spec.deal_models:
        return None
    terms = version.terms
    if isinstance(terms.rate, SpifRate):
        if terms.rate.pipelines and pipeline not in terms.rate.pipelines:
            return None
        return _expected_spif(version, terms.rate, amount=amount, probability=probability, tier=tier)
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


def _expected_spif(version: Version, rule: SpifRate, *, amount: Decimal, probability: Decimal,
                   tier: PartnerTier | None) -> Expected | None:
    """The bonus weighted by the probability, if the deal would qualify as it stands (window: `in_force`)."""
    if rule.min_amount is not None and amount < rule.min_amount:
        return None
    if rule.tiers and tier not in rule.tiers:
        return None
    rate = (rule.bonus / amount * HUNDRED).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP) if amount else ZERO
    return Expected(version=version, rate=rate, commission=q(rule.bonus * probability),
                    note=f"SPIF bonus {money(rule.bonus)} if won before {version.effective_to}")
