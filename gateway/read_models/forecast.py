"""The pipeline KPIs' arithmetic: what one opportunity contributes to each aggregate, fiscal months,
currency conversion and the forecast against the target. Pure functions, exact Decimal; no I/O.

Definitions (the dashboard and docs/pipeline.md use the same words):
- quarter: the fiscal quarter holding `as_of` (the fiscal year starts in the configured month).
- closed won: won deals of the forecast pipelines whose close date falls in the quarter.
- weighted pipeline: open deals of the forecast pipelines expected to close by the quarter's end
  (overdue ones included: they are still open), amount x stage probability.
- projected = closed won + weighted pipeline; at risk when projected < target.
- amounts in other currencies are converted per currency (total x rate, rounded to the cent);
  currencies without a rate are reported apart and count toward nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, Field

from contracts import pipeline as pc
from contracts.quarters import Quarter

CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
TENTH = Decimal("0.1")
# Open deals without an expected close date: a month after every quarter, so never "by quarter end".
NO_DATE = date(9999, 12, 1)
ZERO = Decimal("0.00")


def month_of(value: date | datetime) -> date:
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return value.replace(day=1)


def day_of(value: datetime) -> date:
    return value.astimezone(UTC).date()


# ------------------------------------------------------------------------------- contributions


@dataclass(frozen=True)
class OpportunityFacts:
    """What the aggregates need of an opportunity."""

    pipeline: str
    stage: str
    outcome: str
    owner: str | None
    partner_id: Any
    amount: Decimal
    currency: str
    expected_close_date: date | None
    hyperscaler: str | None
    created_at: datetime
    stage_entered_at: datetime
    closed_at: datetime | None
    launched_at: datetime | None


NIL_PARTNER = "00000000-0000-0000-0000-000000000000"

Key = tuple[str, tuple[Any, ...]]


def contributions(o: OpportunityFacts) -> dict[Key, tuple[Any, ...]]:
    """(aggregate, key) -> values this opportunity adds (nothing while it is deleted). Aggregates: open,
    closed, partner_won, launch, stuck; see the gateway_pipeline_0001 migration for their columns."""
    owner = o.owner or ""
    out: dict[Key, tuple[Any, ...]] = {}
    if o.outcome == pc.DELETED_OUTCOME:  # a deleted deal counts nowhere until it is restored
        return out
    if o.outcome == pc.Outcome.open.value:
        close_month = month_of(o.expected_close_date) if o.expected_close_date else NO_DATE
        out[("open", (o.pipeline, o.stage, owner, o.currency, close_month))] = (1, o.amount)
        out[("stuck", (day_of(o.stage_entered_at), o.pipeline, o.stage))] = (1,)
    elif o.closed_at is not None:
        cycle = max(0, int((o.closed_at - o.created_at).total_seconds()))
        out[("closed", (month_of(o.closed_at), o.pipeline, o.outcome, owner, o.currency))] = (1, o.amount, cycle)
        if o.outcome == pc.Outcome.won.value:
            partner = str(o.partner_id) if o.partner_id else NIL_PARTNER
            out[("partner_won", (partner, month_of(o.closed_at), o.currency))] = (1, o.amount)
    if o.launched_at is not None:
        out[("launch", (month_of(o.launched_at), o.hyperscaler or "", owner))] = (1,)
    return out


def delta(old: OpportunityFacts | None, new: OpportunityFacts | None) -> dict[Key, tuple[Any, ...]]:
    """new - old, per aggregate key, leaving out keys that do not move."""
    out: dict[Key, list[Any]] = {}
    for sign, facts in ((-1, old), (1, new)):
        if facts is None:
            continue
        for key, values in contributions(facts).items():
            acc = out.setdefault(key, [0] * len(values))
            for i, v in enumerate(values):
                acc[i] += sign * v
    return {k: tuple(v) for k, v in out.items() if any(v)}


def merge(into: dict[Key, list[Any]], more: Mapping[Key, tuple[Any, ...]]) -> None:
    for key, values in more.items():
        acc = into.setdefault(key, [0] * len(values))
        for i, v in enumerate(values):
            acc[i] += v


# ------------------------------------------------------------------------------------ currency


def convert(by_currency: Mapping[str, Decimal], settings: pc.PipelineSettings) -> tuple[Decimal, dict[str, Decimal]]:
    """Total in the reporting currency (each currency's total x rate, to the cent), and what had no rate."""
    total = ZERO
    unconverted: dict[str, Decimal] = {}
    for currency in sorted(by_currency):
        amount = by_currency[currency]
        if currency == settings.reporting_currency:
            total += amount.quantize(CENT, ROUND_HALF_UP)
        elif currency in settings.fx_rates:
            total += (amount * settings.fx_rates[currency]).quantize(CENT, ROUND_HALF_UP)
        elif amount:
            unconverted[currency] = amount.quantize(CENT, ROUND_HALF_UP)
    return total, unconverted


def weighted(rows: Iterable[tuple[int, str, Decimal]]) -> dict[str, Decimal]:
    """Per currency, sum of amount x probability% (exact; rounding happens in `convert`)."""
    out: dict[str, Decimal] = defaultdict(lambda: Decimal(0))
    for probability, currency, amount in rows:
        out[currency] += amount * probability / 100
    return dict(out)


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if not denominator:
        return None
    return (numerator / denominator).quantize(RATIO, ROUND_HALF_UP)


def average_days(seconds: Decimal | int, count: int) -> Decimal | None:
    if not count:
        return None
    return (Decimal(seconds) / count / 86400).quantize(TENTH, ROUND_HALF_UP)


# ------------------------------------------------------------------------------------- results


class Forecast(BaseModel):
    quarter: str
    quarter_kind: str = Field(description="Which kind of quarter `quarter` is: the pipeline counts fiscal quarters.")
    starts_on: date
    ends_on: date
    days_left: int
    currency: str
    target: Decimal
    closed_won: Decimal
    weighted_pipeline: Decimal = Field(description=(
        "Open deals of the forecast pipelines expected to close by the quarter's end (overdue ones included), "
        "amount x stage probability: what `projected` adds to closed won. Not the KPIs' weighted_pipeline_total "
        "(every pipeline, any close date)."))
    projected: Decimal
    attainment: Decimal | None
    projected_attainment: Decimal | None
    gap_to_target: Decimal
    at_risk: bool
    pipelines: list[str]
    unconverted: dict[str, Decimal]


def forecast(*, as_of: date, settings: pc.PipelineSettings, closed_won: Mapping[str, Decimal],
             weighted_open: Mapping[str, Decimal]) -> Forecast:
    quarter = Quarter.fiscal_of(as_of, settings.fiscal_year_start_month)
    starts, after = quarter.range()
    won, won_other = convert(closed_won, settings)
    pipe, pipe_other = convert(weighted_open, settings)
    projected = won + pipe
    target = settings.quarterly_target
    unconverted = dict(won_other)
    for currency, amount in pipe_other.items():
        unconverted[currency] = unconverted.get(currency, ZERO) + amount
    return Forecast(
        quarter=quarter.label, quarter_kind=quarter.kind_label, starts_on=starts,
        ends_on=date.fromordinal(after.toordinal() - 1),
        days_left=(after - as_of).days - 1, currency=settings.reporting_currency, target=target,
        closed_won=won, weighted_pipeline=pipe, projected=projected, attainment=ratio(won, target),
        projected_attainment=ratio(projected, target), gap_to_target=max(ZERO, target - projected),
        at_risk=projected < target, pipelines=list(settings.forecast_pipelines), unconverted=unconverted,
    )
