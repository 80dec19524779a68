"""Chart geometry and money formatting: plain functions, no browser."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.web import charts
from gateway.web.formatting import money, money_short, percent


class TestNiceCeiling:
    @pytest.mark.parametrize(("value", "expected"), [
        (0, 1), (1, 1), (7, 8), (11, 12), (21, 25), (26, 30), (250_000, 250_000), (250_001, 300_000),
        (515_350, 600_000), (Decimal("0.3"), 0.3), (999, 1000),
    ])
    def test_rounds_up_to_a_round_number(self, value, expected):
        assert charts.nice_ceiling(value) == pytest.approx(expected)

    @given(st.floats(min_value=1e-6, max_value=1e12))
    def test_never_below_the_value_nor_more_than_a_third_above_it(self, value):
        top = charts.nice_ceiling(value)
        assert value <= top * (1 + 1e-9) and top <= value * 4 / 3 * (1 + 1e-9)


class TestTicks:
    @pytest.mark.parametrize(("top", "ticks"), [
        (250_000, [0, 50_000, 100_000, 150_000, 200_000, 250_000]), (300_000, [0, 100_000, 200_000, 300_000]),
        (8, [0, 2, 4, 6, 8]), (1.5, [0, 0.5, 1, 1.5]), (1_000_000, [0, 250_000, 500_000, 750_000, 1_000_000]),
    ])
    def test_every_step_is_round_so_no_label_reads_like_62_5k_or_188k(self, top, ticks):
        assert charts._ticks(top) == pytest.approx(ticks)

    @given(st.floats(min_value=1e-3, max_value=1e12))
    def test_axes_of_any_chart_print_short_labels(self, value):
        for t in charts._ticks(charts.nice_ceiling(value)):
            label = money_short(t, "USD")
            assert len(label.rstrip("KMBT").replace(".", "")) <= 5, label


class TestBars:
    def test_heights_are_proportional_and_share_one_baseline(self):
        chart = charts.bars([("isv", 6), ("hyperscaler", 3), ("msp", 0)])
        isv, hyperscaler, msp = chart.bars
        assert isv.height == pytest.approx(2 * hyperscaler.height, abs=0.2)
        assert msp.height == 0
        assert {round(b.y + b.height, 1) for b in chart.bars} == {round(chart.baseline, 1)}
        assert [t.value for t in chart.ticks] == [0, 2, 4, 6, 8], "whole-number ticks for counts"

    def test_bars_stay_inside_the_drawing(self):
        chart = charts.bars([(str(i), i * 1000) for i in range(12)])
        for b in chart.bars:
            assert b.x >= chart.left and b.x + b.width <= chart.width and b.y >= 0

    def test_no_items_is_an_empty_chart(self):
        assert charts.bars([]).empty


class TestBullet:
    def test_closed_projected_and_target_on_one_scale(self):
        b = charts.bullet(Decimal("100000"), Decimal("200000"), Decimal("250000"))
        assert b.closed_w * 2 == pytest.approx(b.projected_w, abs=0.2)
        assert b.target_x > b.left + b.projected_w, "the projection falls short of the target line"
        assert b.attainment == pytest.approx(0.4) and b.projected_attainment == pytest.approx(0.8)

    def test_beyond_target_still_fits(self):
        b = charts.bullet(400_000, 450_000, 250_000)
        assert b.left + b.projected_w <= b.width


class TestFunnel:
    def test_rows_narrow_with_the_amount_and_weighted_sits_inside(self):
        f = charts.funnel([("Lead", 100, 10, 4), ("Qualified", 50, 12.5, 2), ("Won", 0, 0, 0)])
        lead, qualified, won = f.stages
        assert lead.width == pytest.approx(2 * qualified.width, abs=0.2)
        assert won.width == 0
        for s in (lead, qualified):
            assert s.x <= s.weighted_x and s.weighted_x + s.weighted_width <= s.x + s.width + 0.1


class TestTrend:
    def test_points_run_from_quarter_start_to_end_against_the_pace_line(self):
        t = charts.trend([(date(2026, 10, 1), 0), (date(2026, 11, 1), 50_000), (date(2026, 12, 31), 120_000)],
                         start=date(2026, 10, 1), end=date(2027, 1, 1), target=250_000)
        first, middle, last = t.points
        assert first.x == t.left and first.y == t.baseline
        assert first.x < middle.x < last.x and first.y > middle.y > last.y
        assert t.path.startswith("M") and t.target_path.startswith(f"M{t.left},{t.baseline}")
        assert [label for _, label in t.x_labels] == ["Oct", "Nov", "Dec"]


class TestWeeklyTrendAndPace:
    """The quarter chart: a point per week (not per month) and a pace line that says where the quarter
    should stand today."""

    def test_a_point_per_week_and_today_ending_at_the_quarter_to_date_total(self):
        from contracts import pipeline as pc
        from gateway.web.dashboard import weekly_running

        settings = pc.PipelineSettings(reporting_currency="USD", fx_rates={"EUR": Decimal("1.10")})
        start, today = date(2026, 10, 1), date(2026, 11, 18)  # 48 days in: six whole weeks and today
        won = {date(2026, 10, 3): {"USD": Decimal("1000.00")}, date(2026, 10, 20): {"EUR": Decimal("100.00")},
               date(2026, 11, 18): {"USD": Decimal("5.55")}, date(2026, 11, 19): {"USD": Decimal("999")},
               date(2026, 9, 30): {"USD": Decimal("999")}}
        points = weekly_running(start, today, won, settings)
        assert [d for d, _ in points] == [start, *(date(2026, 10, 7) + k * (date(2026, 10, 14) - date(2026, 10, 7))
                                                    for k in range(6)), today]
        assert len(points) == 8 and points[0][1] == 0
        values = [v for _, v in points]
        assert values == sorted(values) and values[1] == Decimal("1000.00") and values[3] == Decimal("1110.00")
        assert values[-1] == Decimal("1115.55")  # today's deals count; tomorrow's and last quarter's do not

    def test_the_first_day_has_two_points_and_a_quarter_has_fourteen(self):
        from contracts import pipeline as pc
        from gateway.web.dashboard import weekly_running

        settings = pc.PipelineSettings()
        assert len(weekly_running(date(2026, 10, 1), date(2026, 10, 1), {}, settings)) == 2
        assert len(weekly_running(date(2026, 10, 1), date(2026, 12, 31), {}, settings)) == 15  # 0, 13 weeks, today

    def test_the_pace_reads_where_the_quarter_should_stand(self):
        start, end = date(2026, 10, 1), date(2027, 1, 1)  # 92 days
        assert charts.pace_at(start, start=start, end=end, target=92_000) == 0
        assert charts.pace_at(date(2026, 10, 16), start=start, end=end, target=92_000) == 15_000
        assert charts.pace_at(date(2027, 2, 1), start=start, end=end, target=92_000) == 92_000
        t = charts.trend([(start, 0), (date(2026, 10, 7), 1000), (date(2026, 10, 16), 20_000)], start=start, end=end,
                         target=92_000)
        assert t.pace_today == 15_000 and t.behind_by == -5_000  # ahead of pace
        last = t.points[-1]
        assert t.pace_x == last.x and t.pace_y > last.y  # the pace mark sits on the dashed line, under the total
        assert t.target_x == t.right and t.target_y < t.pace_y < t.baseline


class TestMoney:
    @pytest.mark.parametrize(("value", "currency", "text"), [
        (Decimal("250000"), "USD", "$250,000"), (Decimal("1234.5"), "EUR", "€1,235"), (0, "USD", "$0"),
        (Decimal("-12.5"), "GBP", "-£13"), (Decimal("990"), "CHF", "990 CHF"), (None, "USD", "—"),
    ])
    def test_whole_units_with_the_currency(self, value, currency, text):
        assert money(value, currency) == text

    def test_cents_when_asked(self):
        assert money(Decimal("1234.5"), "USD", cents=True) == "$1,234.50"

    @pytest.mark.parametrize(("value", "text"), [(250_000, "$250K"), (1_250_000, "$1.25M"), (999, "$999"),
                                                   (125_000_000, "$125M")])
    def test_short_amounts_for_axes(self, value, text):
        assert money_short(value, "USD") == text

    def test_percent(self):
        assert percent(Decimal("0.4567")) == "46%" and percent(None) == "—"


class TestTimes:
    def test_a_moment_reads_in_the_viewers_time_zone(self):
        from datetime import UTC, datetime

        from gateway.web.formatting import day, when

        late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
        assert day(late) == "24 Nov 2026" and day(late, "Asia/Tokyo") == "25 Nov 2026"
        assert when(late, "America/New_York") == "24 Nov 2026 18:30"
        assert when(late, "Not/AZone") == "24 Nov 2026 23:30", "an unknown zone falls back to UTC"
