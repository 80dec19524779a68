"""The commission maths as plain functions: the worked examples, validation that names the field
and says what is wrong, and properties that must hold for any revenue."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.commissions import (
    Basis,
    Duration,
    EntryType,
    FlatRate,
    PartnerTierRate,
    RatePeriod,
    RevenueKind,
    Terms,
    Tier,
    TieredRate,
    TierMode,
)
from contracts.pipeline import PartnerTier
from runtime.errors import Invalid
from services.commissions import domain
from services.commissions.domain import AgreementSpec, Revenue, Version
from tests.commissions.examples import EXAMPLES, Ev, Example, at

D = Decimal


def revenue(ev: Ev) -> Revenue:
    customer = domain.customer_key(ev.customer)
    ref = f"{customer}@{ev.day}" if ev.kind is RevenueKind.churn else ev.ref
    return Revenue(kind=ev.kind, ref=ref, at=at(ev.day, ev.time), customer=customer, amount=ev.amount,
                   currency=ev.currency if ev.amount is not None else None, opportunity_id=ev.opp,
                   pipeline=ev.pipeline if ev.kind is RevenueKind.deal_won else None,
                   invoice_ref=ev.invoice,
                   customer_started_on=date.fromisoformat(ev.started) if ev.started else None)


def spec_of(example: Example) -> AgreementSpec:
    versions = tuple(Version(number=i + 1, effective_from=v.start, effective_to=v.end, retroactive=v.retroactive,
                             terms=v.terms) for i, v in enumerate(example.versions))
    # Consecutive versions: the earlier ends where the next begins (what adding a version does).
    closed = []
    for i, v in enumerate(versions):
        if v.effective_to is None and i + 1 < len(versions):
            v = Version(v.number, v.effective_from, versions[i + 1].effective_from, v.retroactive, v.terms)
        closed.append(v)
    return AgreementSpec(id="a", currency=example.currency, versions=tuple(closed))


def refunds_with_deals(events: list[Revenue]) -> list[Revenue]:
    """What the service does when it stores a refund: it learns the refunded invoice's deal."""
    invoices = {e.ref: e for e in events if e.kind is RevenueKind.invoice_paid}
    out = []
    for e in events:
        if e.kind is RevenueKind.refund and e.invoice_ref in invoices:
            inv = invoices[e.invoice_ref]
            e = Revenue(kind=e.kind, ref=e.ref, at=e.at, customer=inv.customer, amount=e.amount, currency=e.currency,
                        opportunity_id=inv.opportunity_id, invoice_ref=e.invoice_ref)
        out.append(e)
    return out


