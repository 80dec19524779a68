"""Fund requests through the relationships service on real NATS and Postgres: a request walks AWS's
stages to completion with its moves recorded, illegal moves and hostile input are refused with the
field named, and every change publishes its snapshot and its deadlines."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from contracts import deadlines as d
from contracts import funding as f
from contracts.base import ErrorKind
from runtime.commands import send
from runtime.errors import CommandFailed
from tests.funding.conftest import published

S = f.FundStage


async def make(nc, program: str = "map", **kw) -> f.FundRequest:
    body = {"program": program, "title": f"Acme migration {uuid.uuid4().hex[:6]}", "requested": Decimal("100000.00"),
            "activity_start": date(2026, 1, 5), "activity_end": date(2026, 1, 31), "actor": "pm@example.com", **kw}
    return await send(nc, f.CreateFundRequest(**body))


async def move(nc, r: f.FundRequest, to: f.FundStage, **kw) -> f.FundRequest:
    return await send(nc, f.MoveFundRequest(request_id=r.id, to_stage=to, actor="pm@example.com", **kw))


async def failure(coro) -> CommandFailed:
    with pytest.raises(CommandFailed) as err:
        await coro
    return err.value


async def test_a_map_request_walks_awss_stages_from_draft_to_completed(nc):
    r = await make(nc, phase="migrate", aws_fund_request_id=f"FR-{uuid.uuid4().hex[:10]}",
                   opportunities=[f.OpportunityLink(ace_id="O1234567")])
    assert (r.stage, r.stage_label, r.currency, r.version) == (S.draft, "Created (draft)", "USD", 1)
    assert r.deadlines == []  # nothing to lose before approval
    for stage in (S.submitted, S.aws_review, S.business_approval, S.finance_approval):
        r = await move(nc, r, stage)
    r = await move(nc, r, S.pre_approved, approved=Decimal("80000.00"), note="approved by PDM")
    assert r.approved == Decimal("80000.00")
    kinds = {x.kind: x for x in r.deadlines}
    assert kinds[d.DeadlineKind.fund_request_expiry].due_date == date(2026, 3, 2)
    assert kinds[d.DeadlineKind.fund_claim_due].due_date == date(2026, 2, 28)
    assert kinds[d.DeadlineKind.fund_claim_due].time_zone == "America/Los_Angeles"

    r = await send(nc, f.AddMilestone(request_id=r.id, name="Wave 1", end_date=date(2026, 1, 31),
                                      amount=Decimal("50000.00")))
    r = await send(nc, f.AddMilestone(request_id=r.id, name="Wave 2", end_date=date(2026, 1, 31),
                                      amount=Decimal("30000.00"), claim_due_date=date(2026, 2, 15)))
    wave1, wave2 = r.milestones
    assert (wave1.claim_due_date, wave2.claim_due_date) == (date(2026, 3, 2), date(2026, 2, 15))

    r = await send(nc, f.UpdateMilestoneClaim(request_id=r.id, milestone_id=wave1.id, claim_status="submitted",
                                              actor="pm@example.com"))
    assert r.stage == S.cash_claim  # the first claim moves the request to Cash Claim
    assert r.claimed == Decimal("50000.00")
    for status in ("approved", "paid"):
        r = await send(nc, f.UpdateMilestoneClaim(request_id=r.id, milestone_id=wave1.id, claim_status=status,
                                                  received=Decimal("49000.00") if status == "paid" else None))
    assert r.received == Decimal("49000.00")
    kinds = {x.kind: x for x in r.deadlines if x.kind != d.DeadlineKind.milestone_claim_due}
    assert kinds[d.DeadlineKind.fund_request_expiry].status == d.DeadlineStatus.met
    assert kinds[d.DeadlineKind.fund_claim_due].status == d.DeadlineStatus.open  # wave 2 is still unclaimed

    r = await send(nc, f.UpdateMilestoneClaim(request_id=r.id, milestone_id=wave2.id, claim_status="submitted"))
    r = await send(nc, f.UpdateMilestoneClaim(request_id=r.id, milestone_id=wave2.id, claim_status="rejected"))
    r = await send(nc, f.UpdateMilestoneClaim(request_id=r.id, milestone_id=wave2.id, claim_status="submitted"))
    r = await send(nc, f.UpdateMilestoneClaim(request_id=r.id, milestone_id=wave2.id, claim_status="approved"))
    r = await send(nc, f.UpdateMilestoneClaim(request_id=r.id, milestone_id=wave2.id, claim_status="paid"))
    r = await move(nc, r, S.completed)
    assert r.next_stages == []
    assert [(m.from_stage, m.to_stage) for m in r.history] == [
        (None, S.draft), (S.draft, S.submitted), (S.submitted, S.aws_review), (S.aws_review, S.business_approval),
        (S.business_approval, S.finance_approval), (S.finance_approval, S.pre_approved),
        (S.pre_approved, S.cash_claim), (S.cash_claim, S.completed)]
    assert all(m.moved_by == "pm@example.com" for m in r.history if m.to_stage != S.completed)
    assert r.history[5].note == "approved by PDM"
    assert {x.status for x in r.deadlines} == {d.DeadlineStatus.met}
    assert (r.claimed, r.received) == (Decimal("80000.00"), Decimal("79000.00"))

    # Published: the snapshot at every change, and each deadline's versions.
    moves = await published(nc, f.FundRequestStageChangedV1.subject, count=7,
                            where=lambda b: b["fund_request"]["id"] == str(r.id))
    assert [b["to_stage"] for b in moves][-1] == "completed"
    expiry = await published(nc, d.DeadlineChangedV1.subject, count=2,
                             where=lambda b: b["deadline"]["key"] == f"fund_request:{r.id}:expiry")
    assert [b["deadline"]["status"] for b in expiry] == ["open", "met"]
    assert [b["deadline"]["version"] for b in expiry] == [1, 2]
    assert expiry[0]["deadline"]["due_at"].startswith("2026-03-03T08:00:00")  # midnight after 2 March, LA
    assert expiry[0]["deadline"]["link"] == f"/funding/{r.id}"
    assert expiry[0]["deadline"]["amount_at_stake"] == "80000.00"


async def test_an_illegal_move_is_refused_naming_the_transition(nc):
    r = await make(nc)
    err = await failure(move(nc, r, S.pre_approved))
    assert err.error.kind == ErrorKind.invalid and err.error.field == "to_stage"
    assert "from Created (draft) to Pre-Approval" in err.error.message
    r = await move(nc, r, S.submitted)
    err = await failure(move(nc, r, S.technical_approval))  # MAP has no Tech Approval
    assert "from Submitted to Tech Approval" in err.error.message
    r = await move(nc, r, S.rejected, note="missing SOW")
    r = await move(nc, r, S.draft)
    r = await move(nc, r, S.terminated)
    err = await failure(move(nc, r, S.draft))
    assert "nowhere (it is closed)" in err.error.message
    stored = await send(nc, f.GetFundRequest(request_id=r.id))
    assert stored.stage == S.terminated and stored.version == r.version


async def test_amounts_and_dates_lock_once_submitted_and_approval_cannot_exceed_the_request(nc):
    r = await make(nc, program="mdf", requested=Decimal("1000.00"))
    r = await send(nc, f.UpdateFundRequest(request_id=r.id, requested=Decimal("1200.00")))
    assert r.requested == Decimal("1200.00")
    r = await move(nc, r, S.submitted)
    err = await failure(send(nc, f.UpdateFundRequest(request_id=r.id, requested=Decimal("1.00"))))
    assert err.error.field == "requested" and "AWS locks it" in err.error.message
    r = await send(nc, f.UpdateFundRequest(request_id=r.id, title="Renamed"))  # still allowed
    assert r.title == "Renamed"
    for stage in (S.business_approval, S.finance_approval):
        r = await move(nc, r, stage)
    err = await failure(move(nc, r, S.pre_approved, approved=Decimal("1200.01")))
    assert err.error.field == "approved"
    err = await failure(send(nc, f.UpdateFundRequest(request_id=r.id, title="x", expected_version=1)))
    assert err.error.kind == ErrorKind.conflict


async def test_milestones_cannot_claim_more_than_approved_nor_claim_before_approval(nc):
    r = await make(nc, program="mdf", requested=Decimal("1000.00"))
    r = await send(nc, f.AddMilestone(request_id=r.id, name="Event", end_date=date(2026, 1, 31),
                                      amount=Decimal("600.00")))
    err = await failure(send(nc, f.AddMilestone(request_id=r.id, name="More", end_date=date(2026, 1, 31),
                                                amount=Decimal("400.01"))))
    assert err.error.field == "amount"
    err = await failure(send(nc, f.UpdateMilestoneClaim(request_id=r.id, milestone_id=r.milestones[0].id,
                                                        claim_status="submitted")))
    assert "once the request is pre-approved" in err.error.message
    err = await failure(send(nc, f.UpdateMilestoneClaim(request_id=r.id, milestone_id=uuid.uuid4(),
                                                        claim_status="submitted")))
    assert err.error.kind == ErrorKind.not_found


async def test_the_same_aws_id_on_two_requests_is_a_conflict(nc):
    aws_id = f"FR-{uuid.uuid4().hex[:12]}"
    await make(nc, aws_fund_request_id=aws_id)
    err = await failure(make(nc, aws_fund_request_id=aws_id))
    assert err.error.kind == ErrorKind.conflict and err.error.field == "aws_fund_request_id"


@pytest.mark.parametrize(("field", "value"), [
    ("title", "bad\x00title"), ("title", "x" * 201), ("title", ""), ("requested", "1e20"), ("requested", "-1"),
    ("requested", "0.001"), ("activity_start", 0), ("activity_start", "1066-10-14"), ("program", "nope"),
    ("program", "MAP; DROP TABLE"), ("aws_fund_request_id", "FR 1"), ("phase", "launch"),
    ("opportunities", [{}]), ("opportunities", [{"ace_id": "O1"}] * 51), ("activity_end", "2025-12-31"),
])
async def test_hostile_input_is_refused_with_the_field_named(nc, field, value):
    body = {"program": "map", "title": "Hostile", "requested": "10.00", "activity_start": "2026-01-05",
            "activity_end": "2026-01-31", field: value}
    reply = await nc.request(f.CreateFundRequest.subject, json.dumps(body).encode(), timeout=10)
    answer = json.loads(reply.data)
    assert answer["ok"] is False, answer
    assert answer["error"]["kind"] == "invalid"
    assert (answer["error"]["field"] or "").split(".")[0] == field


async def test_a_deeply_nested_command_is_refused_not_crashing(nc):
    nested = "[" * 5000 + "]" * 5000
    reply = await nc.request(f.CreateFundRequest.subject, f'{{"program": "map", "opportunities": {nested}}}'.encode(),
                             timeout=10)
    assert b'"ok": false' in reply.data


async def test_the_list_filters_by_stage_and_deadlines_and_sorts_by_the_next_deadline(nc):
    soon = await make(nc, program="mdf", activity_start=date.today() - timedelta(days=40),
                      activity_end=date.today() - timedelta(days=25))
    for stage in (S.submitted, S.business_approval, S.finance_approval, S.pre_approved):
        soon = await move(nc, soon, stage)
    page = await send(nc, f.ListFundRequests(due_within_days=7, sort="next_deadline", limit=500))
    assert soon.id in [x.id for x in page.items]
    page = await send(nc, f.ListFundRequests(stage=S.pre_approved, limit=500))
    assert all(x.stage == S.pre_approved for x in page.items) and soon.id in [x.id for x in page.items]
    page = await send(nc, f.ListFundRequests(q=soon.title, limit=500))
    assert [x.id for x in page.items] == [soon.id]


async def test_programs_are_seeded_and_configurable(nc):
    programs = {p.key: p for p in (await send(nc, f.ListPrograms())).items}
    assert {"map", "poa", "mdf", "poc", "box", "gcp_pdf", "gcp_daf"} <= set(programs)
    changed = programs["box"].model_copy(update={"typical_cap": Decimal("5000.00"), "time_zone": "Europe/Berlin"})
    saved = await send(nc, f.DefineProgram(program=changed))
    assert saved.version == 1 and saved.typical_cap == Decimal("5000.00")
    again = {p.key: p for p in (await send(nc, f.ListPrograms())).items}["box"]
    assert again.time_zone == "Europe/Berlin"
    err = await failure(send(nc, f.DefineProgram(program=changed.model_copy(update={"time_zone": "Mars/Olympus"}))))
    assert err.error.kind == ErrorKind.invalid


async def test_the_rollup_counts_sent_requests_per_currency_and_roi_from_linked_won_deals(nc, service):
    from datetime import UTC, datetime

    from contracts import pipeline as p
    from tests.support.bus import publish, settled

    partner = uuid.uuid4()
    won_id, ace = uuid.uuid4(), f"O{uuid.uuid4().int % 10**7:07d}"
    at = datetime(2026, 3, 1, tzinfo=UTC)
    deal = p.Opportunity(
        id=won_id, version=2, name="won co-sell", pipeline="cosell", stage="launched", stage_name="Launched",
        probability=100, outcome=p.Outcome.won, partner_id=partner, customer="Acme", amount=Decimal("90000.00"),
        currency="USD", expected_close_date=None, owner=None, deal_model="cosell", source=p.Source.aws,
        external_id=ace, hyperscaler="aws", created_at=at, updated_at=at, stage_entered_at=at, closed_at=at,
        launched_at=at)
    await publish(nc, p.OpportunityStageChangedV1(opportunity=deal, from_stage="committed", to_stage="launched",
                                                  changed_by=None, changed_at=at))
    await settled(nc, service)
    # Linked twice (by id and by ACE id on another request): the deal counts once.
    r = await make(nc, program="mdf", partner_id=partner, requested=Decimal("30000.00"),
                   opportunities=[f.OpportunityLink(opportunity_id=won_id)])
    other = await make(nc, program="mdf", partner_id=partner, requested=Decimal("1000.00"),
                       opportunities=[f.OpportunityLink(ace_id=ace)])
    draft = await make(nc, program="mdf", partner_id=partner, requested=Decimal("5.00"))
    for stage in (S.submitted, S.business_approval, S.finance_approval, S.pre_approved):
        r = await move(nc, r, stage)
        other = await move(nc, other, stage)
    r = await send(nc, f.AddMilestone(request_id=r.id, name="all", end_date=date(2026, 1, 31),
                                      amount=Decimal("30000.00")))
    for status in ("submitted", "approved", "paid"):
        r = await send(nc, f.UpdateMilestoneClaim(request_id=r.id, milestone_id=r.milestones[0].id,
                                                  claim_status=status))
    rollup = await send(nc, f.GetFundingRollup())
    mine = [x for x in rollup.by_partner if x.group == str(partner)]
    assert [(x.currency, x.requests, x.requested, x.received) for x in mine] == [
        ("USD", 2, Decimal("31000.00"), Decimal("30000.00"))]  # the draft is not counted
    roi = next(x for x in rollup.roi if x.partner_id == partner)
    assert (roi.won_revenue, roi.won_deals, roi.roi) == (Decimal("90000.00"), 1, Decimal("3.00"))
    assert "not drafts" in rollup.scope and draft.stage == S.draft
