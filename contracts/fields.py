"""Field types every contract and every HTTP input shares, so a rule about values lives in one place:
text without control characters, dates and times within sane bounds (and never a bare number),
ISO 4217 currencies, and integers that fit the columns they end up in.

Why each exists: Postgres refuses a NUL in text and a lone UTF-16 surrogate cannot be encoded, so
either would fail deep in a transaction instead of as a field error; pydantic reads `0` as a date
(1970-01-01), so `churned_at: 0` was stored as a churn in 1970; year 0 and years past 9999 cannot be
represented at all, and a year like 5000 is a typo, never a fact of this business.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

# ---------------------------------------------------------------------------------------------- text

_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# Free text may span lines and hold tabs; nothing else below 0x20.
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _describe(char: str) -> str:
    return "a NUL character" if char == "\x00" else f"the control character U+{ord(char):04X}"


def single_line(value: str) -> str:
    found = _CONTROL.search(value)
    if found:
        raise ValueError(f"must not contain {_describe(found[0])} (nor line breaks or tabs)")
    return value


def multi_line(value: str) -> str:
    found = _CONTROL_IN_TEXT.search(value)
    if found:
        raise ValueError(f"must not contain {_describe(found[0])}")
    return value


_LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def line(max_length: int, min_length: int = 0, **field: Any) -> Any:
    """A one-line value (a name, a key, a reference, a filter) of at most max_length characters.
    The length is checked as a string's, then the characters; the pattern tells API clients (and
    generated tests) what is allowed."""
    return Annotated[str, Field(min_length=min_length or None, max_length=max_length,
                                json_schema_extra={"pattern": _LINE_PATTERN}, **field), AfterValidator(single_line)]


def text(max_length: int, min_length: int = 0, **field: Any) -> Any:
    """Free text (comments, reasons, CSV cells): line breaks and tabs allowed, other control characters not."""
    return Annotated[str, Field(min_length=min_length or None, max_length=max_length,
                                json_schema_extra={"pattern": _TEXT_PATTERN}, **field), AfterValidator(multi_line)]


Name = line(200, 1)
Person = line(200, 1, description="A team member: their user id (the gateway also takes their email).")

# ------------------------------------------------------------------------------------- dates, times

# The one bound on every date and time the platform accepts (deals, invoices, agreements, periods).
EARLIEST = date(1900, 1, 1)
LATEST = date(2200, 12, 31)

_NUMBER = re.compile(r"\s*[-+]?\d+(\.\d*)?([eE][-+]?\d+)?\s*")


def _not_a_number(value: Any) -> Any:
    """A date or time is written as ISO 8601 text; a number (a Unix timestamp?) is refused, not guessed."""
    # Most values start with a four-digit year and a dash, which no number does: no regex for them
    # (it runs for every date and time of every event read).
    if type(value) is str and value[4:5] == "-" and value[:4].isdigit():
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        raise ValueError("write a date or time as ISO 8601 text (2026-11-30 or 2026-11-30T12:00:00Z), not a number")
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        raise ValueError("write a date or time as ISO 8601 text (2026-11-30 or 2026-11-30T12:00:00Z), not a number")
    return value


def in_range(day: date) -> date:
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return day


# The same range as instants: comparing aware datetimes costs less than converting each to UTC.
_EARLIEST_AT = datetime.combine(EARLIEST, time(), UTC)
_AFTER_LATEST_AT = datetime.combine(LATEST + timedelta(days=1), time(), UTC)


def _moment_in_range(at: datetime) -> datetime:
    if not _EARLIEST_AT <= at < _AFTER_LATEST_AT:
        in_range(at.astimezone(UTC).date())
    return at


Day = Annotated[date, BeforeValidator(_not_a_number), AfterValidator(in_range)]
Moment = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_moment_in_range)]


def year_in_range(year: int) -> int:
    if not EARLIEST.year <= year <= LATEST.year:
        raise ValueError(f"the year must be between {EARLIEST.year} and {LATEST.year}")
    return year


def _period_in_range(name: str) -> str:
    year_in_range(int(name[:4]))
    return name


PeriodName = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2]|Q[1-4])$",
                                  description="a month (2026-11) or a calendar quarter (2026-Q4)"),
                       AfterValidator(_period_in_range)]

# ----------------------------------------------------------------------------------------- currency

# Active ISO 4217 codes: a typo ("UDS") or an invented code ("XYZ") is an error, not a new currency.
CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF
CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD
HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD
MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN
PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY
TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL
""".split())


def _currency(value: str) -> str:
    value = value.strip().upper()
    if value not in CURRENCIES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. USD, EUR)")
    return value


Currency = Annotated[str, Field(min_length=3, max_length=3, examples=["USD"], description="ISO 4217 code, e.g. USD"),
                     AfterValidator(_currency)]

# ----------------------------------------------------------------------------------------- integers

INT_MAX = 2**31 - 1  # Postgres integer
BIGINT_MAX = 2**63 - 1  # Postgres bigint
MAX_OFFSET = 10_000_000  # deeper than any list is paged; past bigint it failed in the database

Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET)]
# A row id of a bigint identity column (ledger entries, audit records).
RowId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
# A version number (stored as integer).
Version = Annotated[int, Field(ge=0, le=INT_MAX)]