class TestWorkedExamples:
    @pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
    def test_ledger_matches_the_hand_computed_one(self, example: Example):
        events = refunds_with_deals([revenue(e) for e in example.events])
        result = domain.fold(spec_of(example), events)
        got = sorted((line.key, line.amount, line.version, line.period.isoformat()[:7], line.reverses)
                     for line in result.lines.values())
        want = sorted((x.key, D(x.amount), x.version, x.month, x.reverses) for x in example.expected)
        assert got == want
        notes = " | ".join(n for _, n in result.notes)
        for expected_note in example.notes:
            assert expected_note in notes

    def test_rule_and_detail_say_how_the_amount_came_about(self):
        marginal = next(e for e in EXAMPLES if e.name.startswith("marginal"))
        lines = domain.fold(spec_of(marginal), [revenue(e) for e in marginal.events]).lines
        crossing = lines["invoice_paid:inv-2"]
        assert crossing.rule == "tiered_marginal"
        assert "10% on 20,000.00" in crossing.detail and "15% on 10,000.00" in crossing.detail
        whole = next(e for e in EXAMPLES if e.name.startswith("whole"))
        line = domain.fold(spec_of(whole), [revenue(e) for e in whole.events]).lines["invoice_paid:inv-2"]
        assert line.rule == "tiered_whole_amount" and "catch-up" in line.detail

    def test_partner_tier_rate_uses_the_tier_on_the_revenue_date(self):
        terms = Terms(rate=PartnerTierRate(rates={PartnerTier.bronze: D(5), PartnerTier.silver: D(10),
                                                  PartnerTier.gold: D(15), PartnerTier.platinum: D(20)}))
        spec = AgreementSpec(id="a", currency="USD", versions=(Version(1, date(2026, 1, 1), None, False, terms),))
        tiers = [(at("2026-01-01"), PartnerTier.silver), (at("2026-06-01"), PartnerTier.gold)]
        events = [revenue(Ev(RevenueKind.deal_won, "o1", "2026-03-01", D(1000), opp="o1")),
                  revenue(Ev(RevenueKind.deal_won, "o2", "2026-07-01", D(1000), opp="o2"))]
        lines = domain.fold(spec, events, tiers).lines
        assert lines["deal_won:o1"].amount == D("100.00") and lines["deal_won:o2"].amount == D("150.00")
        assert "gold partner rate 15%" in lines["deal_won:o2"].detail
        assert domain.fold(spec, events, ()).lines == {}  # no tier known yet: nothing, with a note

    def test_revenue_in_another_currency_earns_nothing_and_says_why(self):
        spec = AgreementSpec(id="a", currency="EUR", versions=(Version(1, date(2026, 1, 1), None, False,
                                                                       Terms(rate=FlatRate(rate=D(10)))),))
        result = domain.fold(spec, [revenue(Ev(RevenueKind.deal_won, "o1", "2026-03-01", D(1000), opp="o1"))])
        assert result.lines == {} and "in USD, the agreement in EUR" in result.notes[0][1]

    def test_deal_models_filter(self):
        spec = AgreementSpec(id="a", currency="USD", deal_models=frozenset({"referral"}),
                             versions=(Version(1, date(2026, 1, 1), None, False, Terms(rate=FlatRate(rate=D(10)))),))
        resale = Revenue(RevenueKind.deal_won, "o1", at("2026-03-01"), "acme", D(1000), "USD", "o1", "resale")
        referral = Revenue(RevenueKind.deal_won, "o2", at("2026-03-02"), "acme", D(1000), "USD", "o2", "referral")
        result = domain.fold(spec, [resale, referral])
        assert list(result.lines) == ["deal_won:o2"]
        assert "deal model resale is not covered" in result.notes[0][1]


