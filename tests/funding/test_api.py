"""The funding API and pages through the real gateway, pipeline and relationships services: who may do
what, a request walked from draft to claim over HTTP with every change audited, illegal moves and
hostile bodies answered 422 with the field named, and the pages rendering what the service holds."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from contracts.deadlines import days_left
from contracts.quarters import Quarter
from gateway.auth import Role
from runtime.testing import eventually
from tests.funding.conftest import call

DRAFT = {"program": "mdf", "title": "Re:Invent booth", "requested": "20000.00", "activity_start": "2026-11-01",
         "activity_end": "2026-11-30"}


async def test_roles_viewers_read_members_write_admins_configure(gw):
    assert (await call(gw, Role.viewer, "GET", "/api/funding/requests")).status_code == 200
    assert (await call(gw, Role.viewer, "POST", "/api/funding/requests", DRAFT)).status_code == 403
    created = await call(gw, Role.member, "POST", "/api/funding/requests", DRAFT)
    assert created.status_code == 201, created.text
    programs = (await call(gw, Role.viewer, "GET", "/api/funding/programs")).json()["items"]
    box = next(p for p in programs if p["key"] == "box") | {"typical_cap": "9000.00"}
    assert (await call(gw, Role.manager, "PUT", "/api/funding/programs/box", box)).status_code == 403
    saved = await call(gw, Role.admin, "PUT", "/api/funding/programs/box", box)
    assert saved.status_code == 200 and saved.json()["typical_cap"] == "9000.00"
    mismatch = await call(gw, Role.admin, "PUT", "/api/funding/programs/mdf", box)
    assert mismatch.status_code == 422
    audit = (await call(gw, Role.admin, "GET", "/api/audit?entity=funding_program")).json()
    assert audit[0]["action"] == "funding_program.defined" and audit[0]["after"]["typical_cap"] == "9000.00"


async def test_a_request_walks_to_its_claim_over_http_and_every_change_is_audited(gw):
    r = (await call(gw, Role.member, "POST", "/api/funding/requests", DRAFT | {"title": "Walk"})).json()
    rid = r["id"]
    for stage in ("submitted", "business_approval", "finance_approval"):
        moved = await call(gw, Role.member, "POST", f"/api/funding/requests/{rid}/moves", {"to_stage": stage})
        assert moved.status_code == 200, moved.text
    illegal = await call(gw, Role.member, "POST", f"/api/funding/requests/{rid}/moves", {"to_stage": "completed"})
    assert illegal.status_code == 422
    assert "from Finance Approval to Completed" in illegal.text
    moved = await call(gw, Role.member, "POST", f"/api/funding/requests/{rid}/moves",
                       {"to_stage": "pre_approved", "approved": "18000.50"})
    assert moved.json()["approved"] == "18000.50"
    added = await call(gw, Role.member, "POST", f"/api/funding/requests/{rid}/milestones",
                       {"name": "Booth", "end_date": "2026-11-30", "amount": "18000.50"})
    assert added.status_code == 201
    milestone = added.json()["milestones"][0]
    assert milestone["next_claim_statuses"] == ["submitted"]
    claimed = await call(gw, Role.member, "POST", f"/api/funding/requests/{rid}/milestones/{milestone['id']}/claim",
                         {"claim_status": "submitted"})
    assert claimed.json()["stage"] == "cash_claim" and claimed.json()["claimed"] == "18000.50"
    actions = [a["action"] for a in (await call(gw, Role.admin, "GET", "/api/audit?entity=fund_request&limit=500"))
               .json() if a["entity_id"] == rid]
    assert actions.count("fund_request.moved") == 4
    assert {"fund_request.created", "fund_request.milestone_added", "fund_request.claim_changed"} <= set(actions)
    # The actor is the verified principal, never a body field.
    extra = await call(gw, Role.member, "POST", f"/api/funding/requests/{rid}/moves",
                       {"to_stage": "completed", "actor": "someone@else"})
    assert extra.status_code == 422


async def test_an_unknown_partner_is_refused_by_field(gw):
    r = await call(gw, Role.member, "POST", "/api/funding/requests", DRAFT | {"partner_id": str(uuid.uuid4())})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "partner_id"


@pytest.mark.parametrize("body", [
    DRAFT | {"title": "nul\x00"}, DRAFT | {"requested": "-5"}, DRAFT | {"requested": "1e300"},
    DRAFT | {"activity_start": 1700000000}, DRAFT | {"activity_end": "9999-12-31"}, DRAFT | {"program": "../x"},
    DRAFT | {"opportunities": [{"ace_id": "x" * 65}]}, DRAFT | {"unknown": 1}, {"program": "map"},
])
async def test_hostile_bodies_are_422_never_500(gw, body):
    r = await call(gw, Role.member, "POST", "/api/funding/requests", body)
    assert r.status_code == 422, r.text


async def test_missing_and_malformed_ids(gw):
    assert (await call(gw, Role.viewer, "GET", f"/api/funding/requests/{uuid.uuid4()}")).status_code == 404
    assert (await call(gw, Role.viewer, "GET", "/api/funding/requests/not-a-uuid")).status_code == 422
    assert (await call(gw, Role.viewer, "GET", "/api/funding/requests?limit=100000")).status_code == 422


async def test_the_tracker_and_request_pages(gw):
    r = (await call(gw, Role.member, "POST", "/api/funding/requests", DRAFT | {"title": "Page test"})).json()
    viewer = gw.people[Role.viewer].client
    page = await viewer.get("/funding", headers={"accept": "text/html"})
    assert page.status_code == 200 and "Page test" in page.text and "Created (draft)" in page.text
    assert "New fund request" not in page.text  # viewers do not get the form
    listing = await viewer.get("/funding?view=list", headers={"accept": "text/html"})
    assert "Page test" in listing.text
    detail = await viewer.get(f"/funding/{r['id']}", headers={"accept": "text/html"})
    assert detail.status_code == 200 and "deadlines start when the request is pre-approved" in detail.text
    missing = await viewer.get(f"/funding/{uuid.uuid4()}", headers={"accept": "text/html"})
    assert missing.status_code == 404


async def test_the_new_request_form_shows_errors_beside_fields(gw):
    member = gw.people[Role.member]
    r = await member.client.post("/funding", data={"csrf_token": member.csrf, "program": "map", "title": "",
                                                   "requested": "abc", "activity_start": "2026-01-01",
                                                   "activity_end": "2026-02-01"},
                                 headers={"accept": "text/html"})
    assert r.status_code == 422
    assert 'data-field="title"' in r.text or 'data-field="requested"' in r.text
    form = {"csrf_token": member.csrf, "program": "map", "title": "Form made", "phase": "assess",
            "requested": "1000", "activity_start": "2026-01-01", "activity_end": "2026-02-01",
            "opportunities": "O1234567"}
    ok = await member.client.post("/funding", data=form, headers={"accept": "text/html"})
    assert ok.status_code == 303 and ok.headers["location"].startswith("/funding/")


# ------------------------------------------------------------------------------ goals, competencies


async def test_a_launched_co_sell_deal_counts_toward_its_goal_end_to_end(gw):
    quarter = Quarter.calendar_of(datetime.now(UTC).date()).label
    goal = await call(gw, Role.member, "POST", "/api/goals", {"hyperscaler": "aws", "period": quarter,
                                                               "metric": "launched_opportunities", "target": "3"})
    assert goal.status_code == 201, goal.text
    gid = goal.json()["id"]
    deal = await call(gw, Role.member, "POST", "/api/opportunities", {
        "name": "Launch me", "customer": "Acme", "amount": "50000", "deal_model": "cosell", "hyperscaler": "aws"})
    assert deal.status_code == 201, deal.text
    moved = await call(gw, Role.member, "POST", f"/api/opportunities/{deal.json()['id']}/stage", {"stage": "launched"})
    assert moved.status_code == 200, moved.text

    async def counted() -> dict | None:
        detail = (await call(gw, Role.viewer, "GET", f"/api/goals/{gid}")).json()
        return detail if detail["progress"] == "1" else None

    detail = await eventually(counted, "the launch counted toward the goal")
    assert [c["name"] for c in detail["contributions"]] == ["Launch me"]
    page = await gw.people[Role.viewer].client.get(f"/goals/{gid}", headers={"accept": "text/html"})
    assert page.status_code == 200 and "Launch me" in page.text and "launched in the period" in page.text
    board = await gw.people[Role.viewer].client.get("/goals", headers={"accept": "text/html"})
    assert 'data-testid="goals-aws"' in board.text


async def test_goal_and_competency_writes_need_members_and_are_audited(gw):
    body = {"hyperscaler": "gcp", "period": "2026", "metric": "certifications", "target": "12",
            "manual_progress": "4"}
    assert (await call(gw, Role.viewer, "POST", "/api/goals", body)).status_code == 403
    goal = (await call(gw, Role.member, "POST", "/api/goals", body)).json()
    patched = await call(gw, Role.member, "PATCH", f"/api/goals/{goal['id']}", {"manual_progress": "5"})
    assert patched.json()["progress"] == "5"
    bad = await call(gw, Role.member, "POST", "/api/goals", body | {"period": "2026-Q9"})
    assert bad.status_code == 422
    c = await call(gw, Role.member, "POST", "/api/competencies", {
        "hyperscaler": "gcp", "name": "Data Analytics", "kind": "specialization", "renewal_date": "2027-06-30"})
    assert c.status_code == 201, c.text
    cid = c.json()["id"]
    item = await call(gw, Role.member, "POST", f"/api/competencies/{cid}/requirements",
                      {"kind": "customer_reference", "title": "3 references", "required": 3, "due_date": "2027-03-01"})
    rid = item.json()["requirements"][0]["id"]
    done = await call(gw, Role.member, "PATCH", f"/api/competencies/{cid}/requirements/{rid}", {"done": 3})
    assert done.json()["complete_items"] == 1
    too_many = await call(gw, Role.member, "PATCH", f"/api/competencies/{cid}/requirements/{rid}", {"done": 4})
    assert too_many.status_code == 422
    actions = {a["action"] for a in (await call(gw, Role.admin, "GET", "/api/audit?limit=500")).json()}
    assert {"goal.created", "goal.updated", "competency.created", "competency.requirement_added",
            "competency.requirement_changed"} <= actions
    page = await gw.people[Role.viewer].client.get(f"/competencies/{cid}", headers={"accept": "text/html"})
    assert page.status_code == 200 and "3 references" in page.text and "1 of 1 done" in page.text


async def test_the_dashboard_cards_follow_the_relationships_events(gw):
    year = datetime.now(UTC).year
    end = datetime.now(UTC).date().isoformat()
    r = (await call(gw, Role.member, "POST", "/api/funding/requests", DRAFT | {
        "title": "Dashboard MDF", "activity_start": f"{year}-01-01", "activity_end": end})).json()
    for stage in ("submitted", "business_approval", "finance_approval", "pre_approved"):
        await call(gw, Role.member, "POST", f"/api/funding/requests/{r['id']}/moves", {"to_stage": stage})
    await call(gw, Role.member, "POST", "/api/goals", {"hyperscaler": "gcp", "period": str(year),
                                                        "metric": "custom", "target": "4", "manual_progress": "1",
                                                        "name": "Joint webinars"})
    viewer = gw.people[Role.viewer].client

    async def both_cards() -> str | None:
        page = (await viewer.get("/", headers={"accept": "text/html"})).text
        return page if "Dashboard MDF" in page and "Joint webinars" in page else None

    page = await eventually(both_cards, "the request and the goal on the dashboard")
    # It expires 30 days after the activity ends (today, UTC), counted in Los Angeles (the program's zone).
    left = days_left(date.fromisoformat(end) + timedelta(days=30), "America/Los_Angeles", datetime.now(UTC))
    assert "Dashboard MDF" in page and f"in {left} days" in page
    assert f"created in calendar {year} (UTC)" in page
    assert "Joint webinars" in page


async def test_the_read_model_keeps_the_newest_snapshot_whatever_the_order(gw, private_nats):
    """Fund request events twice and out of order, and a hostile one, into the gateway's read model."""
    from contracts import funding as fc
    from gateway.read_models.funding import FundingRequestView
    from runtime import bus, deadletter
    from tests.support.bus import publish

    r = (await call(gw, Role.member, "POST", "/api/funding/requests", DRAFT | {"title": "Ordering v1"})).json()
    snapshot = fc.FundRequest.model_validate(r)
    newer = snapshot.model_copy(update={"version": 50, "title": "Ordering v50"})
    older = snapshot.model_copy(update={"version": 40, "title": "Ordering v40"})
    nc = await bus.connect(private_nats, name="test-read-model")
    try:
        first = fc.FundRequestUpdatedV1(fund_request=newer)
        await publish(nc, first)
        await publish(nc, first, msg_id=str(uuid.uuid4()))  # the same event again, past the broker's de-duplication
        await publish(nc, fc.FundRequestUpdatedV1(fund_request=older))
        # Newest by version, so it is not just outranked: an amount no column holds.
        hostile = json.loads(fc.FundRequestUpdatedV1(fund_request=older).model_dump_json())
        hostile["fund_request"] |= {"requested": "-1e400", "version": 60}
        await publish(nc, fc.FundRequestUpdatedV1(fund_request=older), data=json.dumps(hostile).encode(),
                      msg_id=str(uuid.uuid4()))
        async def parked() -> list:
            return [x for x in await deadletter.list_all(nc.jetstream(), consumer=None)
                    if x.consumer == "gateway__relationships_fund_request_updated_v1"]

        await eventually(parked, "the hostile event parked with its reason")
        async with gw.app.state.running.sessions() as session:
            row = await session.get(FundingRequestView, snapshot.id)
        assert row is not None and (row.version, row.title) == (50, "Ordering v50")
    finally:
        await nc.close()


