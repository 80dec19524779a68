"""Recalculation: stored ledger rows turned into the fold's facts (the one place rows become domain
objects), and the difference between the ledger there is and the one there should be, as adjustments."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from contracts.commissions import (
    EntryType,
)
from services.commissions.domain.values import ZERO, Line, LineFact


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
