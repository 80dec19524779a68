"""How figures read on the pages: money with its currency, compact amounts on chart axes, percents."""

from __future__ import annotations

from datetime import UTC, date, datetime

from jinja2 import pass_context
from jinja2.runtime import Context

from contracts import deadlines
from contracts import pipeline as pc

# The formatters live in runtime so the notifications service's emails print figures the same way.
from runtime.formatting import SYMBOLS, count, day, money, money_short, month, number, number_short, percent, rate, when

__all__ = ["SYMBOLS", "count", "day", "money", "money_short", "month", "number", "number_short", "percent", "rate",
           "when"]


def _viewer_zone(context: Context) -> str:
    principal = context.get("principal")
    return getattr(principal, "time_zone", None) or "UTC"


@pass_context
def day_for_viewer(context: Context, value: date | datetime | None) -> str:
    """A moment as the day it was where the signed-in person lives (stored times are UTC)."""
    return day(value, _viewer_zone(context))


@pass_context
def when_for_viewer(context: Context, value: datetime | None) -> str:
    return when(value, _viewer_zone(context))


def days_left(deadline: object, now: datetime | None = None) -> int:
    """Days until a deadline (contracts/deadlines.py: counted in the deadline's own time zone)."""
    return deadlines.days_left(deadline.due_date, deadline.time_zone,  # type: ignore[attr-defined]
                               now or datetime.now(UTC))


def days_left_text(deadline: object) -> str:
    """'in 7 days', 'due today', '3 days late' — the same words everywhere a deadline shows."""
    n = days_left(deadline)
    if n == 0:
        return "due today"
    if n == 1:
        return "due tomorrow"
    if n > 0:
        return f"in {n} days"
    return "1 day late" if n == -1 else f"{-n} days late"


_BUILTIN_STAGE_NAMES = {(p, s.key): s.name for p, ss in pc.BUILTIN_STAGE_SETS.items() for s in ss.stages}


@pass_context
def stage_name(context: Context, key: str | None, pipeline: str | None = None) -> str:
    """A stage as people name it ("Technical Validation", never "technical_validation"): the page's
    stage sets when it passed them (`stage_names`: {(pipeline, key): name}), else the built-in ones,
    else the key made readable."""
    if not key:
        return "—"
    names: dict[tuple[str, str], str] = {**_BUILTIN_STAGE_NAMES, **(context.get("stage_names") or {})}
    if pipeline is not None and (pipeline, key) in names:
        return names[(pipeline, key)]
    for (_, stage), name in names.items():
        if stage == key:
            return name
    if key != key.lower() or " " in key:
        return key  # a name already (a page that had it from the service)
    return key.replace("_", " ").capitalize()


FILTERS = {
    "money": money,
    "money_short": money_short,
    "number_short": number_short,
    "percent": percent,
    "rate": rate,
    "number": number,
    "month": month,
    # `count` is Jinja's own (a length): "n|plural('row')" reads "1 row", "2 rows".
    "plural": count,
    "day": day_for_viewer,
    "when": when_for_viewer,
    "days_left": days_left,
    "days_left_text": days_left_text,
    "stage_name": stage_name,
}
