"""Pure rules of the pipeline, no servers (quarters: tests/test_quarters.py): scorecard, tiers, stage entries,
newer-wins, CSV cells, and the KPI arithmetic (contributions, conversion, forecast)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import pipeline as c
from gateway.read_models import forecast as fc
from runtime.errors import Conflict, Invalid
from services.pipeline.config import domain as config
from services.pipeline.imports import domain as imports
from services.pipeline.opportunities import domain as opp
from services.pipeline.partners import domain as partners

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31))
months = st.integers(min_value=1, max_value=12)
money = st.decimals(min_value=0, max_value=Decimal("99999999999999.99"), places=2, allow_nan=False,
                    allow_infinity=False)
criterion = st.decimals(min_value=0, max_value=10, places=2)


class TestScorecard:
    @pytest.mark.parametrize(("card", "weights", "expected"), [
        ((8, 6, 7, 5), (30, 25, 25, 20), "6.65"), ((10, 10, 10, 10), (30, 25, 25, 20), "10.00"),
        ((0, 0, 0, 0), (30, 25, 25, 20), "0.00"), ((8, 6, 7, 5), (40, 20, 20, 20), "6.80"),
        (("7.33", "6.67", "5.5", "9.25"), (30, 25, 25, 20), "7.09"),  # 709.15 / 100 = 7.0915
        (("0.01", 0, 0, 0), (30, 25, 25, 20), "0.00"), (("0.05", 0, 0, 0), (30, 25, 25, 20), "0.02"),  # 0.015: half up
    ])
    def test_weighted_score(self, card, weights, expected):
        scorecard = c.Scorecard(strategic_fit=card[0], revenue_potential=card[1], feasibility=card[2], risk=card[3])
        w = c.ScorecardWeights(strategic_fit=weights[0], revenue_potential=weights[1], feasibility=weights[2],
                               risk=weights[3])
        assert partners.weighted_score(scorecard, w) == Decimal(expected)

    @given(criterion, criterion, criterion, criterion, criterion)
    def test_score_stays_on_scale_and_grows_with_any_criterion(self, a, b, f, r, bump):
        weights = c.ScorecardWeights()
        low = partners.weighted_score(c.Scorecard(strategic_fit=a, revenue_potential=b, feasibility=f, risk=r), weights)
        high = partners.weighted_score(c.Scorecard(strategic_fit=max(a, bump), revenue_potential=b, feasibility=f,
                                                   risk=r), weights)
        assert Decimal(0) <= low <= high <= Decimal(10)


class TestTiers:
    thresholds = c.TierThresholds(silver="50000", gold="150000", platinum="400000")

    @pytest.mark.parametrize(("revenue", "tier"), [
        ("0", "bronze"), ("49999.99", "bronze"), ("50000.00", "silver"), ("149999.99", "silver"),
        ("150000", "gold"), ("399999.99", "gold"), ("400000", "platinum"), ("99999999", "platinum"),
    ])
    def test_tier_for(self, revenue, tier):
        assert partners.tier_for(Decimal(revenue), self.thresholds) == tier

    @given(money, money)
    def test_more_revenue_never_means_a_lower_tier(self, a, b):
        low, high = sorted((a, b))
        order = c.TIER_ORDER.index
        assert order(partners.tier_for(low, self.thresholds)) <= order(partners.tier_for(high, self.thresholds))

    def test_conversion_to_the_reporting_currency(self):
        s = c.PipelineSettings(fx_rates={"EUR": "1.0825", "JPY": "0.0067"})
        assert config.to_reporting(Decimal("100.00"), "EUR", s) == Decimal("108.25")
        assert config.to_reporting(Decimal("100.00"), "GBP", s) is None
        total = config.total_in_reporting({"USD": Decimal("1.00"), "EUR": Decimal("0.01"), "GBP": Decimal("9")}, s)
        assert total == Decimal("1.01")


class TestStageEntry:
    resale = c.RESALE_STAGE_SET
    ace = c.ACE_STAGE_SET
    at = datetime(2026, 5, 1, tzinfo=UTC)
    earlier = datetime(2026, 4, 1, tzinfo=UTC)

    def s(self, stage_set, key):
        return stage_set.stage(key)

    @pytest.mark.parametrize(("pipeline", "from_", "to", "flags", "closed", "launched"), [
        ("resale", None, "lead", set(), None, None),
        ("resale", None, "won", {"won"}, "at", None),
        ("resale", "lead", "won", {"won"}, "at", None),
        ("resale", "won", "lost", {"lost"}, "at", None),
        ("resale", "won", "negotiation", {"reopened"}, None, None),
        ("resale", "lost", "lost", set(), "earlier", None),
        ("cosell", "committed", "launched", {"won", "launched"}, "at", "at"),
        ("cosell", "launched", "launched", set(), "earlier", "earlier"),
        ("cosell", "launched", "closed_lost", {"lost"}, "at", None),
        ("cosell", "closed_lost", "prospect", {"reopened"}, None, None),
    ])
    def test_what_entering_a_stage_means(self, pipeline, from_, to, flags, closed, launched):
        stage_set = self.resale if pipeline == "resale" else self.ace
        entry = opp.enter_stage(self.s(stage_set, from_) if from_ else None, self.s(stage_set, to), self.at,
                                closed_at=self.earlier, launched_at=self.earlier)
        assert {f for f in ("won", "lost", "launched", "reopened") if getattr(entry, f)} == flags
        when = {"at": self.at, "earlier": self.earlier, None: None}
        assert entry.closed_at == when[closed] and entry.launched_at == when[launched]

    @pytest.mark.parametrize(("text", "key"), [
        ("Technical Validation", "technical_validation"), ("technical_validation", "technical_validation"),
        ("LAUNCHED", "launched"), (None, "prospect"),
    ])
    def test_stages_by_key_or_name(self, text, key):
        assert opp.resolve_stage(self.ace, text).key == key

    def test_unknown_stage_is_invalid_and_names_the_stages(self):
        with pytest.raises(Invalid) as info:
            opp.resolve_stage(self.ace, "Won")
        assert info.value.field == "stage" and "Technical Validation" in info.value.message

    @pytest.mark.parametrize(("stored", "incoming", "newer"), [
        (None, at, True), (earlier, at, True), (at, at, False), (at, earlier, False),
    ])
    def test_newer_wins_and_equal_is_a_duplicate(self, stored, incoming, newer):
        assert opp.newer(stored, incoming) is newer

    def test_a_far_future_last_modified_is_refused(self):
        now = datetime.now(UTC)
        opp.check_not_future(now + timedelta(minutes=30), now)
        with pytest.raises(Invalid):
            opp.check_not_future(now + timedelta(hours=2), now)


class TestStageSets:
    def test_a_stage_in_use_cannot_be_dropped(self):
        stages = tuple(s for s in c.RESALE_STAGE_SET.stages if s.key != "proposal")
        with pytest.raises(Conflict):
            config.redefine(c.RESALE_STAGE_SET, "resale", "ISV resale", stages, {"proposal": 3, "lead": 1})
        new = config.redefine(c.RESALE_STAGE_SET, "resale", "ISV resale", stages, {"proposal": 0})
        assert new.version == 2 and new.builtin

    @pytest.mark.parametrize("stages", [
        ({"key": "a", "name": "A", "probability": 10}, {"key": "a", "name": "B", "probability": 100, "outcome": "won"},
         {"key": "c", "name": "C", "probability": 0, "outcome": "lost"}),
        ({"key": "a", "name": "A", "probability": 10}, {"key": "b", "name": "B", "probability": 0, "outcome": "lost"}),
        ({"key": "a", "name": "A", "probability": 10}, {"key": "b", "name": "B", "probability": 90, "outcome": "won"},
         {"key": "c", "name": "C", "probability": 0, "outcome": "lost"}),
        ({"key": "a", "name": "A", "probability": 10, "launch": True},
         {"key": "b", "name": "B", "probability": 100, "outcome": "won"},
         {"key": "c", "name": "C", "probability": 0, "outcome": "lost"}),
    ])
    def test_inconsistent_stage_sets_are_invalid(self, stages):
        with pytest.raises(Invalid):
            config.redefine(None, "custom", "Custom", tuple(c.StageDef(**s) for s in stages), {})

    def test_settings_merge_validates_the_whole(self):
        s = config.merge_settings(c.PipelineSettings(), {"quarterly_target": Decimal("300000")})
        assert s.version == 1 and s.quarterly_target == Decimal("300000")
        with pytest.raises(Invalid) as info:
            config.merge_settings(s, {"tier_thresholds": {"silver": "5", "gold": "1", "platinum": "9"}})
        assert info.value.field == "tier_thresholds"


class TestCsvCells:
    @pytest.mark.parametrize(("text", "expected"), [("12500", "12500"), ("12,500.00", "12500.00"), ("$1,000", "1000"),
                                                    (" 7.5 ", "7.5"), ("1,000,000.25", "1000000.25")])
    def test_amounts(self, text, expected):
        assert imports.parse_amount(text) == Decimal(expected)

    @pytest.mark.parametrize("text", ["12.500,00", "1,00", "ten", "NaN", "Infinity", "1e5x", "--1"])
    def test_ambiguous_or_bad_amounts_are_refused(self, text):
        with pytest.raises(imports.CellError):
            imports.parse_amount(text)

    @pytest.mark.parametrize(("enum", "text", "value"), [
        (c.PartnerType, "ISV", "isv"), (c.PartnerType, "Co-sell", "cosell"), (c.PartnerType, "co sell", "cosell"),
        (c.AceReviewStatus, "action required", "Action Required"), (c.AceReviewStatus, "IN_REVIEW", "In Review"),
        (c.GcpStatus, "not-accepted", "Not Accepted"), (c.Source, "import", "import"),
    ])
    def test_choices_forgive_case_and_spelling(self, enum, text, value):
        assert imports.parse_choice(enum, text) == value

    def test_dates_are_iso_only(self):
        assert imports.parse_date("2026-12-01") == date(2026, 12, 1)
        for text in ("01/12/2026", "12/01/2026", "2026-13-01", "tomorrow"):
            with pytest.raises(imports.CellError):
                imports.parse_date(text)

    def test_header_problems(self):
        errors = imports.check_header(c.ImportKind.opportunities, ["name", "name", "colour"])
        assert {e.message.split(" ")[0] for e in errors} == {"column", "unknown", "missing"}
        assert imports.normalise_header(["\ufeffName", "Expected Close Date"]) == ["name", "expected_close_date"]

    @given(st.lists(st.text(max_size=30), min_size=17, max_size=17))
    def test_any_row_parses_or_errors_but_never_crashes(self, cells):
        row, errors = imports.parse_row(c.ImportKind.opportunities, list(imports.OPPORTUNITY_COLUMNS), cells, 2)
        assert row is not None or errors, "only a row of the wrong width has nothing to check further"

    def test_a_bad_row_still_names_its_partner_so_the_service_checks_it_in_the_same_pass(self):
        cells = dict.fromkeys(imports.OPPORTUNITY_COLUMNS, "")
        cells.update(name="Deal", customer="Acme", partner="Nobody Ltd", amount="ten", currency="USD",
                     expected_close_date="31/12/2026")
        row, errors = imports.parse_row(c.ImportKind.opportunities, list(cells), list(cells.values()), 5)
        assert row is not None and row.partner_name == "Nobody Ltd"
        assert {(e.row, e.field) for e in errors} == {(5, "amount"), (5, "expected_close_date")}


def facts(**kw) -> fc.OpportunityFacts:
    base = dict(pipeline="resale", stage="lead", outcome="open", owner="o", partner_id=None, amount=Decimal("100.00"),
                currency="USD", expected_close_date=date(2026, 5, 3), hyperscaler=None,
                created_at=datetime(2026, 1, 1, tzinfo=UTC), stage_entered_at=datetime(2026, 4, 1, 12, tzinfo=UTC),
                closed_at=None, launched_at=None)
    base.update(kw)
    return fc.OpportunityFacts(**base)


facts_strategy = st.builds(
    facts,
    stage=st.sampled_from(["lead", "proposal", "won", "lost"]), amount=money,
    currency=st.sampled_from(["USD", "EUR"]), owner=st.sampled_from([None, "a", "b"]),
    partner_id=st.sampled_from([None, uuid.UUID(int=1)]),
    expected_close_date=st.one_of(st.none(), days),
    closed_at=st.datetimes(min_value=datetime(2026, 1, 2), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
).map(lambda f: fc.OpportunityFacts(**{**f.__dict__, "outcome": {"won": "won", "lost": "lost"}.get(f.stage, "open"),
                                       "closed_at": f.closed_at if f.stage in ("won", "lost") else None}))


class TestKpiArithmetic:
    def test_contributions_of_open_won_and_launched_deals(self):
        open_deal = fc.contributions(facts())
        assert open_deal == {("open", ("resale", "lead", "o", "USD", date(2026, 5, 1))): (1, Decimal("100.00")),
                             ("stuck", (date(2026, 4, 1), "resale", "lead")): (1,)}
        won = fc.contributions(facts(stage="launched", outcome="won", pipeline="cosell", hyperscaler="aws",
                                     closed_at=datetime(2026, 2, 15, tzinfo=UTC),
                                     launched_at=datetime(2026, 2, 15, tzinfo=UTC)))
        assert won == {
            ("closed", (date(2026, 2, 1), "cosell", "won", "o", "USD")): (1, Decimal("100.00"), 45 * 86400),
            ("partner_won", (fc.NIL_PARTNER, date(2026, 2, 1), "USD")): (1, Decimal("100.00")),
            ("launch", (date(2026, 2, 1), "aws", "o")): (1,),
        }
        assert fc.contributions(facts(expected_close_date=None))[("open", ("resale", "lead", "o", "USD",
                                                                          fc.NO_DATE))] == (1, Decimal("100.00"))

    @given(facts_strategy, facts_strategy, facts_strategy)
    def test_deltas_add_up_like_the_states_they_connect(self, a, b, d):
        """Applying a->b then b->d leaves the aggregates where a->d does; x->x moves nothing."""
        assert fc.delta(a, a) == {}
        step: dict = {}
        fc.merge(step, fc.delta(a, b))
        fc.merge(step, fc.delta(b, d))
        assert {k: tuple(v) for k, v in step.items() if any(v)} == fc.delta(a, d)
        created_then_removed: dict = {}
        fc.merge(created_then_removed, fc.delta(None, a))
        fc.merge(created_then_removed, fc.delta(a, None))
        assert not any(any(v) for v in created_then_removed.values())

    def test_conversion_rounds_each_currency_and_keeps_unknown_ones_apart(self):
        s = c.PipelineSettings(fx_rates={"EUR": "1.10"})
        total, other = fc.convert({"USD": Decimal("1.005"), "EUR": Decimal("7500"), "GBP": Decimal("500")}, s)
        assert total == Decimal("8251.01") and other == {"GBP": Decimal("500.00")}

    def test_the_forecast_by_hand(self):
        s = c.PipelineSettings(quarterly_target="250000", fiscal_year_start_month=4, fx_rates={"EUR": "1.10"})
        weighted = fc.weighted([(50, "USD", Decimal("40000")), (75, "EUR", Decimal("10000")),
                                (25, "USD", Decimal("12000")), (10, "GBP", Decimal("5000"))])
        f = fc.forecast(as_of=date(2026, 11, 24), settings=s,
                        closed_won={"USD": Decimal("100000"), "EUR": Decimal("20000")}, weighted_open=weighted)
        assert (f.quarter, f.starts_on, f.ends_on) == ("2027-Q3", date(2026, 10, 1), date(2026, 12, 31))
        assert f.days_left == 37
        assert (f.closed_won, f.weighted_pipeline, f.projected) == (Decimal("122000.00"), Decimal("31250.00"),
                                                                    Decimal("153250.00"))
        assert (f.attainment, f.projected_attainment, f.gap_to_target, f.at_risk) == (
            Decimal("0.4880"), Decimal("0.6130"), Decimal("96750.00"), True)
        assert f.unconverted == {"GBP": Decimal("500.00")}

    @given(money, money)
    def test_at_risk_exactly_when_the_projection_falls_short(self, won, target):
        s = c.PipelineSettings(quarterly_target=target)
        f = fc.forecast(as_of=date(2026, 1, 1), settings=s, closed_won={"USD": won}, weighted_open={})
        assert f.at_risk == (won < target) and f.gap_to_target == max(Decimal(0), target - won)

    @pytest.mark.parametrize(("seconds", "count", "days"), [(0, 0, None), (86400 * 45, 1, "45.0"),
                                                            (86400 * 45 + 5, 3, "15.0"), (86400 * 3, 2, "1.5")])
    def test_average_cycle_days(self, seconds, count, days):
        assert fc.average_days(seconds, count) == (Decimal(days) if days else None)
