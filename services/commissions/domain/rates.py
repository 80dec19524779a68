"""Rate rules as curves: commission on cumulative revenue in a period (flat, tiered marginal or whole-amount,
by partner tier), and the words a ledger line explains its rate with."""

from __future__ import annotations

from decimal import Decimal

from contracts.commissions import (
    FlatRate,
    PartnerTierRate,
    RateRule,
    SpifRate,
    Tier,
    TieredRate,
    TierMode,
)
from contracts.pipeline import PartnerTier
from services.commissions.domain.values import HUNDRED, ZERO, money, pct


def curve(rule: RateRule, cumulative: Decimal, tier: PartnerTier | None) -> Decimal:
    """Commission on `cumulative` revenue in a period, exact (not rounded). A SPIF is no curve: it pays a
    fixed bonus per qualifying deal (fold.py `_spif`)."""
    assert not isinstance(rule, SpifRate)
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
    if isinstance(rule, SpifRate):
        return "spif"
    return f"tiered_{rule.mode.value}"


def describe_spif(rule: SpifRate) -> str:
    """The SPIF's rule in words: what a deal must be to earn the bonus."""
    words = f"SPIF bonus {money(rule.bonus)} per deal won"
    if rule.min_amount is not None:
        words += f" of at least {money(rule.min_amount)}"
    if rule.tiers:
        words += " by a " + " or ".join(t.value for t in rule.tiers) + " partner"
    if rule.pipelines:
        words += " in the " + " or ".join(rule.pipelines) + " pipeline"
    return words


def describe_rate(rule: RateRule, before: Decimal, amount: Decimal, tier: PartnerTier | None,
                  period: str) -> str:
    assert not isinstance(rule, SpifRate)
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
