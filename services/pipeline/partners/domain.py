"""Partner rules: the weighted scorecard and tiers from trailing revenue. No I/O."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from contracts import pipeline as c

SCORE_PLACES = Decimal("0.01")


def weighted_score(card: c.Scorecard, weights: c.ScorecardWeights) -> Decimal:
    """sum of criterion x weight / 100: a score on the criteria's own 0-10 scale, to two places."""
    total = (card.strategic_fit * weights.strategic_fit + card.revenue_potential * weights.revenue_potential
             + card.feasibility * weights.feasibility + card.risk * weights.risk)
    return (total / 100).quantize(SCORE_PLACES, rounding=ROUND_HALF_UP)


def tier_for(trailing_revenue: Decimal, thresholds: c.TierThresholds) -> c.PartnerTier:
    """The highest tier whose threshold the revenue reaches (a threshold reached exactly counts)."""
    if trailing_revenue >= thresholds.platinum:
        return c.PartnerTier.platinum
    if trailing_revenue >= thresholds.gold:
        return c.PartnerTier.gold
    if trailing_revenue >= thresholds.silver:
        return c.PartnerTier.silver
    return c.PartnerTier.bronze
