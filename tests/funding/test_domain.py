"""Funding's rules as plain functions: every stage move legal or not, claims, amounts, and deadline
arithmetic on worked examples (month ends, leap years, time zones, DST)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from contracts import funding as f
from contracts.deadlines import DeadlineKind, DeadlineStatus, days_left, end_of_day
from contracts.quarters import add_months
from runtime.errors import Invalid
from services.relationships.funding import domain

S = f.FundStage
C = f.ClaimStatus
MAP = domain.BUILTIN["map"]  # reviews: AWS Review
POC = domain.BUILTIN["poc"]  # reviews: AWS Review, Tech Approval
MDF = domain.BUILTIN["mdf"]  # no optional review stage

# Every legal move by hand, per program; everything else is refused.
LEGAL = {
    "map": {
        S.draft: {S.submitted, S.terminated},
        S.submitted: {S.aws_review, S.rejected, S.terminated},
        S.aws_review: {S.business_approval, S.rejected, S.terminated},
        S.business_approval: {S.finance_approval, S.rejected, S.terminated},
        S.finance_approval: {S.pre_approved, S.rejected, S.terminated},
        S.pre_approved: {S.cash_claim, S.terminated, S.expired},
        S.cash_claim: {S.completed, S.terminated, S.expired},
        S.rejected: {S.draft, S.terminated},
        # A program's configuration that dropped a review stage does not strand requests in it.
        S.technical_approval: {S.business_approval, S.rejected, S.terminated},
    },
    "poc": {
        S.draft: {S.submitted, S.terminated},
        S.submitted: {S.aws_review, S.rejected, S.terminated},
        S.aws_review: {S.technical_approval, S.rejected, S.terminated},
        S.technical_approval: {S.business_approval, S.rejected, S.terminated},
        S.business_approval: {S.finance_approval, S.rejected, S.terminated},
        S.finance_approval: {S.pre_approved, S.rejected, S.terminated},
        S.pre_approved: {S.cash_claim, S.terminated, S.expired},
        S.cash_claim: {S.completed, S.terminated, S.expired},
        S.rejected: {S.draft, S.terminated},
    },
    "mdf": {
        S.draft: {S.submitted, S.terminated},
        S.submitted: {S.business_approval, S.rejected, S.terminated},
        S.business_approval: {S.finance_approval, S.rejected, S.terminated},
        S.finance_approval: {S.pre_approved, S.rejected, S.terminated},
        S.pre_approved: {S.cash_claim, S.terminated, S.expired},
        S.cash_claim: {S.completed, S.terminated, S.expired},
        S.rejected: {S.draft, S.terminated},
        S.aws_review: {S.business_approval, S.rejected, S.terminated},
        S.technical_approval: {S.business_approval, S.rejected, S.terminated},
    },
}
# Enough claims that the claim conditions of cash claim and completion hold.
PAID = [domain.ClaimView(Decimal("100"), C.paid, Decimal("100"))]
SUBMITTED = [domain.ClaimView(Decimal("100"), C.submitted)]


@pytest.mark.parametrize("program", ["map", "poc", "mdf"])
@pytest.mark.parametrize("stage", list(S))
@pytest.mark.parametrize("to", list(S))
def test_every_move_is_legal_or_refused_naming_the_transition(program: str, stage: f.FundStage, to: f.FundStage):
    prog = domain.BUILTIN[program]
    claims = PAID if stage == S.cash_claim else SUBMITTED
    legal = LEGAL[program].get(stage, set())
    if to in legal:
        domain.check_move(stage, to, prog, claims)
        assert to in domain.next_stages(stage, prog)
    else:
        with pytest.raises(Invalid) as err:
            domain.check_move(stage, to, prog, claims)
        assert err.value.field == "to_stage"
        if to != stage:
            assert f"from {f.STAGE_LABELS[stage]} to {f.STAGE_LABELS[to]}" in err.value.message


def test_closed_requests_go_nowhere():
    for stage in (S.completed, S.terminated, S.expired):
        assert domain.next_stages(stage, MAP) == []


def test_cash_claim_needs_a_submitted_claim_and_completion_a_paid_one():
    with pytest.raises(Invalid, match="before a milestone's claim is submitted"):
        domain.check_move(S.pre_approved, S.cash_claim, MAP, [domain.ClaimView(Decimal(1), C.planned)])
    with pytest.raises(Invalid, match="before a claim is paid"):
        domain.check_move(S.cash_claim, S.completed, MAP, SUBMITTED)
    with pytest.raises(Invalid, match="still submitted or approved"):
        domain.check_move(S.cash_claim, S.completed, MAP, [*PAID, domain.ClaimView(Decimal(5), C.approved)])


@pytest.mark.parametrize(("current", "to", "ok"), [
    (C.planned, C.submitted, True), (C.planned, C.paid, False), (C.submitted, C.approved, True),
    (C.submitted, C.rejected, True), (C.approved, C.paid, True), (C.rejected, C.submitted, True),
    (C.paid, C.rejected, False), (C.paid, C.submitted, False), (C.approved, C.submitted, False),
])
def test_claim_moves(current, to, ok):
    if ok:
        domain.check_claim(S.cash_claim, current, to)
    else:
        with pytest.raises(Invalid, match=f"from {current} to {to}"):
            domain.check_claim(S.cash_claim, current, to)


def test_no_claim_before_pre_approval():
    with pytest.raises(Invalid, match="once the request is pre-approved"):
        domain.check_claim(S.business_approval, C.planned, C.submitted)


def test_amounts_count_claims_and_payments_exactly():
    claims = [domain.ClaimView(Decimal("0.10"), C.submitted),
              domain.ClaimView(Decimal("0.20"), C.paid, Decimal("0.20")),
              domain.ClaimView(Decimal("5"), C.planned), domain.ClaimView(Decimal("7"), C.rejected)]
    assert domain.amounts(claims) == (Decimal("0.30"), Decimal("0.20"))


def test_milestones_cannot_claim_more_than_approved():
    with pytest.raises(Invalid, match="more than the 100 approved"):
        domain.check_milestone_total([domain.ClaimView(Decimal("60"), C.planned)] * 2, Decimal("150"), Decimal("100"))
    domain.check_milestone_total([domain.ClaimView(Decimal("50"), C.planned)] * 2, Decimal("150"), Decimal("100"))


# ------------------------------------------------------------------------------ deadline arithmetic


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),  # month end clamps
    (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
    (date(2100, 1, 31), 1, date(2100, 2, 28)),  # 2100 is not a leap year
    (date(2000, 1, 31), 1, date(2000, 2, 29)),  # 2000 is
    (date(2026, 3, 31), 1, date(2026, 4, 30)),
    (date(2026, 12, 15), 1, date(2027, 1, 15)),  # year end
    (date(2026, 8, 31), 6, date(2027, 2, 28)),
    (date(2026, 2, 28), 1, date(2026, 3, 28)),  # not "end of month to end of month"
])
def test_add_months(day, months, expected):
    assert add_months(day, months) == expected


def _deadlines(prog, stage, end, milestones=(), approved=Decimal("1000.00")):
    return {d.kind: d for d in domain.deadlines("r1", "Acme", stage, prog, end, approved, list(milestones))}


def test_expiry_is_thirty_days_after_activity_end_across_a_month_end_and_a_leap_day():
    assert _deadlines(MDF, S.pre_approved, date(2026, 1, 31))[DeadlineKind.fund_request_expiry].due_date \
        == date(2026, 3, 2)
    assert _deadlines(MDF, S.pre_approved, date(2028, 2, 1))[DeadlineKind.fund_request_expiry].due_date \
        == date(2028, 3, 2)  # 29 days of February 2028, then 1 March + 1
    assert _deadlines(MDF, S.pre_approved, date(2026, 12, 15))[DeadlineKind.fund_request_expiry].due_date \
        == date(2027, 1, 14)


def test_map_claim_falls_due_a_month_after_project_end():
    found = _deadlines(MAP, S.pre_approved, date(2028, 1, 31))
    assert found[DeadlineKind.fund_claim_due].due_date == date(2028, 2, 29)
    assert found[DeadlineKind.fund_claim_due].status == DeadlineStatus.open
    assert DeadlineKind.fund_claim_due not in _deadlines(MDF, S.pre_approved, date(2028, 1, 31))


def test_no_deadline_before_approval_and_none_once_refused():
    for stage in (S.draft, S.submitted, S.business_approval, S.finance_approval, S.rejected, S.terminated, S.expired):
        assert _deadlines(MAP, stage, date(2026, 1, 31)) == {}


def test_a_submitted_claim_meets_the_expiry_and_its_milestone_deadline():
    m_open = domain.MilestoneView("m1", "Wave 1", date(2026, 3, 2), domain.ClaimView(Decimal("400"), C.planned))
    m_sent = domain.MilestoneView("m2", "Wave 2", date(2026, 4, 1), domain.ClaimView(Decimal("600"), C.submitted))
    specs = domain.deadlines("r1", "Acme", S.cash_claim, MAP, date(2026, 1, 31), Decimal("1000"), [m_open, m_sent])
    by_key = {s.key: s for s in specs}
    assert by_key["fund_request:r1:expiry"].status == DeadlineStatus.met
    assert by_key["fund_request:r1:claim"].status == DeadlineStatus.open  # wave 1 is not claimed yet
    assert by_key["fund_request:r1:claim"].amount_at_stake == Decimal("400")
    assert by_key["fund_request:r1:milestone:m1"].status == DeadlineStatus.open
    assert by_key["fund_request:r1:milestone:m2"].status == DeadlineStatus.met
    done = domain.deadlines("r1", "Acme", S.completed, MAP, date(2026, 1, 31), Decimal("1000"), [m_open])
    assert {s.status for s in done} == {DeadlineStatus.met}


def test_milestone_claim_due_by_rule_or_by_hand():
    assert domain.milestone_claim_due(date(2026, 1, 31), MAP, None) == date(2026, 3, 2)
    assert domain.milestone_claim_due(date(2026, 1, 31), MAP, date(2026, 2, 10)) == date(2026, 2, 10)
    with pytest.raises(Invalid, match="before its milestone ends"):
        domain.milestone_claim_due(date(2026, 1, 31), MAP, date(2026, 1, 30))


def test_days_left_count_in_the_deadlines_zone():
    due = date(2026, 3, 2)
    # 03:00 UTC on 2 March is still 1 March in Los Angeles: one day left there, none in UTC.
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    assert days_left(due, "America/Los_Angeles", now) == 1
    assert days_left(due, "UTC", now) == 0
    # Late: negative.
    assert days_left(due, "UTC", datetime(2026, 3, 5, tzinfo=UTC)) == -3
    # 23:30 UTC on 1 March is already 2 March in Tokyo.
    assert days_left(due, "Asia/Tokyo", datetime(2026, 3, 1, 23, 30, tzinfo=UTC)) == 0


def test_end_of_day_follows_daylight_saving():
    # Los Angeles: PST (UTC-8) before 8 March 2026, PDT (UTC-7) after.
    assert end_of_day(date(2026, 3, 6), "America/Los_Angeles") == datetime(2026, 3, 7, 8, 0, tzinfo=UTC)
    assert end_of_day(date(2026, 3, 8), "America/Los_Angeles") == datetime(2026, 3, 9, 7, 0, tzinfo=UTC)
    # The day DST starts is 23 hours long; its end is still local midnight.
    assert end_of_day(date(2026, 3, 7), "America/Los_Angeles") == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)
    assert end_of_day(date(2026, 10, 25), "Europe/Berlin") == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)
    assert end_of_day(date(2026, 10, 24), "Europe/Berlin") == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)


def test_builtin_programs_are_valid_and_named():
    keys = {p.key for p in domain.BUILTIN_PROGRAMS}
    assert {"map", "poa", "mdf", "poc", "box", "gcp_pdf", "gcp_daf"} <= keys
    assert MAP.phases == ("assess", "mobilize", "migrate")
    for prog in domain.BUILTIN_PROGRAMS:
        f.Program.model_validate(prog.model_dump())
