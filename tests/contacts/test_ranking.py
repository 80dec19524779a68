"""The attention ranking: a deterministic, documented function (docs/contacts.md), table-driven, and
the words that explain each line."""

from __future__ import annotations

from decimal import Decimal

import pytest

from contracts import contacts as c
from gateway.attention_words import reason
from services.relationships.contacts import ranking
from services.relationships.contacts.ranking import Candidate

D = Decimal


def touch(key: str, stake: str, cold: int | None, *, owner: str | None = "tom", crucial: bool = False,
          score: int | None = 40, last: int | None = 20, effort: str = "0.5") -> Candidate:
    return Candidate(kind=c.ActionKind.touch, key=key, owner=owner, title=key, link="/", stake=D(stake),
                     effort=D(effort), crucial=crucial, score=score, days_until_cold=cold, last_touch_days=last)


def deadline(key: str, stake: str, due: int, owner: str | None = "tom") -> Candidate:
    return Candidate(kind=c.ActionKind.ace_action, key=key, owner=owner, title=key, link="/", stake=D(stake),
                     effort=D(1), due_in_days=due, what="ACE Action Required")


class TestPriority:
    @pytest.mark.parametrize(("candidate", "expected"), [
        (touch("cold, nothing at stake", "0", 0), 1.0),
        (touch("cold in a week, $9K", "9000", 7), 1.0),          # (1 + log10(10)) x 1/2
        (touch("cold today, $99K", "99000", 0), 3.0),
        (touch("cold today, $99K, crucial", "99000", 0, crucial=True), 4.5),
        (touch("cold for 30 days, $99K", "99000", -30), 1.5),    # fading once cold
        (touch("cold for 120 days, $99K", "99000", -120), 0.6),
        (touch("never touched", "0", None, score=None, last=None), 1.0),
        (deadline("due in 7 days, $0", "0", 7), 0.5),
        (deadline("overdue, $999K", "999000", -1), 6.0),
    ], ids=lambda v: v.key if isinstance(v, Candidate) else str(v))
    def test_worked_priorities(self, candidate: Candidate, expected: float) -> None:
        assert ranking.priority(candidate) == pytest.approx(expected)

    def test_more_at_stake_ranks_higher_with_the_same_urgency(self) -> None:
        ranked = ranking.rank([touch("a", "1000", 5), touch("b", "50000", 5)])
        assert [r.candidate.key for r in ranked] == ["b", "a"]

    def test_about_to_go_cold_ranks_above_long_cold(self) -> None:
        ranked = ranking.rank([touch("long cold", "1000", -200), touch("cold in 3 days", "1000", 3)])
        assert [r.candidate.key for r in ranked] == ["cold in 3 days", "long cold"]

    def test_sooner_cold_ranks_higher_with_the_same_stake(self) -> None:
        ranked = ranking.rank([touch("later", "1000", 20), touch("sooner", "1000", 2)])
        assert [r.candidate.key for r in ranked] == ["sooner", "later"]

    def test_ties_break_by_date_then_key_so_the_list_is_the_same_every_time(self) -> None:
        items = [touch(k, "1000", 3) for k in ("c", "a", "b")]
        assert [r.candidate.key for r in ranking.rank(items)] == ["a", "b", "c"]
        assert [r.candidate.key for r in ranking.rank(list(reversed(items)))] == ["a", "b", "c"]


class TestFill:
    def test_each_member_gets_what_fits_their_capacity_in_rank_order(self) -> None:
        ranked = ranking.rank([touch("a", "90000", 0, effort="1"), touch("b", "50000", 0, effort="1"),
                               touch("c", "10000", 0, effort="1"), touch("d", "100", 0, effort="0.5")])
        [week] = ranking.fill(ranked, ["tom"], lambda _: D("2.5"))
        assert [r.candidate.key for r in week.planned] == ["a", "b", "d"]  # c does not fit; d still does
        assert [r.candidate.key for r in week.outside] == ["c"]
        assert week.planned_hours == D("2.5")

    def test_members_without_candidates_are_listed_and_unowned_actions_fall_outside(self) -> None:
        weeks = ranking.fill(ranking.rank([touch("x", "1000", 0, owner=None)]), ["aisha", "tom"],
                             lambda _: D(4))
        assert [(w.owner, len(w.planned), len(w.outside)) for w in weeks] == [("aisha", 0, 0), ("tom", 0, 0),
                                                                                (None, 0, 1)]

    def test_zero_capacity_plans_nothing(self) -> None:
        [week] = ranking.fill(ranking.rank([touch("x", "1000", 0)]), ["tom"], lambda _: D(0))
        assert not week.planned and len(week.outside) == 1


class TestReasons:
    def item(self, **kw) -> c.AttentionItem:
        base = {"rank": 1, "kind": c.ActionKind.touch, "owner": "tom", "title": "t", "link": "/", "priority": 1.0,
                "effort_hours": D("0.5"), "value_at_stake": D("95000"), "within_capacity": True}
        return c.AttentionItem(**(base | kw))

    @pytest.mark.parametrize(("fields", "words"), [
        ({"score": 38, "days_until_cold": 6, "last_touch_days": 41},
         "$95K at stake; strength 38, cold in 6 days; last touch 41 days ago"),
        ({"score": 12, "days_until_cold": -1, "last_touch_days": 90, "crucial": True},
         "$95K at stake; strength 12, cold for 1 day; last touch 90 days ago; crucial"),
        ({"score": None, "days_until_cold": None, "last_touch_days": None, "value_at_stake": D(0)},
         "no open pipeline at stake; never touched"),
        ({"kind": c.ActionKind.ace_action, "due_in_days": 3, "what": "ACE Action Required",
          "value_at_stake": D("120000")}, "ACE Action Required due in 3 days; $120K at stake"),
        ({"kind": c.ActionKind.ace_action, "due_in_days": -2, "what": "ACE Action Required"},
         "ACE Action Required overdue by 2 days; $95K at stake"),
    ])
    def test_every_line_explains_its_rank_in_words(self, fields, words) -> None:
        assert reason(self.item(**fields), "USD") == words
