"""Opportunity rules: which pipeline and stage, what entering a stage means (won, lost, launched,
reopened; when it closed), and which of two versions of an external record wins. No I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from contracts import pipeline as c
from runtime.errors import Invalid

# Dates outside this range are typos (or hostile) and would make odd quarters.
EARLIEST_DATE = date(1990, 1, 1)
LATEST_DATE = date(2200, 12, 31)
# A source clock may run a little ahead of ours; more than this is refused, since a far-future
# last-modified would make every later real update look older and lose it.
CLOCK_SKEW = timedelta(hours=1)


COLUMNS = ("id", "version", "name", "pipeline", "stage", "outcome", "partner_id", "customer", "amount", "currency",
           "expected_close_date", "owner", "deal_model", "source", "external_id", "source_modified_at", "hyperscaler",
           "ace", "gcp", "created_at", "updated_at", "stage_entered_at", "closed_at", "launched_at", "deleted_at")


@dataclass
class OpportunityState:
    """An opportunity as stored (one row of pipeline.opportunity); changed in memory, written in bulk."""

    id: uuid.UUID
    version: int
    name: str
    pipeline: str
    stage: str
    outcome: str
    partner_id: uuid.UUID | None
    customer: str
    amount: Decimal
    currency: str
    expected_close_date: date | None
    owner: str | None
    deal_model: str
    source: str
    external_id: str | None
    source_modified_at: datetime | None
    hyperscaler: str | None
    ace: dict[str, Any] | None
    gcp: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    stage_entered_at: datetime
    closed_at: datetime | None
    launched_at: datetime | None
    deleted_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}

    def won_part(self) -> tuple[Any, ...] | None:
        """What of the opportunity counts toward its partner's trailing revenue."""
        if self.outcome != c.Outcome.won.value or self.partner_id is None:
            return None
        return (self.partner_id, self.amount, self.currency, self.closed_at)


def default_pipeline(deal_model: c.DealModel) -> str:
    return c.COSELL if deal_model == c.DealModel.cosell else c.RESALE


def hyperscaler_of(source: c.Source | c.ExternalSource) -> c.Hyperscaler | None:
    return {"aws": c.Hyperscaler.aws, "gcp": c.Hyperscaler.gcp, "azure": c.Hyperscaler.azure}.get(source.value)


def stage_set_of(stage_sets: dict[str, c.StageSet], key: str) -> c.StageSet:
    found = stage_sets.get(key)
    if found is None:
        raise Invalid(f"no pipeline {key!r}; pipelines: {', '.join(sorted(stage_sets))}", field="pipeline")
    return found


def resolve_stage(stage_set: c.StageSet, text: str | None) -> c.StageDef:
    """A stage by key or name (case-insensitive); none given: the pipeline's first stage."""
    if text is None:
        return stage_set.stages[0]
    found = stage_set.stage(text)
    if found is None:
        names = ", ".join(s.name for s in stage_set.stages)
        raise Invalid(f"{text!r} is not a stage of pipeline {stage_set.key!r} ({names})", field="stage")
    return found


def check_close_date(day: date | None) -> None:
    if day is not None and not EARLIEST_DATE <= day <= LATEST_DATE:
        raise Invalid(f"expected close date {day} is not between {EARLIEST_DATE} and {LATEST_DATE}",
                      field="expected_close_date")


def check_not_future(modified: datetime, now: datetime) -> None:
    if modified > now + CLOCK_SKEW:
        raise Invalid(f"last_modified {modified.isoformat()} is in the future", field="last_modified")


def check_recorded_time(at: datetime, now: datetime, *, not_before: datetime | None = None) -> None:
    """A change recorded after the fact happened in the past, and after the stage it leaves began."""
    if at > now + CLOCK_SKEW:
        raise Invalid(f"{at.isoformat()} is in the future", field="occurred_at")
    if not_before is not None and at < not_before:
        raise Invalid(f"{at.isoformat()} is before the opportunity entered its stage ({not_before.isoformat()})",
                      field="occurred_at")


def newer(stored: datetime | None, incoming: datetime) -> bool:
    """Newer wins; an equal time is the same version (a duplicate) and changes nothing."""
    return stored is None or incoming > stored


@dataclass(frozen=True)
class StageEntry:
    """What entering `to` from `from_` (None: a new opportunity) at `at` means."""

    outcome: c.Outcome
    closed_at: datetime | None
    launched_at: datetime | None
    won: bool
    lost: bool
    launched: bool
    reopened: bool
    previous_outcome: c.Outcome | None


def enter_stage(from_: c.StageDef | None, to: c.StageDef, at: datetime, *,
                closed_at: datetime | None = None, launched_at: datetime | None = None) -> StageEntry:
    before = from_.outcome if from_ is not None else None
    if to.outcome == c.Outcome.open:
        closed = None
    elif before != to.outcome:
        closed = at
    else:
        closed = closed_at
    if to.launch:
        launched = launched_at if (from_ is not None and from_.launch and launched_at) else at
    else:
        launched = None
    return StageEntry(
        outcome=to.outcome,
        closed_at=closed,
        launched_at=launched,
        won=to.outcome == c.Outcome.won and before != c.Outcome.won,
        lost=to.outcome == c.Outcome.lost and before != c.Outcome.lost,
        launched=to.launch and not (from_ is not None and from_.launch),
        reopened=before is not None and before != c.Outcome.open and to.outcome == c.Outcome.open,
        previous_outcome=before,
    )


def next_steps_changed(before: c.AceState | None, after: c.AceState | None) -> str | None:
    """The new next-steps text when it changed (ACE keeps their history), else None."""
    old = before.next_steps if before else None
    new = after.next_steps if after else None
    return new if new and new != old else None
