"""What a pipeline figure covers, said the same way on the dashboard and the team page: each pipeline
apart and all of them together, from one KPI result, so the rows add up to the total on every page."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from contracts import pipeline as pc
from gateway.read_models import pipeline as pipeline_models

# Short names for the built-in pipelines (a co-sell deal may be AWS, GCP or Azure: not "ACE lifecycle").
LABELS = {pc.RESALE: "Resale", pc.COSELL: "Co-sell"}


def pipeline_label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " ").capitalize())


@dataclass
class PipelineRow:
    key: str  # "" for the row of all pipelines
    label: str
    closed_won: Decimal
    won: int
    lost: int
    open_amount: Decimal
    weighted_open: Decimal
    cycle_days: Decimal | None

    @property
    def win_rate(self) -> Decimal | None:
        return Decimal(self.won) / (self.won + self.lost) if self.won + self.lost else None


def _combined(rows: list[PipelineRow], key: str, label: str) -> PipelineRow:
    won = sum(r.won for r in rows)
    cycle = sum(((r.cycle_days or Decimal(0)) * r.won for r in rows), Decimal(0))
    return PipelineRow(key=key, label=label, closed_won=sum((r.closed_won for r in rows), Decimal(0)), won=won,
                       lost=sum(r.lost for r in rows), open_amount=sum((r.open_amount for r in rows), Decimal(0)),
                       weighted_open=sum((r.weighted_open for r in rows), Decimal(0)),
                       cycle_days=(cycle / won).quantize(Decimal("0.1")) if won else None)


def by_pipeline(k: pipeline_models.PipelineKpis, keys: list[str]) -> tuple[list[PipelineRow], PipelineRow]:
    """One row per pipeline (every key in `keys`, then any other that has figures) and the row of all
    of them; amounts in the reporting currency, closed in the fiscal quarter of the KPIs."""
    outcomes = {o.pipeline: o for o in k.outcomes_by_pipeline}
    found = {o.pipeline for o in k.outcomes_by_pipeline} | {s.pipeline for s in k.pipeline_by_stage}
    order = [*dict.fromkeys(keys), *sorted(found - set(keys))]
    rows = []
    for key in order:
        o = outcomes.get(key)
        stages = [s for s in k.pipeline_by_stage if s.pipeline == key]
        rows.append(PipelineRow(key=key, label=pipeline_label(key), closed_won=o.won_amount if o else Decimal(0),
                                won=o.won if o else 0, lost=o.lost if o else 0,
                                open_amount=sum((s.amount for s in stages), Decimal(0)),
                                weighted_open=sum((s.weighted for s in stages), Decimal(0)),
                                cycle_days=o.average_cycle_days if o else None))
    return rows, _combined(rows, "", "All pipelines")


def forecast_scope(rows: list[PipelineRow], forecast_pipelines: list[str]) -> PipelineRow:
    """The pipelines the target is about, as one row: the scope of closed won, projection and signal."""
    chosen = [r for r in rows if r.key in forecast_pipelines]
    return _combined(chosen, ",".join(forecast_pipelines), " + ".join(pipeline_label(p) for p in forecast_pipelines))
