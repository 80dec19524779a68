"""Pure rules of notification: who an alert goes to, quiet hours, when a weekly digest is due in a
person's time zone, and the retry backoff of an email. No I/O: these test as plain functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Audience(StrEnum):
    """Who receives an alert. The owner is the deal's (or contact's, task's...) owner, a user id."""

    owner = "owner"
    owner_and_admins = "owner_and_admins"
    leads = "leads"  # admins and managers, and the owner
    admins = "admins"


@dataclass(frozen=True)
class Fired:
    """A rule's verdict for one subject: what to say, where to look, and whom it concerns."""

    key: str  # the subject of the alert within its rule (a deal id and stage, a due date...)
    title: str
    why: str
    link: str
    owner: str | None = None


@dataclass(frozen=True)
class Recipient:
    user_id: str
    email: str
    name: str
    role: str
    time_zone: str


def recipients(audience: Audience, owner: str | None, people: list[Recipient]) -> list[Recipient]:
    """The active people an alert goes to, each once, in a stable order."""
    chosen: dict[str, Recipient] = {}
    for person in people:
        admin = audience is not Audience.owner and person.role == "admin"
        manager = audience is Audience.leads and person.role == "manager"
        owns = audience is not Audience.admins and owner is not None and person.user_id == owner
        if admin or manager or owns:
            chosen[person.user_id] = person
    return sorted(chosen.values(), key=lambda p: p.user_id)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_until(now: datetime, tz: str, quiet_from: int | None, quiet_until: int | None) -> datetime | None:
    """When an email decided at `now` may go, if `now` falls in the person's quiet hours (local time,
    possibly across midnight: 22 to 7); None when it may go now."""
    if quiet_from is None or quiet_until is None or quiet_from == quiet_until:
        return None
    local = now.astimezone(zone(tz))
    hour = local.hour
    inside = quiet_from <= hour < quiet_until if quiet_from < quiet_until else hour >= quiet_from or hour < quiet_until
    if not inside:
        return None
    end_day = local.date() if hour < quiet_until else local.date() + timedelta(days=1)
    # Built from the local wall clock, so a DST change in between is accounted for by the zone.
    return datetime.combine(end_day, time(quiet_until), tzinfo=zone(tz))


DIGEST_WEEKDAY = 0  # Monday
DIGEST_HOUR = 8
# A digest missed at 08:00 (the bus or the service was down) still goes out within this long.
DIGEST_GRACE = timedelta(hours=24)


def digest_week(now: datetime, tz: str) -> str | None:
    """The ISO week ('2026-W49') whose digest is due at `now` for someone in `tz`: from Monday 08:00
    local time until a day later; None outside that window. The hourly tick asks this for each person,
    so 08:00 is local time on both sides of a DST change."""
    local = now.astimezone(zone(tz))
    monday = local.date() - timedelta(days=local.weekday())
    for start_day in (monday, monday - timedelta(days=7)):
        start = datetime.combine(start_day, time(DIGEST_HOUR), tzinfo=zone(tz))
        if start <= local < start + DIGEST_GRACE:
            year, week, _ = start_day.isocalendar()
            return f"{year}-W{week:02d}"
    return None


def backoff(attempts: int, steps: tuple[float, ...]) -> timedelta:
    """How long to wait after the `attempts`-th failed try of an email."""
    return timedelta(seconds=steps[min(max(attempts, 1), len(steps)) - 1])


def in_reporting_currency(amount: Decimal, currency: str, settings: dict[str, Any]) -> Decimal | None:
    """An amount in the pipeline's reporting currency with the pipeline's own rates; None when there is
    no rate (such an amount counts toward nothing, as on the dashboard)."""
    reporting = settings.get("reporting_currency", "USD")
    if currency == reporting:
        return amount
    rate = (settings.get("fx_rates") or {}).get(currency)
    return None if rate is None else (amount * Decimal(str(rate))).quantize(Decimal("0.01"))


def days_between(earlier: datetime, later: datetime) -> int:
    return (later - earlier).days


def local_day(at: datetime, tz: str) -> date:
    return at.astimezone(zone(tz)).date()
