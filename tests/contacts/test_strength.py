"""The strength score: worked examples (the same as docs/contacts.md), its properties (hypothesis),
the closed form of the cold date, and the strength order that does not change with time."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.contacts import Initiator, InteractionKind, Seniority, StrengthSettings
from services.relationships.contacts import domain
from tests.contacts.examples import EXAMPLES, Example

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
S = StrengthSettings()


def touches_of(example: Example) -> list[domain.Touch]:
    return [domain.Touch(NOW - timedelta(days=d), InteractionKind(k), Initiator(i)) for d, k, i in example.touches]


class TestWorkedExamples:
    @pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.story)
    def test_score_and_cold_date(self, example: Example) -> None:
        energy = domain.fold(S, touches_of(example))
        seniority = Seniority(example.seniority)
        assert domain.display(domain.strength(S, energy, NOW, seniority)) == example.score
        assert domain.days_until(domain.cold_at(S, energy, seniority), NOW) == example.cold_in_days

    def test_the_docs_print_the_same_table(self) -> None:
        doc = (Path(__file__).resolve().parents[2] / "docs" / "contacts.md").read_text()
        for e in EXAMPLES:
            cold = "—" if e.cold_in_days is None else str(e.cold_in_days)
            assert f"| {e.story} | {e.seniority} | {e.score} | {cold} |" in doc, e.story


class TestDecay:
    def test_one_meeting_halves_its_weight_every_half_life(self) -> None:
        energy = domain.fold(S, [domain.Touch(NOW, InteractionKind.meeting)])
        for half_lives in range(5):
            at = NOW + timedelta(days=30 * half_lives)
            assert domain.energy_at(S, energy, at, Seniority.manager) == pytest.approx(3 / 2 ** half_lives)

    def test_a_longer_half_life_decays_slower(self) -> None:
        slow = StrengthSettings(half_life_days=90)
        energy = domain.fold(slow, [domain.Touch(NOW, InteractionKind.meeting)])
        assert domain.display(domain.strength(slow, energy, NOW + timedelta(days=90), Seniority.manager)) == 39

    def test_the_cold_date_is_where_the_score_crosses_the_threshold(self) -> None:
        energy = domain.fold(S, [domain.Touch(NOW - timedelta(days=d), InteractionKind.call) for d in (0, 9, 40)])
        cold = domain.cold_at(S, energy, Seniority.director)
        assert cold is not None
        before = domain.strength(S, energy, cold - timedelta(minutes=1), Seniority.director)
        after = domain.strength(S, energy, cold + timedelta(minutes=1), Seniority.director)
        assert before > S.cold_threshold > after

    def test_a_touch_logged_late_counts_as_if_logged_on_time(self) -> None:
        a = domain.Touch(NOW - timedelta(days=40), InteractionKind.meeting)
        b = domain.Touch(NOW - timedelta(days=3), InteractionKind.email, Initiator.them)
        late = domain.add(S, domain.add(S, domain.Energy(), b), a)
        in_order = domain.add(S, domain.add(S, domain.Energy(), a), b)
        assert late.anchor == in_order.anchor
        assert late.value == pytest.approx(in_order.value)

    def test_touches_a_thousand_years_old_weigh_nothing_and_do_not_fail(self) -> None:
        energy = domain.fold(S, [domain.Touch(datetime(1900, 1, 1, tzinfo=UTC), InteractionKind.meeting),
                                 domain.Touch(NOW, InteractionKind.email)])
        assert domain.display(domain.strength(S, energy, NOW, Seniority.manager)) == 15
        assert domain.strength(S, energy, datetime(2200, 12, 31, tzinfo=UTC), Seniority.manager) == 0


kinds = st.sampled_from(list(InteractionKind))
initiators = st.sampled_from(list(Initiator))
seniorities = st.sampled_from(list(Seniority))
offsets = st.integers(min_value=0, max_value=3 * 365 * 24 * 60)  # minutes before NOW
touch_lists = st.lists(st.tuples(offsets, kinds, initiators), max_size=40)


def _touches(raw: list[tuple[int, InteractionKind, Initiator]]) -> list[domain.Touch]:
    return [domain.Touch(NOW - timedelta(minutes=m), k, i) for m, k, i in raw]


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(touch_lists, st.tuples(offsets, kinds, initiators), seniorities, st.integers(0, 400))
    def test_a_new_interaction_never_lowers_the_score(self, raw, new, seniority, days_later) -> None:
        at = NOW + timedelta(days=days_later)
        before = domain.strength(S, domain.fold(S, _touches(raw)), at, seniority)
        after = domain.strength(S, domain.fold(S, _touches([*raw, new])), at, seniority)
        assert after >= before - 1e-9

    @settings(max_examples=300, deadline=None)
    @given(touch_lists, seniorities, st.integers(0, 10_000), st.integers(0, 10_000))
    def test_time_passing_never_raises_the_score(self, raw, seniority, a, b) -> None:
        energy = domain.fold(S, _touches(raw))
        early, late = sorted((a, b))
        assert (domain.strength(S, energy, NOW + timedelta(hours=late), seniority)
                <= domain.strength(S, energy, NOW + timedelta(hours=early), seniority) + 1e-9)

    @settings(max_examples=300, deadline=None)
    @given(touch_lists, seniorities, st.integers(-10_000, 100_000))
    def test_the_score_stays_within_0_and_100(self, raw, seniority, hours) -> None:
        score = domain.strength(S, domain.fold(S, _touches(raw)), NOW + timedelta(hours=hours), seniority)
        assert 0 <= score <= 100
        assert 0 <= domain.display(score) <= 100

    @settings(max_examples=200, deadline=None)
    @given(touch_lists)
    def test_the_order_of_logging_does_not_matter(self, raw) -> None:
        touches = _touches(raw)
        forward = domain.Energy()
        for t in touches:  # as logged, in any order
            forward = domain.add(S, forward, t)
        folded = domain.fold(S, touches)
        assert forward.anchor == folded.anchor
        assert forward.value == pytest.approx(folded.value, rel=1e-9, abs=1e-12)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(offsets, kinds, initiators), min_size=1, max_size=20), seniorities)
    def test_after_the_cold_date_the_score_is_below_the_threshold(self, raw, seniority) -> None:
        energy = domain.fold(S, _touches(raw))
        cold = domain.cold_at(S, energy, seniority)
        assert cold is not None
        assert domain.display(domain.strength(S, energy, cold + timedelta(seconds=1), seniority)) < S.cold_threshold


def test_strength_order_key_matches_the_score_order() -> None:
    """The SQL order key (service.strength_order) is log E(t) + t*ln2/h: the same for any t."""
    h = float(S.half_life_days) * domain.DAY
    contacts = [domain.fold(S, [domain.Touch(NOW - timedelta(days=d), k)]) for d, k in
                ((1, InteractionKind.email), (50, InteractionKind.meeting), (5, InteractionKind.call),
                 (200, InteractionKind.meeting))]

    def key(e: domain.Energy) -> float:
        assert e.anchor is not None
        return math.log(e.value) + e.anchor.timestamp() * math.log(2) / h

    for later in (0, 30, 365):
        at = NOW + timedelta(days=later)
        by_score = sorted(range(4), key=lambda i: domain.energy_at(S, contacts[i], at, Seniority.manager))
        assert by_score == sorted(range(4), key=lambda i: key(contacts[i]))
