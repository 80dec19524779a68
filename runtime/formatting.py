"""How figures read wherever people see them (pages, emails, exports): money with its currency, compact
amounts on chart axes, percents, rates, counts with their noun, days and times in a person's time zone.
One formatter, so a figure prints the same on the dashboard, in the weekly digest and in a CSV.

Every function takes what the platform holds (Decimal, int, float, None) and never prints an exponent
("1E+1"), a negative zero ("-$0.00") or "nan": a Decimal from Postgres or JSON may arrive as
Decimal("1E+1") or Decimal("-0.00"), and a value with no figure prints as "—"."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "A$", "CAD": "C$"}
MISSING = "—"
# A hyphen-minus, not U+2212: a figure copied from a page into a spreadsheet stays a number.
MINUS = "-"


def _decimal(value: object) -> Decimal | None:
    """The value as a finite Decimal; None for no value, NaN, infinities or text that is not a number."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        result = Decimal(int(value))
    else:
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            return None
    return result if result.is_finite() else None


def _round(amount: Decimal, places: int) -> Decimal:
    """Half up to `places` decimals, however large the amount (the default context's 28 digits would
    refuse to quantize 1E+30), and never a negative zero."""
    quantum = Decimal(1).scaleb(-places)
    with localcontext() as ctx:
        ctx.prec = max(28, amount.adjusted() + places + 2)
        rounded = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    return rounded.copy_abs() if rounded.is_zero() else rounded


def _grouped(amount: Decimal, places: int) -> str:
    """1234567.5 -> '1,234,567.50' (always fixed-point: no exponent)."""
    return f"{_round(amount, places).copy_abs():,.{places}f}"


def number(value: object, places: int = 0) -> str:
    """A plain quantity with thousands separators: 1,234 (or 1,234.5 with `places`, trailing zeros kept)."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    rounded = _round(amount, places)
    return f"{MINUS if rounded < 0 else ''}{_grouped(rounded, places)}"


def money(value: object, currency: str = "USD", *, cents: bool = False) -> str:
    """$250,000 — whole units unless `cents`; unknown currencies keep their ISO code."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    rounded = _round(amount, 2 if cents else 0)
    sign = MINUS if rounded < 0 else ""
    body = _grouped(rounded, 2 if cents else 0)
    symbol = SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency.upper()}".rstrip()


def _compact(amount: Decimal) -> str:
    """1250000 -> '1.25M': three significant digits at most, trailing zeros dropped."""
    for size, unit in ((Decimal("1e12"), "T"), (Decimal("1e9"), "B"), (Decimal("1e6"), "M"), (Decimal("1e3"), "K")):
        if abs(amount) >= size:
            scaled = amount / size
            digits = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
            text = f"{_round(scaled, digits):,f}"
            text = text.rstrip("0").rstrip(".") if "." in text else text
            return f"{text}{unit}"
    return f"{_round(amount, 0):,f}"


def money_short(value: object, currency: str = "USD") -> str:
    """$250K, $1.2M — for chart axes and labels where space is tight."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    text = _compact(abs(amount))
    sign = MINUS if _round(amount, 0) < 0 and text != "0" else ""
    symbol = SYMBOLS.get(currency.upper(), "")
    suffix = "" if symbol or not currency else f" {currency.upper()}"
    return f"{sign}{symbol}{text}{suffix}"


def number_short(value: object) -> str:
    """1.2K, 35 — counts on chart axes."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    if abs(amount) >= 1000:
        return money_short(amount, "")
    text = f"{_round(amount, 2):f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


def percent(value: object, digits: int = 0) -> str:
    """A share given as a fraction (0.4567 -> '46%')."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    return f"{number(amount * 100, digits)}%"


def rate(value: object) -> str:
    """A rate already in percent (a commission rate of 10 -> '10%', 12.50 -> '12.5%'): as many
    decimals as it has, none of them trailing zeros, never an exponent (Decimal('1E+1') is 10)."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    places = max(0, -amount.normalize().as_tuple().exponent) if not amount.is_zero() else 0  # type: ignore[operator]
    return f"{number(amount, min(places, 6))}%"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 row', '2 rows', '1,204 deals' — the noun agrees with the number."""
    return f"{number(n)} {noun if n == 1 else (plural or noun + 's')}"


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day(value: date | datetime | None, tz: str = "UTC") -> str:
    """'30 Nov 2026' — the one way a day prints, on pages and in emails."""
    if value is None:
        return MISSING
    if isinstance(value, datetime):
        value = value.astimezone(_zone(tz)).date()
    return f"{value.day:02d} {value.strftime('%b %Y')}"


def month(value: date | datetime | None) -> str:
    """'Nov 2026' — a ledger period."""
    if value is None:
        return MISSING
    return value.strftime("%b %Y")


def when(value: datetime | None, tz: str = "UTC") -> str:
    if value is None:
        return MISSING
    return value.astimezone(_zone(tz)).strftime("%d %b %Y %H:%M")
