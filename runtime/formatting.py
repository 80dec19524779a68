"""How figures read wherever people see them (pages, emails): money with its currency, compact amounts
on chart axes, percents, days and times in a person's time zone. One formatter, so a figure prints the
same on the dashboard and in the weekly digest."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "A$", "CAD": "C$"}


def _decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value or 0))


def money(value: object, currency: str = "USD", *, cents: bool = False) -> str:
    """$250,000 — whole units unless `cents`; unknown currencies keep their ISO code."""
    if value is None:
        return "—"
    amount = _decimal(value)
    quantum = Decimal("0.01") if cents else Decimal("1")
    amount = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    body = f"{abs(amount):,.2f}" if cents else f"{abs(amount):,.0f}"
    symbol = SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency.upper()}"


def money_short(value: object, currency: str = "USD") -> str:
    """$250K, $1.2M — for chart axes and labels where space is tight."""
    amount = float(_decimal(value))
    symbol = SYMBOLS.get(currency.upper(), "")
    suffix = "" if symbol else f" {currency.upper()}"
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(amount) >= size:
            scaled = amount / size
            digits = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
            text = f"{scaled:.{digits}f}"
            text = text.rstrip("0").rstrip(".") if "." in text else text
            return f"{symbol}{text}{unit}{suffix}"
    return f"{symbol}{amount:,.0f}{suffix}"


def number_short(value: object) -> str:
    amount = float(_decimal(value))
    if abs(amount) >= 1000:
        return money_short(amount, "").replace(" ", "")
    return f"{amount:g}"


def percent(value: object, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{float(_decimal(value)) * 100:.{digits}f}%"


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day(value: date | datetime | None, tz: str = "UTC") -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.astimezone(_zone(tz)).date()
    return value.strftime("%d %b %Y")


def when(value: datetime | None, tz: str = "UTC") -> str:
    if value is None:
        return "—"
    return value.astimezone(_zone(tz)).strftime("%d %b %Y %H:%M")