class TestValidation:
    def _terms(self, **kw) -> Terms:
        return Terms(**{"rate": FlatRate(rate=D(10)), **kw})

    @pytest.mark.parametrize("terms, field, words", [
        (Terms(rate=FlatRate(rate=D(120))), "terms.rate.rate", "rate 120% is outside 0-100%"),
        (Terms(rate=FlatRate(rate=D(-1))), "terms.rate.rate", "outside 0-100%"),
        (Terms(rate=TieredRate(mode=TierMode.marginal, tiers=[
            Tier(from_amount=D(0), up_to=D(50000), rate=D(10)), Tier(from_amount=D(60000), rate=D(15))])),
         "terms.rate.tiers.1.from_amount",
         "gap between tiers: tier 1 ends at 50,000.00 but tier 2 starts at 60,000.00"),
        (Terms(rate=TieredRate(mode=TierMode.marginal, tiers=[
            Tier(from_amount=D(0), up_to=D(50000), rate=D(10)), Tier(from_amount=D(40000), rate=D(15))])),
         "terms.rate.tiers.1.from_amount", "overlap"),
        (Terms(rate=TieredRate(mode=TierMode.whole_amount, tiers=[Tier(from_amount=D(100), rate=D(10))])),
         "terms.rate.tiers.0.from_amount", "the first tier must start at 0"),
        (Terms(rate=TieredRate(mode=TierMode.marginal, tiers=[Tier(from_amount=D(0), up_to=D(10), rate=D(10))])),
         "terms.rate.tiers.0.up_to", "the last tier must be open-ended"),
        (Terms(rate=TieredRate(mode=TierMode.marginal, tiers=[
            Tier(from_amount=D(0), rate=D(10)), Tier(from_amount=D(10), rate=D(15))])),
         "terms.rate.tiers.0.up_to", "only the last tier may be open-ended"),
        (Terms(rate=TieredRate(mode=TierMode.marginal, tiers=[
            Tier(from_amount=D(0), up_to=D(100), rate=D(10)), Tier(from_amount=D(100), rate=D(101))])),
         "terms.rate.tiers.1.rate", "outside 0-100%"),
        (Terms(rate=PartnerTierRate(rates={PartnerTier.bronze: D(5)})), "terms.rate.rates.silver",
         "no rate for the silver tier"),
        (Terms(rate=FlatRate(rate=D(10)), basis=Basis.deal, duration=Duration.lifetime), "terms.duration",
         "use basis 'invoice'"),
        (Terms(rate=FlatRate(rate=D(10)), basis=Basis.invoice, duration=Duration.recurring), "terms.duration_months",
         "between 1 and 120"),
        (Terms(rate=FlatRate(rate=D(10)), duration_months=3), "terms.duration_months", "only to recurring"),
        (Terms(rate=FlatRate(rate=D(10)), cap_per_deal=D(0)), "terms.cap_per_deal", "more than 0"),
        (Terms(rate=FlatRate(rate=D(10)), clawback_days=-5), "terms.clawback_days", "between 0 and 3650"),
    ])
    def test_invalid_terms_name_the_field_and_the_problem(self, terms, field, words):
        with pytest.raises(Invalid) as caught:
            domain.validate_terms(terms)
        assert caught.value.field == field
        assert words in caught.value.message

    def test_boundaries_are_valid(self):
        for rate in (D(0), D(100), D("12.3456")):
            domain.validate_terms(Terms(rate=FlatRate(rate=rate)))

    def test_versions_may_not_overlap(self):
        t = Terms(rate=FlatRate(rate=D(10)))
        v1 = Version(1, date(2026, 1, 1), date(2026, 12, 31), False, t)
        with pytest.raises(Invalid) as caught:
            domain.place_version([v1], date(2026, 6, 1), None)
        assert "overlaps version 1 (2026-01-01 - 2026-12-31)" in caught.value.message
        with pytest.raises(Invalid):
            domain.place_version([v1], date(2026, 1, 1), date(2026, 2, 1))
        with pytest.raises(Invalid) as caught:
            domain.place_version([v1], date(2027, 3, 1), date(2027, 2, 1))
        assert caught.value.field == "effective_to"
        assert domain.place_version([v1], date(2026, 12, 31), None).closes is None

    def test_a_new_version_after_an_open_ended_one_ends_it(self):
        t = Terms(rate=FlatRate(rate=D(10)))
        v1 = Version(1, date(2026, 1, 1), None, False, t)
        assert domain.place_version([v1], date(2026, 7, 1), None).closes is v1
        with pytest.raises(Invalid):  # before the open-ended version's start: it would sit inside nothing sane
            domain.place_version([v1], date(2025, 7, 1), None)
        assert domain.place_version([v1], date(2025, 7, 1), date(2026, 1, 1)).closes is None
        with pytest.raises(Invalid):  # a correction never silently moves another version
            domain.place_version([v1, Version(2, date(2026, 7, 1), None, False, t)], date(2026, 6, 1), None,
                                 replacing=1)


class TestPeriods:
    def test_statement_ranges(self):
        assert domain.statement_range("2026-Q4") == (date(2026, 10, 1), date(2027, 1, 1))
        assert domain.statement_range("2026-02") == (date(2026, 2, 1), date(2026, 3, 1))
        assert domain.period_key(date(2026, 5, 3), RatePeriod.quarter) == "2026-Q2"


# ------------------------------------------------------------------------------------- properties

START = datetime(2026, 1, 1, tzinfo=UTC)
CUSTOMERS = ("acme", "globex", "initech")
amounts = st.decimals(min_value=D("0.01"), max_value=D("80000"), places=2)


