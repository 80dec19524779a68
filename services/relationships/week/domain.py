"""The rules of the team's week, without I/O: which week an instant falls in, where a week starts and
ends in the team's time zone, when updates are due, how many week ends a task crossed, and why a deal
belongs on a member's update."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from contracts import pipeline as p
from contracts.quarters import Quarter
from runtime.errors import Invalid


def zone(name: str, *, field: str = "time_zone") -> ZoneInfo:
    """An IANA zone; anything else (a path, an offset, a typo) is refused, never guessed."""
    if name not in _zones():
        raise Invalid(f"{name!r} is not an IANA time zone (e.g. America/New_York)", field=field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid(f"{name!r} is not an IANA time zone", field=field) from exc


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones() | {"UTC"})
    return _ZONES


def week_of(at: datetime, tz: ZoneInfo) -> date:
    """The Monday of the week `at` falls in, on the team's local calendar."""
    local = at.astimezone(tz).date()
    return local - timedelta(days=local.weekday())


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # Midnight exists on every day in the zones we know of when DST changes at 02:00 or later; where a
    # zone skips midnight itself, zoneinfo's fold rules still give the first instant of the day.
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def week_bounds(week: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Monday 00:00 to next Monday 00:00, local time, as UTC instants (167 to 169 hours across DST)."""
    return local_midnight(week, tz), local_midnight(week + timedelta(days=7), tz)


def updates_due_at(week: date, tz: ZoneInfo, weekday: int, hour: int) -> datetime:
    """When the week's updates are due: the weekday and hour of that week, local time."""
    return datetime.combine(week + timedelta(days=weekday), time(hour), tz).astimezone(UTC)


def is_monday(day: date) -> bool:
    return day.weekday() == 0


def weeks_between(earlier: date, later: date) -> int:
    """How many week ends lie between two weeks' Mondays."""
    return max(0, (later - earlier).days // 7)


@dataclass(frozen=True)
class DealFacts:
    owner: str | None
    outcome: str
    stage_entered_at: datetime
    created_at: datetime
    expected_close_date: date | None
    ace_review_status: str | None
    ace_action_due_date: date | None


@dataclass(frozen=True)
class Window:
    """What "this week" means for an update: from the previous week's start (the last meeting's
    week, so Monday morning's update still sees Friday's moves) to the end of this week."""

    week: date
    since: datetime
    until: datetime
    today: date
    quarter: tuple[date, date]
    stuck_after_days: int


def window(week: date, tz: ZoneInfo, now: datetime, fiscal_start_month: int, stuck_after_days: int) -> Window:
    _, ends = week_bounds(week, tz)
    since, _ = week_bounds(week - timedelta(days=7), tz)
    today = now.astimezone(tz).date()
    # The quarter of the meeting's week, not of the moment the form is opened.
    quarter = Quarter.fiscal_of(max(week, min(today, week + timedelta(days=6))), fiscal_start_month)
    return Window(week=week, since=since, until=ends, today=today, quarter=quarter.range(),
                  stuck_after_days=stuck_after_days)


def deal_reasons(deal: DealFacts, w: Window) -> list[str]:
    """Why a deal belongs on its owner's update this week; empty when it does not."""
    reasons: list[str] = []
    if w.since <= deal.stage_entered_at < w.until and deal.created_at < deal.stage_entered_at:
        reasons.append("moved")
    if w.since <= deal.created_at < w.until:
        reasons.append("created")
    if deal.outcome != p.Outcome.open.value:
        return reasons if deal.stage_entered_at >= w.since else []
    start, after = w.quarter
    if deal.expected_close_date is not None and start <= deal.expected_close_date < after:
        reasons.append("closing_this_quarter")
    if deal.expected_close_date is not None and deal.expected_close_date < w.today:
        reasons.append("past_close_date")
    if (w.until - deal.stage_entered_at).days >= w.stuck_after_days and "moved" not in reasons:
        reasons.append("stuck")
    if deal.ace_review_status == p.AceReviewStatus.action_required.value:
        reasons.append("action_required")
    return reasons


REASON_LABELS = {
    "moved": "moved stage", "created": "new", "closing_this_quarter": "closing this quarter",
    "past_close_date": "past its close date", "stuck": "stuck", "action_required": "ACE Action Required",
    "task_due": "task due", "task_overdue": "task overdue",
}
