"""How figures read on the pages: money with its currency, compact amounts on chart axes, percents."""

from __future__ import annotations

from datetime import date, datetime

from jinja2 import pass_context
from jinja2.runtime import Context

# The formatters live in runtime so the notifications service's emails print figures the same way.
from runtime.formatting import SYMBOLS, day, money, money_short, number_short, percent, when

__all__ = ["SYMBOLS", "day", "money", "money_short", "number_short", "percent", "when"]


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


def quarter_of(d: date) -> tuple[int, int]:
    return d.year, (d.month - 1) // 3 + 1


def quarter_bounds(year: int, q: int) -> tuple[date, date]:
    """The quarter's first day and the first day after it."""
    start = date(year, 3 * (q - 1) + 1, 1)
    end = date(year + (q == 4), (3 * q) % 12 + 1, 1)
    return start, end


def quarter_label(year: int, q: int) -> str:
    return f"Q{q} {year}"


FILTERS = {
    "money": money,
    "money_short": money_short,
    "number_short": number_short,
    "percent": percent,
    "day": day_for_viewer,
    "when": when_for_viewer,
}
