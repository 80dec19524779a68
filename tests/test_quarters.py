"""contracts/quarters.py, the one definition of a quarter: fiscal and calendar, parse, label, range."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from contracts.quarters import Quarter, QuarterKind, QuarterName, add_months

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31))
months = st.integers(min_value=1, max_value=12)


class TestFiscalQuarters:
    @pytest.mark.parametrize(("day", "start", "expected"), [
        (date(2026, 1, 1), 1, (2026, 1)), (date(2026, 3, 31), 1, (2026, 1)), (date(2026, 12, 31), 1, (2026, 4)),
        (date(2026, 4, 1), 4, (2027, 1)), (date(2026, 3, 31), 4, (2026, 4)), (date(2026, 11, 24), 4, (2027, 3)),
        (date(2026, 2, 1), 2, (2027, 1)), (date(2026, 1, 31), 2, (2026, 4)), (date(2026, 10, 1), 10, (2027, 1)),
    ])
    def test_a_day_falls_in_the_fiscal_quarter_named_by_the_year_it_ends_in(self, day, start, expected):
        q = Quarter.fiscal_of(day, start)
        assert (q.year, q.number) == expected and q.kind is QuarterKind.fiscal

    @pytest.mark.parametrize(("year", "quarter", "start", "expected"), [
        (2026, 1, 1, (date(2026, 1, 1), date(2026, 4, 1))), (2026, 4, 1, (date(2026, 10, 1), date(2027, 1, 1))),
        (2027, 1, 4, (date(2026, 4, 1), date(2026, 7, 1))), (2026, 4, 2, (date(2025, 11, 1), date(2026, 2, 1))),
        (2027, 4, 11, (date(2027, 8, 1), date(2027, 11, 1))),
    ])
    def test_range_is_the_first_day_and_the_first_day_after(self, year, quarter, start, expected):
        assert Quarter(year, quarter, start, QuarterKind.fiscal).range() == expected

    def test_months_are_the_first_and_the_last_month(self):
        assert Quarter(2027, 1, 4, QuarterKind.fiscal).months() == (date(2026, 4, 1), date(2026, 6, 1))

    @given(days, months)
    def test_a_day_lies_in_its_quarter_and_quarters_follow_each_other(self, day, start):
        q = Quarter.fiscal_of(day, start)
        first, after = q.range()
        assert first <= day < after and first.day == 1 and q.contains(day)
        assert Quarter.fiscal_of(after, start) == q.shift(1)
        assert Quarter.fiscal_of(first - timedelta(days=1), start) == q.shift(-1)
        assert 89 <= (after - first).days <= 92

    @given(days, st.integers(min_value=-40, max_value=40))
    def test_shift_moves_by_whole_quarters_and_back(self, day, n):
        q = Quarter.fiscal_of(day, 4)
        assert q.shift(n).shift(-n) == q
        assert q.shift(n).first_day == add_months(q.first_day, 3 * n)


class TestCalendarQuarters:
    @pytest.mark.parametrize(("day", "label"), [
        (date(2026, 1, 1), "2026-Q1"), (date(2026, 3, 31), "2026-Q1"), (date(2026, 4, 1), "2026-Q2"),
        (date(2026, 9, 30), "2026-Q3"), (date(2026, 12, 31), "2026-Q4"),
    ])
    def test_calendar_quarter_of_a_day(self, day, label):
        q = Quarter.calendar_of(day)
        assert q.label == str(q) == label and q.kind is QuarterKind.calendar

    @given(days)
    def test_a_calendar_quarter_is_a_fiscal_one_of_a_year_starting_in_january(self, day):
        cal, fis = Quarter.calendar_of(day), Quarter.fiscal_of(day, 1)
        assert (cal.year, cal.number, cal.range()) == (fis.year, fis.number, fis.range())

    def test_the_kind_is_said_in_words(self):
        assert Quarter.calendar_of(date(2026, 5, 1)).kind_label == "calendar quarter"
        assert Quarter.fiscal_of(date(2026, 5, 1), 4).kind_label == "fiscal quarter (year starts in April)"

    def test_a_calendar_quarter_cannot_start_its_year_elsewhere(self):
        with pytest.raises(ValueError):
            Quarter(2026, 1, 4, QuarterKind.calendar)

    @pytest.mark.parametrize(("number", "start"), [(0, 1), (5, 1), (1, 0), (1, 13)])
    def test_impossible_quarters_are_refused(self, number, start):
        with pytest.raises(ValueError):
            Quarter(2026, number, start, QuarterKind.fiscal)


class TestParsing:
    @pytest.mark.parametrize(("text", "expected"), [("2026-Q3", (2026, 3)), ("2026Q1", (2026, 1)),
                                                    ("FY2027 Q4", (2027, 4)), ("fy2026-q2", (2026, 2))])
    def test_parse(self, text, expected):
        q = Quarter.parse(text)
        assert (q.year, q.number) == expected and q.kind is QuarterKind.calendar

    def test_parse_with_a_fiscal_start_gives_a_fiscal_quarter(self):
        q = Quarter.parse("2027-Q1", 4)
        assert q.kind is QuarterKind.fiscal and q.range() == (date(2026, 4, 1), date(2026, 7, 1))

    @pytest.mark.parametrize("text", ["2026-Q5", "Q3", "2026", "26-Q1", "2026-Q3; drop", "", "2026-Q3\x00",
                                      "9999-Q1", "0001-Q1"])
    def test_parse_refuses(self, text):
        with pytest.raises(ValueError):
            Quarter.parse(text)

    def test_a_contract_field_normalises_the_spelling(self):
        adapter = TypeAdapter(QuarterName)
        assert adapter.validate_python("fy2026 q3") == "2026-Q3"
        with pytest.raises(ValidationError):
            adapter.validate_python("2026-Q3" * 3)


class TestMonths:
    @pytest.mark.parametrize(("d", "months", "want"), [
        (date(2026, 1, 31), 1, date(2026, 2, 28)), (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 1, 15), 12, date(2027, 1, 15)), (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
    ])
    def test_add_months_keeps_the_day_or_the_months_last(self, d, months, want):
        assert add_months(d, months) == want
