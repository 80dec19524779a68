"""Rules about the pipeline's configuration: settings changes, stage set redefinitions, currency
conversion into the reporting currency."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from contracts import pipeline as c
from runtime.errors import Conflict, Invalid

CENT = Decimal("0.01")


def merge_settings(current: c.PipelineSettings, changes: Mapping[str, Any]) -> c.PipelineSettings:
    """The settings after a partial update, validated as a whole and one version on."""
    data = current.model_dump()
    data.update(changes)
    data["version"] = current.version + 1
    try:
        return c.PipelineSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(first["msg"], field=".".join(str(p) for p in first["loc"]) or None) from exc


def tier_settings_changed(old: c.PipelineSettings, new: c.PipelineSettings) -> bool:
    return (old.tier_thresholds != new.tier_thresholds or old.tier_window_days != new.tier_window_days
            or old.fx_rates != new.fx_rates or old.reporting_currency != new.reporting_currency)


def check_forecast_pipelines(settings: c.PipelineSettings, known: Iterable[str]) -> None:
    unknown = sorted(set(settings.forecast_pipelines) - set(known))
    if unknown:
        raise Invalid(f"unknown pipeline(s): {', '.join(unknown)}", field="forecast_pipelines")


def redefine(current: c.StageSet | None, key: str, name: str, stages: tuple[c.StageDef, ...],
             stages_in_use: Mapping[str, int]) -> c.StageSet:
    """The new stage set, refusing to drop a stage that opportunities are in."""
    try:
        new = c.StageSet(key=key, name=name, stages=stages, builtin=key in c.BUILTIN_STAGE_SETS,
                         version=(current.version + 1) if current else 1)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise Invalid(first["msg"].removeprefix("Value error, "), field=loc or "stages") from exc
    kept = {s.key for s in new.stages}
    dropped = {k: n for k, n in stages_in_use.items() if k not in kept and n > 0}
    if dropped:
        detail = ", ".join(f"{k} ({n})" for k, n in sorted(dropped.items()))
        raise Conflict(f"opportunities are still in stages this definition drops: {detail}", field="stages")
    return new


def to_reporting(amount: Decimal, currency: str, settings: c.PipelineSettings) -> Decimal | None:
    """The amount in the reporting currency, or None when no rate is configured for its currency."""
    if currency == settings.reporting_currency:
        return amount
    rate = settings.fx_rates.get(currency)
    if rate is None:
        return None
    return (amount * rate).quantize(CENT)


def total_in_reporting(by_currency: Mapping[str, Decimal], settings: c.PipelineSettings) -> Decimal:
    """Sum per-currency totals in the reporting currency; currencies without a rate count for nothing."""
    total = Decimal("0.00")
    for currency, amount in by_currency.items():
        converted = to_reporting(amount, currency, settings)
        if converted is not None:
            total += converted
    return total.quantize(CENT)
