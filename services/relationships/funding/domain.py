"""The rules of funding, with no I/O: the built-in programs, which stage moves AWS's workflow allows,
how claims move, what the amounts add up to, and which deadlines a request has."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from contracts import funding as f
from contracts.deadlines import DeadlineKind, DeadlineStatus, add_days
from contracts.pipeline import Hyperscaler
from contracts.quarters import add_months
from runtime.errors import Invalid

S = f.FundStage
C = f.ClaimStatus

# Seeded programs. AWS documents caps and rules per program and changes them; these are starting values
# an admin corrects on the programs page. BOX is kept as a named program though AWS documents it little.
BUILTIN_PROGRAMS: tuple[f.Program, ...] = (
    f.Program(key="map", name="AWS Migration Acceleration Program (MAP)", hyperscaler=Hyperscaler.aws,
              typical_cap=Decimal("1000000.00"), phases=("assess", "mobilize", "migrate"),
              review_stages=(S.aws_review,), claim_due_months_after_end=1, time_zone="America/Los_Angeles",
              description="Assess, mobilize and migrate phases; the cash claim falls due about a month after "
                          "the project ends."),
    f.Program(key="poa", name="AWS Partner Opportunity Acceleration (POA)", hyperscaler=Hyperscaler.aws,
              typical_cap=Decimal("25000.00"), review_stages=(S.aws_review, S.technical_approval),
              time_zone="America/Los_Angeles"),
    f.Program(key="mdf", name="AWS Marketing Development Funds (MDF)", hyperscaler=Hyperscaler.aws,
              typical_cap=Decimal("50000.00"), time_zone="America/Los_Angeles"),
    f.Program(key="poc", name="AWS Proof of Concept (POC)", hyperscaler=Hyperscaler.aws,
              typical_cap=Decimal("25000.00"), review_stages=(S.aws_review, S.technical_approval),
              time_zone="America/Los_Angeles"),
    f.Program(key="box", name="AWS BOX", hyperscaler=Hyperscaler.aws, time_zone="America/Los_Angeles",
              description="Kept as a named program; AWS publishes little about it."),
    f.Program(key="gcp_pdf", name="Google Cloud Partner Deal Funding", hyperscaler=Hyperscaler.gcp,
              typical_cap=Decimal("50000.00"), review_stages=(S.technical_approval,), time_zone="UTC"),
    f.Program(key="gcp_daf", name="Google Cloud Deal Acceleration Funding (DAF)", hyperscaler=Hyperscaler.gcp,
              typical_cap=Decimal("100000.00"), time_zone="UTC"),
)
BUILTIN: dict[str, f.Program] = {p.key: p for p in BUILTIN_PROGRAMS}

TERMINAL = frozenset({S.completed, S.terminated, S.expired})
CLOSED = frozenset({S.completed, S.terminated, S.expired, S.rejected})
APPROVED = frozenset({S.pre_approved, S.cash_claim, S.completed})
# Claims that AWS has (submitted, approved or paid them).
CLAIMED = frozenset({C.submitted, C.approved, C.paid})


def review_path(program: f.Program) -> list[f.FundStage]:
    """The stages a submitted request passes through, in order, up to pre-approval."""
    return [S.submitted, *[s for s in f.REVIEW_STAGES if s in program.review_stages],
            S.business_approval, S.finance_approval, S.pre_approved]


def next_stages(stage: f.FundStage, program: f.Program) -> list[f.FundStage]:
    """Where a request may be moved by hand from `stage` (cash claim also follows the first claim)."""
    if stage == S.draft:
        return [S.submitted, S.terminated]
    if stage == S.rejected:
        return [S.draft, S.terminated]
    path = review_path(program)
    if stage in path[:-1]:
        return [path[path.index(stage) + 1], S.rejected, S.terminated]
    if stage not in path and stage in f.REVIEW_STAGES:
        # A review stage the program no longer lists (its configuration changed while the request was in it).
        return [S.business_approval, S.rejected, S.terminated]
    if stage == S.pre_approved:
        return [S.cash_claim, S.terminated, S.expired]
    if stage == S.cash_claim:
        return [S.completed, S.terminated, S.expired]
    return []


@dataclass(frozen=True)
class ClaimView:
    """What the rules need of a milestone."""

    amount: Decimal
    status: f.ClaimStatus
    received: Decimal = Decimal(0)


def check_move(stage: f.FundStage, to: f.FundStage, program: f.Program, claims: Sequence[ClaimView]) -> None:
    label = f.STAGE_LABELS
    if to == stage:
        raise Invalid(f"the request is already in {label[stage]}", field="to_stage")
    if to not in next_stages(stage, program):
        allowed = ", ".join(label[s] for s in next_stages(stage, program)) or "nowhere (it is closed)"
        raise Invalid(f"cannot move a fund request from {label[stage]} to {label[to]}; from {label[stage]} it "
                      f"may go to {allowed}", field="to_stage")
    if to == S.cash_claim and not any(c.status in CLAIMED for c in claims):
        raise Invalid("cannot move to Cash Claim before a milestone's claim is submitted", field="to_stage")
    if to == S.completed:
        if not any(c.status == C.paid for c in claims):
            raise Invalid("cannot complete a fund request before a claim is paid", field="to_stage")
        if any(c.status in (C.submitted, C.approved) for c in claims):
            raise Invalid("cannot complete a fund request while a claim is still submitted or approved",
                          field="to_stage")


# What a claim may become next.
CLAIM_MOVES: dict[f.ClaimStatus, frozenset[f.ClaimStatus]] = {
    C.planned: frozenset({C.submitted}),
    C.submitted: frozenset({C.approved, C.rejected}),
    C.approved: frozenset({C.paid, C.rejected}),
    C.rejected: frozenset({C.submitted}),
    C.paid: frozenset(),
}


def next_claims(stage: f.FundStage, current: f.ClaimStatus) -> list[f.ClaimStatus]:
    if stage not in (S.pre_approved, S.cash_claim):
        return []
    return [c for c in f.ClaimStatus if c in CLAIM_MOVES[current]]


def check_claim(stage: f.FundStage, current: f.ClaimStatus, to: f.ClaimStatus) -> None:
    if to not in CLAIM_MOVES[current]:
        allowed = ", ".join(sorted(CLAIM_MOVES[current])) or "nothing (it is paid)"
        raise Invalid(f"cannot move a claim from {current} to {to}; it may become {allowed}", field="claim_status")
    if stage not in (S.pre_approved, S.cash_claim):
        raise Invalid(f"claims are made once the request is pre-approved (it is in {f.STAGE_LABELS[stage]})",
                      field="claim_status")


def amounts(claims: Sequence[ClaimView]) -> tuple[Decimal, Decimal]:
    """(claimed, received): claims submitted, approved or paid; what was paid on them."""
    claimed = sum((c.amount for c in claims if c.status in CLAIMED), Decimal(0))
    received = sum((c.received for c in claims if c.status == C.paid), Decimal(0))
    return claimed, received


def check_milestone_total(claims: Sequence[ClaimView], requested: Decimal, approved: Decimal | None) -> None:
    ceiling = approved if approved is not None else requested
    total = sum((c.amount for c in claims), Decimal(0))
    if total > ceiling:
        what = "approved" if approved is not None else "requested"
        raise Invalid(f"the milestones' claims add up to {total}, more than the {ceiling} {what}", field="amount")


def check_dates(start: date, end: date) -> None:
    if end < start:
        raise Invalid("the activity cannot end before it starts", field="activity_end")


def milestone_claim_due(end_date: date, program: f.Program, explicit: date | None) -> date:
    if explicit is not None:
        if explicit < end_date:
            raise Invalid("a claim cannot fall due before its milestone ends", field="claim_due_date")
        return explicit
    return add_days(end_date, program.milestone_claim_days) if program.milestone_claim_days else end_date


# ------------------------------------------------------------------------------------- deadlines


@dataclass(frozen=True)
class DeadlineSpec:
    """A deadline as the rules see it; the service adds the key's version, times and link."""

    key: str
    kind: DeadlineKind
    status: DeadlineStatus
    title: str
    due_date: date
    amount_at_stake: Decimal | None


