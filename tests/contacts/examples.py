"""Worked examples of the strength score with the default settings (half-life 30 days, saturation 3,
cold below 30; meeting 3, call 2, email 1, an email we sent counts half; seniority manager 1,
executive 1.5). docs/contacts.md prints the same table; tests/contacts/test_strength.py checks
both against the function."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    story: str
    touches: tuple[tuple[int, str, str], ...]  # (days ago, kind, initiated by)
    seniority: str
    score: int  # now
    cold_in_days: int | None  # whole days until it goes cold without a new touch (negative: cold since)


EXAMPLES: tuple[Example, ...] = (
    Example("one meeting today", ((0, "meeting", "us"),), "manager", 63, 44),
    Example("one meeting 30 days ago (one half-life)", ((30, "meeting", "us"),), "manager", 39, 14),
    Example("one meeting 60 days ago", ((60, "meeting", "us"),), "manager", 22, -16),
    Example("an email we sent today", ((0, "email", "us"),), "manager", 15, 0),
    Example("an email they sent today", ((0, "email", "them"),), "manager", 28, 0),
    Example("a call today with an executive", ((0, "call", "us"),), "executive", 63, 44),
    Example("monthly meetings for a year, last one today",
            tuple((30 * i, "meeting", "us") for i in range(12)), "manager", 86, 74),
    Example("monthly meetings for a year, last one 45 days ago",
            tuple((45 + 30 * i, "meeting", "us") for i in range(12)), "manager", 50, 29),
    Example("no touches at all", (), "manager", 0, None),
)