@st.composite
def terms_strategy(draw) -> Terms:
    kind = draw(st.sampled_from(["flat", "marginal", "whole", "tier"]))
    if kind == "flat":
        rate = FlatRate(rate=draw(st.decimals(min_value=0, max_value=40, places=2)))
    elif kind == "tier":
        rate = PartnerTierRate(rates={t: D(5 * (i + 1)) for i, t in enumerate(PartnerTier)})
    else:
        rate = TieredRate(mode=TierMode.marginal if kind == "marginal" else TierMode.whole_amount, tiers=[
            Tier(from_amount=D(0), up_to=D(20000), rate=D(10)), Tier(from_amount=D(20000), up_to=D(60000), rate=D(15)),
            Tier(from_amount=D(60000), rate=D(22))])
    basis = draw(st.sampled_from(list(Basis)))
    duration = Duration.one_time if basis is Basis.deal else draw(st.sampled_from(list(Duration)))
    return Terms(
        rate=rate, basis=basis, duration=duration,
        duration_months=draw(st.integers(1, 14)) if duration is Duration.recurring else None,
        period=draw(st.sampled_from(list(RatePeriod))),
        cap_per_deal=draw(st.none() | st.decimals(min_value=1, max_value=9000, places=2)),
        cap_per_period=draw(st.none() | st.decimals(min_value=1, max_value=20000, places=2)),
        clawback_days=draw(st.sampled_from([0, 30, 90, 400])),
    )


@st.composite
def spec_strategy(draw) -> AgreementSpec:
    first = Version(1, date(2026, 1, 1), None, False, draw(terms_strategy()))
    if not draw(st.booleans()):
        return AgreementSpec(id="a", currency="USD", versions=(first,))
    split = date(2026, 1, 1) + timedelta(days=draw(st.integers(30, 500)))
    second = Version(2, split, None, draw(st.booleans()), draw(terms_strategy()))
    return AgreementSpec(id="a", currency="USD", versions=(
        Version(1, first.effective_from, split, False, first.terms), second))


@st.composite
def events_strategy(draw) -> list[Revenue]:
    """Deals, invoices, refunds of earlier invoices (never more than was paid) and churns, over two years."""
    n = draw(st.integers(1, 30))
    events: list[Revenue] = []
    paid: dict[str, tuple[Decimal, datetime, str, str | None]] = {}
    for i in range(n):
        when = START + timedelta(days=draw(st.integers(0, 730)), minutes=i)
        customer = draw(st.sampled_from(CUSTOMERS))
        kind = draw(st.sampled_from(["won", "inv", "inv", "inv", "refund", "churn"]))
        if kind == "won":
            events.append(Revenue(RevenueKind.deal_won, f"o{i}", when, customer, draw(amounts), "USD", f"o{i}"))
        elif kind == "inv":
            opp = draw(st.sampled_from([None, *[e.ref for e in events if e.kind is RevenueKind.deal_won]]))
            amount = draw(amounts)
            paid[f"i{i}"] = (amount, when, customer, opp)
            events.append(Revenue(RevenueKind.invoice_paid, f"i{i}", when, customer, amount, "USD", opp))
        elif kind == "refund" and paid:
            ref = draw(st.sampled_from(sorted(paid)))
            amount, paid_at, inv_customer, opp = paid[ref]
            part = draw(st.decimals(min_value=D("0.01"), max_value=amount, places=2))
            events.append(Revenue(RevenueKind.refund, f"r{i}", paid_at + timedelta(days=draw(st.integers(0, 200))),
                                  inv_customer, part, "USD", opp, invoice_ref=ref))
        elif kind == "churn":
            events.append(Revenue(RevenueKind.churn, f"{customer}@{when.date()}#{i}", when, customer))
    return events