@dataclass(frozen=True)
class MilestoneView:
    id: str
    name: str
    claim_due_date: date
    claim: ClaimView


def deadlines(request_id: str, title: str, stage: f.FundStage, program: f.Program, activity_end: date,
              approved: Decimal | None, milestones: Sequence[MilestoneView]) -> list[DeadlineSpec]:
    """The deadlines a request has now. Before pre-approval it has none (nothing to lose yet); a deadline
    it had and no longer has is cancelled by the caller."""
    if stage not in APPROVED:
        return []  # not approved yet, or rejected / terminated / expired: every deadline it had is cancelled
    claims = [m.claim for m in milestones]
    claimed, _ = amounts(claims)
    at_stake = (approved or Decimal(0)) - claimed
    done = stage == S.completed
    out: list[DeadlineSpec] = []
    base = f"fund_request:{request_id}"
    if program.expires_days_after_end:
        any_claim = any(c.status in CLAIMED for c in claims)
        out.append(DeadlineSpec(
            key=f"{base}:expiry", kind=DeadlineKind.fund_request_expiry,
            status=DeadlineStatus.met if done or any_claim else DeadlineStatus.open,
            title=f"{program.name}: '{title}' expires without a claim",
            due_date=add_days(activity_end, program.expires_days_after_end), amount_at_stake=approved))
    if program.claim_due_months_after_end:
        all_claimed = bool(claims) and all(c.status in CLAIMED for c in claims)
        out.append(DeadlineSpec(
            key=f"{base}:claim", kind=DeadlineKind.fund_claim_due,
            status=DeadlineStatus.met if done or all_claimed else DeadlineStatus.open,
            title=f"{program.name}: claim for '{title}' falls due",
            due_date=add_months(activity_end, program.claim_due_months_after_end),
            amount_at_stake=max(at_stake, Decimal(0))))
    for m in milestones:
        out.append(DeadlineSpec(
            key=f"{base}:milestone:{m.id}", kind=DeadlineKind.milestone_claim_due,
            status=DeadlineStatus.met if done or m.claim.status in CLAIMED else DeadlineStatus.open,
            title=f"{program.name}: claim for milestone '{m.name}' of '{title}' falls due",
            due_date=m.claim_due_date, amount_at_stake=m.claim.amount))
    return out
