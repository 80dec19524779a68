"""The "attention this week" ranking: a pure, deterministic function (no I/O).

Each candidate action gets a priority

    priority = (1 + log10(1 + stake / 1000)) x urgency x (1.5 if crucial else 1)

- stake: the open pipeline value (reporting currency) that depends on it; the logarithm keeps one huge
  deal from drowning everything else ($0 → 1, $9K → 2, $99K → 3, $999K → 4);
- urgency for a touch: 1 / (1 + days until cold / 7) — cold today (or never touched) is 1, cold in a
  week 0.5, in a month 0.19; once cold it fades again, 1 / (1 + days cold / 30), because the point is
  to act before a relationship goes cold (cold for a month 0.5, for four months 0.2);
- urgency for a deadline (ACE Action Required; a funding claim, fund request expiry or competency
  renewal): 1 / (1 + days until due / 7), and 1.5 once overdue, because a missed deadline costs money.

The words that explain a line ("$95K at stake; strength 38, cold in 6 days; last touch 41 days ago") are
the gateway's (gateway/attention_words.py), from the figures each item carries.

Candidates are sorted by priority (highest first), then by the earlier cold date / deadline, then by
key, so equal inputs always give the same list. Each member's week is then filled in that order: an
action whose effort still fits the member's capacity is planned; one that does not is listed outside
capacity (a smaller one further down may still fit — first fit).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from contracts.contacts import ActionKind

CRUCIAL_FACTOR = 1.5
OVERDUE_URGENCY = 1.5


@dataclass(frozen=True)
class Candidate:
    kind: ActionKind
    key: str
    owner: str | None
    title: str
    link: str
    stake: Decimal
    effort: Decimal
    crucial: bool = False
    score: int | None = None
    days_until_cold: int | None = None
    last_touch_days: int | None = None
    due_in_days: int | None = None
    what: str = ""  # for a deadline: what is due ("ACE Action Required")


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    priority: float


@dataclass
class Week:
    owner: str | None
    capacity: Decimal
    planned: list[Ranked] = field(default_factory=list)
    outside: list[Ranked] = field(default_factory=list)

    @property
    def planned_hours(self) -> Decimal:
        return sum((r.candidate.effort for r in self.planned), Decimal(0))


def urgency(c: Candidate) -> float:
    if c.kind == ActionKind.touch:
        days = c.days_until_cold if c.days_until_cold is not None else 0
        return 1.0 / (1.0 + days / 7.0) if days >= 0 else 1.0 / (1.0 + -days / 30.0)
    days = c.due_in_days if c.due_in_days is not None else 0
    return OVERDUE_URGENCY if days < 0 else 1.0 / (1.0 + days / 7.0)


def priority(c: Candidate) -> float:
    stake = float(max(c.stake, Decimal(0)))
    return (1.0 + math.log10(1.0 + stake / 1000.0)) * urgency(c) * (CRUCIAL_FACTOR if c.crucial else 1.0)


def rank(candidates: list[Candidate]) -> list[Ranked]:
    ranked = [Ranked(c, priority(c)) for c in candidates]
    ranked.sort(key=lambda r: (-round(r.priority, 9), _when(r.candidate), r.candidate.key))
    return ranked


def _when(c: Candidate) -> int:
    value = c.days_until_cold if c.kind == ActionKind.touch else c.due_in_days
    return value if value is not None else -10**6


def fill(ranked: list[Ranked], owners: list[str | None], capacity_of: Callable[[str], Decimal]) -> list[Week]:
    """Each owner's week in rank order (`owners` are listed even without a candidate). Actions without
    an owner have no capacity: they all fall outside, for the VP to hand out."""
    weeks: dict[str | None, Week] = {}

    def week_of(owner: str | None) -> Week:
        if owner not in weeks:
            weeks[owner] = Week(owner, capacity_of(owner) if owner is not None else Decimal(0))
        return weeks[owner]

    for owner in owners:
        week_of(owner)
    for r in ranked:
        week = week_of(r.candidate.owner)
        if week.planned_hours + r.candidate.effort <= week.capacity:
            week.planned.append(r)
        else:
            week.outside.append(r)
    return sorted(weeks.values(), key=lambda w: (w.owner is None, w.owner or ""))