def stepped_with_a_restart_between_every_event(spec: AgreementSpec, events: list[Revenue], tiers) -> list:
    """What the service's fast path does: keep only the fold state (as it stores it) and the ledger rows,
    and rebuild the clawback memory from stored rows before each event."""
    state = domain.FoldState()
    rows: list[domain.PostedRow] = []
    for ev in sorted(events, key=lambda e: e.order):
        stored_state = copy.deepcopy(state)
        book = domain.LineBook(domain.facts_from_rows(rows))
        lines, _ = domain.step(spec, stored_state, book, ev, tiers)
        state = stored_state
        for line in lines:
            rows.append(domain.PostedRow(
                id=len(rows) + 1, line_key=line.key, entry_type=line.entry_type, rule=line.rule, amount=line.amount,
                basis_amount=line.basis_amount, reverses=line.reverses, version=line.version,
                customer=line.customer, revenue_at=line.revenue_at, period=line.period))
    return rows


TIERS = [(START, PartnerTier.silver), (START + timedelta(days=300), PartnerTier.platinum)]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestProperties:
    @PROPERTY
    @given(spec=spec_strategy(), events=events_strategy())
    def test_stepping_from_stored_state_gives_the_same_ledger_as_folding_everything(self, spec, events):
        full = domain.fold(spec, events, TIERS)
        rows = stepped_with_a_restart_between_every_event(spec, events, TIERS)
        assert {r.line_key: r.amount for r in rows} == {k: line.amount for k, line in full.lines.items()}
        assert len(rows) == len(full.lines)

    @PROPERTY
    @given(spec=spec_strategy(), events=events_strategy(), data=st.data())
    def test_events_in_any_arrival_order_settle_on_the_same_amounts(self, spec, events, data):
        """Out-of-order arrival: each late event refolds everything and posts the differences. However they
        arrive, the sum per line is what folding them in business order gives."""
        arrival = data.draw(st.permutations(events))
        rows: list[domain.PostedRow] = []
        seen: list[Revenue] = []
        for ev in arrival:
            seen.append(ev)
            desired = domain.fold(spec, seen, TIERS).lines
            new, adjustments = domain.differences(desired, domain.posted_from_rows(rows))
            for line in new:
                rows.append(_row(len(rows) + 1, line.key, line.amount, line))
            for adj in adjustments:
                rows.append(_row(len(rows) + 1, adj.key, adj.delta, adj.line))
        sums = {k: p.amount for k, p in domain.posted_from_rows(rows).items() if p.amount != 0}
        want = {k: line.amount for k, line in domain.fold(spec, events, TIERS).lines.items()}
        assert sums == want

    @PROPERTY
    @given(spec=spec_strategy(), events=events_strategy())
    def test_clawbacks_never_reverse_more_than_was_accrued(self, spec, events):
        lines = domain.fold(spec, events, TIERS).lines.values()
        for accrual in (x for x in lines if x.entry_type is EntryType.accrual):
            assert accrual.amount > 0
            reversed_ = sum((x.amount for x in lines if x.reverses == accrual.key), D(0))
            assert -accrual.amount <= reversed_ <= 0

    @PROPERTY
    @given(spec=spec_strategy(), events=events_strategy())
    def test_caps_hold(self, spec, events):
        lines = domain.fold(spec, events, TIERS).lines.values()
        for v in spec.versions:
            cap = v.terms.cap_per_period
            if cap is None:
                continue
            per_period: dict[str, Decimal] = {}
            for line in lines:
                if line.entry_type is EntryType.accrual and line.version == v.number:
                    k = domain.period_key(line.revenue_at.date(), v.terms.period)
                    per_period[k] = per_period.get(k, D(0)) + line.amount
            assert all(total <= cap for total in per_period.values())

    @PROPERTY
    @given(spec=spec_strategy(), events=events_strategy())
    def test_money_stays_exact_to_the_cent(self, spec, events):
        for line in domain.fold(spec, events, TIERS).lines.values():
            assert isinstance(line.amount, Decimal) and line.amount == line.amount.quantize(D("0.01"))


def _row(i: int, key: str, amount: Decimal, line) -> domain.PostedRow:
    return domain.PostedRow(id=i, line_key=key, entry_type=EntryType.adjustment, rule="", amount=amount,
                            basis_amount=D(0), reverses=None, version=1, customer="", revenue_at=START,
                            period=date(2026, 1, 1))
