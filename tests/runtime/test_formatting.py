"""The one formatter (runtime/formatting.py) over the Decimals the platform really holds: exponents
from JSON and Postgres ("1E+1"), negative zeros from subtractions ("-0.00"), values far beyond the
default 28-digit context, NaN and infinities, and counts with their noun."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime import formatting as fmt


class TestMoney:
    @pytest.mark.parametrize(("value", "currency", "cents", "text"), [
        (Decimal("250000"), "USD", False, "$250,000"),
        (Decimal("2.5E+5"), "USD", False, "$250,000"),
        (Decimal("1E+1"), "EUR", True, "€10.00"),
        (Decimal("-0.00"), "USD", True, "$0.00"),
        (Decimal("-0.004"), "USD", True, "$0.00"),
        (Decimal("-0.4"), "USD", False, "$0"),
        (Decimal("-12.5"), "GBP", False, "-£13"),
        (Decimal("-1234.565"), "USD", True, "-$1,234.57"),
        (Decimal("990"), "CHF", False, "990 CHF"),
        (Decimal("1E+30"), "USD", False, "$1,000,000,000,000,000,000,000,000,000,000"),
        (Decimal("123456789012345678901234567890.125"), "USD", True, "$123,456,789,012,345,678,901,234,567,890.13"),
        (Decimal("NaN"), "USD", False, "—"), (Decimal("Infinity"), "USD", False, "—"), (None, "USD", False, "—"),
        (float("-0.0"), "USD", True, "$0.00"), (7, "JPY", False, "¥7"),
    ])
    def test_prints_whole_units_or_cents_with_the_currency(self, value, currency, cents, text):
        assert fmt.money(value, currency, cents=cents) == text

    @given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**40, max_value=10**40))
    def test_never_an_exponent_nor_a_negative_zero(self, value):
        text = fmt.money(value, "USD", cents=True)
        assert "E" not in text and "e" not in text
        assert text != "-$0.00"
        assert text.lstrip("-$").replace(",", "").replace(".", "").isdigit()


class TestShortAmounts:
    @pytest.mark.parametrize(("value", "text"), [
        (250_000, "$250K"), (1_250_000, "$1.25M"), (999, "$999"), (125_000_000, "$125M"), (62_500, "$62.5K"),
        (Decimal("1E+6"), "$1M"), (Decimal("-0.2"), "$0"), (-250_000, "-$250K"), (Decimal("5E+15"), "$5,000T"),
        (0, "$0"), (None, "—"),
    ])
    def test_compact_for_axes(self, value, text):
        assert fmt.money_short(value, "USD") == text

    def test_counts_on_axes(self):
        assert [fmt.number_short(v) for v in (0, 7, Decimal("2.50"), 1500, Decimal("-0"))] == ["0", "7", "2.5",
                                                                                                "1.5K", "0"]


class TestPercentAndRate:
    @pytest.mark.parametrize(("value", "text"), [
        (Decimal("0.4567"), "46%"), (Decimal("1E-1"), "10%"), (Decimal("-0.001"), "0%"), (1, "100%"),
        (Decimal("12345.6"), "1,234,560%"), (None, "—"), (Decimal("NaN"), "—"),
    ])
    def test_a_fraction_as_a_percent(self, value, text):
        assert fmt.percent(value) == text

    @pytest.mark.parametrize(("value", "text"), [
        (Decimal("1E+1"), "10%"), (Decimal("10.00"), "10%"), (Decimal("12.50"), "12.5%"), (Decimal("0.125"), "0.125%"),
        (Decimal("-0"), "0%"), (Decimal("0E-8"), "0%"), (Decimal("1E+3"), "1,000%"), (None, "—"),
    ])
    def test_a_rate_in_percent_keeps_its_decimals_and_no_exponent(self, value, text):
        assert fmt.rate(value) == text


class TestCounts:
    @pytest.mark.parametrize(("n", "noun", "plural", "text"), [
        (1, "row", None, "1 row"), (0, "row", None, "0 rows"), (2, "row", None, "2 rows"),
        (1204, "deal", None, "1,204 deals"), (1, "entry", "entries", "1 entry"), (3, "entry", "entries", "3 entries"),
    ])
    def test_the_noun_agrees_with_the_number(self, n, noun, plural, text):
        assert fmt.count(n, noun, plural) == text


class TestDays:
    def test_one_day_format_everywhere(self):
        assert fmt.day(date(2026, 11, 30)) == "30 Nov 2026" and fmt.day(date(2026, 12, 1)) == "01 Dec 2026"
        assert fmt.month(date(2026, 11, 1)) == "Nov 2026" and fmt.day(None) == "—"
