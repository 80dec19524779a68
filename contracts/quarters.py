"""What a quarter is: the one definition every service, page, API and export uses.

Two kinds exist. A *fiscal* quarter follows the pipeline setting `fiscal_year_start_month` and its
fiscal year is named by the calendar year it ends in (a year starting in April 2026 is FY2027). A
*calendar* quarter is the fiscal quarter of a year that starts in January. Both are written
"2026-Q3"; because the text alone does not say which kind it is, every figure that shows one says the
kind beside it (`Quarter.kind_label`).

Who uses which: the pipeline (board, forecast, dashboard, week review) counts fiscal quarters;
commission statements and tiered-rate periods, goals and funding roll-ups count calendar quarters,
because agreements and hyperscaler programs are written in calendar quarters.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from contracts.fields import year_in_range

_TEXT = re.compile(r"^(?:FY)?\s*(\d{4})\s*-?\s*Q([1-4])$", re.IGNORECASE)


class QuarterKind(StrEnum):
    calendar = "calendar"
    fiscal = "fiscal"


def add_months(day: date, months: int) -> date:
    """The same day `months` later; a day the target month lacks becomes its last day
    (31 January + 1 month = 28 February, or 29 in a leap year)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def month_start(day: date) -> date:
    return day.replace(day=1)


@dataclass(frozen=True, order=True, slots=True)
class Quarter:
    """A quarter: `year` is the (fiscal) year it belongs to, `number` 1 to 4, `start_month` the first
    month of that year (1 for calendar quarters)."""

    year: int
    number: int
    start_month: int = 1
    kind: QuarterKind = QuarterKind.calendar

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 4:
            raise ValueError(f"a quarter is numbered 1 to 4, not {self.number}")
        if not 1 <= self.start_month <= 12:
            raise ValueError(f"a year starts in month 1 to 12, not {self.start_month}")
        if self.kind is QuarterKind.calendar and self.start_month != 1:
            raise ValueError("a calendar quarter's year starts in January")

    # -------------------------------------------------------------------------------- constructors

    @classmethod
    def calendar_of(cls, day: date) -> Quarter:
        return cls._of(day, 1, QuarterKind.calendar)

    @classmethod
    def fiscal_of(cls, day: date, start_month: int) -> Quarter:
        """The fiscal quarter a day falls in; the fiscal year is named by the calendar year it ends in."""
        return cls._of(day, start_month, QuarterKind.fiscal)

    @classmethod
    def _of(cls, day: date, start_month: int, kind: QuarterKind) -> Quarter:
        offset = (day.month - start_month) % 12
        start_year = day.year if day.month >= start_month else day.year - 1
        return cls(start_year + (0 if start_month == 1 else 1), offset // 3 + 1, start_month, kind)

    @classmethod
    def parse(cls, text: str, start_month: int | None = None) -> Quarter:
        """'2026-Q3', '2026Q3', 'FY2026 Q3' → a calendar quarter, or a fiscal one when `start_month` is given."""
        m = _TEXT.match(text.strip())
        if not m:
            raise ValueError(f"{text!r} is not a quarter; write it like 2026-Q3")
        year, number = year_in_range(int(m[1])), int(m[2])
        if start_month is None:
            return cls(year, number)
        return cls(year, number, start_month, QuarterKind.fiscal)

    # ------------------------------------------------------------------------------------- reading

    @property
    def label(self) -> str:
        return f"{self.year}-Q{self.number}"

    def __str__(self) -> str:
        return self.label

    @property
    def kind_label(self) -> str:
        """What a reader needs to know to read the label: 'calendar quarter' or
        'fiscal quarter (year starts in April)'."""
        if self.kind is QuarterKind.calendar:
            return "calendar quarter"
        return f"fiscal quarter (year starts in {calendar.month_name[self.start_month]})"

    @property
    def first_day(self) -> date:
        start_year = self.year - (0 if self.start_month == 1 else 1)
        index = start_year * 12 + self.start_month - 1 + (self.number - 1) * 3
        return date(index // 12, index % 12 + 1, 1)

    def range(self) -> tuple[date, date]:
        """First day of the quarter and the first day after it."""
        first = self.first_day
        return first, add_months(first, 3)

    def months(self) -> tuple[date, date]:
        """The first and the last month of the quarter, as their first days."""
        first = self.first_day
        return first, add_months(first, 2)

    def contains(self, day: date) -> bool:
        first, after = self.range()
        return first <= day < after

    def shift(self, quarters: int) -> Quarter:
        """The quarter `quarters` later (earlier when negative), of the same kind."""
        index = self.year * 4 + self.number - 1 + quarters
        return Quarter(index // 4, index % 4 + 1, self.start_month, self.kind)


def _valid(text: str) -> str:
    return Quarter.parse(text).label


# A quarter as text in a contract ("2026-Q3"); the field's owner says which kind it is.
QuarterName = Annotated[str, Field(max_length=12, examples=["2026-Q3"]), AfterValidator(_valid)]
