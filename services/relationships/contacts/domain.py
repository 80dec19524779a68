"""Relationship strength: a pure function of a contact's interactions and the time (no I/O).

    E(t)     = s · Σ_i  w_i · 2^(-(t - t_i) / h)          (only touches at or before t)
    score(t) = 100 · (1 - e^(-E(t) / K))

- recency: each touch's weight halves every h days (the half-life), so old touches fade;
- frequency: the weights add up, and 1 - e^(-E/K) saturates, so the tenth monthly meeting adds little
  and the sum of what is left of each touch is the trailing window (a touch four half-lives old keeps
  6% of its weight);
- depth: w_i is the kind's weight (meeting 3, call 2, event 2, email 1, message 1), halved for an
  email or message we sent (one-way; a reply from them counts in full), and s is the contact's
  seniority factor (executive 1.5 ... individual 0.8).

What makes it cheap: with the anchor A = the latest touch, E(t) = s · E_A · 2^(-(t - A)/h), so a
contact keeps two numbers (E_A and A) and any instant's score is one expression — no job rescans
contacts as time passes. A new touch at T ≥ A gives E_A' = E_A · 2^(-(T - A)/h) + w, A' = T; a touch
logged late (T < A) adds w · 2^(-(A - T)/h). The sum is the same in any order.

Cooling has a closed form too: the score falls below the cold threshold c when E drops under
E_c = -K · ln(1 - c/100), i.e. at  cold_at = A + h · log2(s · E_A / E_c).

Properties (tests/relationships/test_strength_properties.py): a new touch never lowers the score,
time passing never raises it, and it stays within 0-100. Worked examples: docs/contacts.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from contracts.contacts import Band, Initiator, InteractionKind, Seniority, StrengthSettings

DAY = 86400.0


@dataclass(frozen=True)
class Touch:
    at: datetime
    kind: InteractionKind
    initiated_by: Initiator = Initiator.us


@dataclass(frozen=True)
class Energy:
    """What a contact stores: the decayed weight sum at its latest touch (without seniority)."""

    value: float = 0.0
    anchor: datetime | None = None
    touches: int = 0


def weight(settings: StrengthSettings, kind: InteractionKind, initiated_by: Initiator) -> float:
    w = float(settings.weights.get(kind, 0))
    if kind in (InteractionKind.email, InteractionKind.message) and initiated_by == Initiator.us:
        w *= float(settings.one_way_factor)
    return w


def seniority_factor(settings: StrengthSettings, seniority: Seniority) -> float:
    return float(settings.seniority.get(seniority, 1))


def decay(settings: StrengthSettings, seconds: float) -> float:
    """The share of a touch's weight left after `seconds` (never more than all of it)."""
    days = max(seconds, 0.0) / DAY
    exponent = -days / float(settings.half_life_days)
    # Past ~1000 half-lives the weight is 0 for any purpose (and 2**-1075 underflows anyway).
    return 0.0 if exponent < -1000 else 2.0 ** exponent


def add(settings: StrengthSettings, energy: Energy, touch: Touch) -> Energy:
    w = weight(settings, touch.kind, touch.initiated_by)
    if energy.anchor is None:
        return Energy(w, touch.at, energy.touches + 1)
    if touch.at >= energy.anchor:
        carried = energy.value * decay(settings, (touch.at - energy.anchor).total_seconds())
        return Energy(carried + w, touch.at, energy.touches + 1)
    return Energy(energy.value + w * decay(settings, (energy.anchor - touch.at).total_seconds()), energy.anchor,
                  energy.touches + 1)


def fold(settings: StrengthSettings, touches: Iterable[Touch]) -> Energy:
    energy = Energy()
    for touch in sorted(touches, key=lambda t: t.at):
        energy = add(settings, energy, touch)
    return energy


def energy_at(settings: StrengthSettings, energy: Energy, now: datetime, seniority: Seniority) -> float:
    if energy.anchor is None:
        return 0.0
    return seniority_factor(settings, seniority) * energy.value * decay(settings, (now - energy.anchor).total_seconds())


def score_of(settings: StrengthSettings, e: float) -> float:
    return 100.0 * (1.0 - math.exp(-max(e, 0.0) / float(settings.saturation)))


def strength(settings: StrengthSettings, energy: Energy, now: datetime, seniority: Seniority) -> float:
    """The score at `now`, 0-100 (a float; pages show it rounded down, so 29.9 is still cold at 30)."""
    return min(100.0, score_of(settings, energy_at(settings, energy, now, seniority)))


def display(score: float) -> int:
    return max(0, min(100, math.floor(score)))


def cold_energy(settings: StrengthSettings) -> float:
    return -float(settings.saturation) * math.log(1.0 - settings.cold_threshold / 100.0)


def cold_at(settings: StrengthSettings, energy: Energy, seniority: Seniority) -> datetime | None:
    """When the score falls below the cold threshold without a new touch (the anchor itself when it
    was never above it); None without any touch."""
    if energy.anchor is None:
        return None
    e = seniority_factor(settings, seniority) * energy.value
    threshold = cold_energy(settings)
    if e <= threshold:
        return energy.anchor
    days = float(settings.half_life_days) * math.log2(e / threshold)
    return energy.anchor + timedelta(days=min(days, 3_650_000.0))


def band(settings: StrengthSettings, score: float, touched: bool) -> Band:
    if not touched:
        return Band.none
    shown = display(score)
    if shown < settings.cold_threshold:
        return Band.cold
    return Band.strong if shown >= 60 else Band.warm


def days_until(when: datetime | None, now: datetime) -> int | None:
    """Whole days from now until `when` (negative once past); rounded down, so 'in 0 days' is today."""
    if when is None:
        return None
    return math.floor((when - now).total_seconds() / DAY)


def history(settings: StrengthSettings, touches: list[Touch], seniority: Seniority, days: list[date]
            ) -> list[tuple[date, int]]:
    """The score at the end of each day, from the touches up to then (for the contact's chart)."""
    ordered = sorted(touches, key=lambda t: t.at)
    out: list[tuple[date, int]] = []
    energy = Energy()
    i = 0
    for day in sorted(days):
        end = datetime.combine(day, time.max, tzinfo=ordered[0].at.tzinfo if ordered else None)
        while i < len(ordered) and ordered[i].at <= end:
            energy = add(settings, energy, ordered[i])
            i += 1
        out.append((day, display(strength(settings, energy, end, seniority)) if energy.anchor else 0))
    return out