async def test_the_programs_page_admins_edit_others_read(gw):
    viewer = gw.people[Role.viewer].client
    page = await viewer.get("/funding/programs", headers={"accept": "text/html"})
    assert page.status_code == 200 and "AWS Migration Acceleration Program (MAP)" in page.text
    assert "Edit</a>" not in page.text
    admin = gw.people[Role.admin]
    form = (await admin.client.get("/funding/programs?edit=poa", headers={"accept": "text/html"})).text
    assert 'data-testid="program-form"' in form
    bad = await admin.client.post("/funding/programs/poa", data={"csrf_token": admin.csrf, "time_zone": "Nowhere/X",
                                                                 "active": "on"}, headers={"accept": "text/html"})
    assert bad.status_code == 422 and "not an IANA time zone" in bad.text
    ok = await admin.client.post("/funding/programs/poa", data={"csrf_token": admin.csrf, "typical_cap": "30000",
                                                                "expires_days_after_end": "45", "time_zone": "UTC",
                                                                "active": "on"}, headers={"accept": "text/html"})
    assert ok.status_code == 303
    poa = next(p for p in (await call(gw, Role.viewer, "GET", "/api/funding/programs")).json()["items"]
               if p["key"] == "poa")
    assert (Decimal(poa["typical_cap"]), poa["expires_days_after_end"], poa["time_zone"]) == (30000, 45, "UTC")
    member = gw.people[Role.member]
    denied = await member.client.post("/funding/programs/poa", data={"csrf_token": member.csrf},
                                      headers={"accept": "text/html"})
    assert denied.status_code == 403
