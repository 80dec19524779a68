"""Onboarding plans: the playbook's four weeks as the default template, a plan for every new partner
(once, however often the event comes), steps done and reassigned, a late step on its owner's
attention list and off it once done, the template edited (new partners only), time to the first
opportunity per partner type; hostile input refused with the field named."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts import onboarding as oc
from contracts import pipeline as pc
from gateway.auth import Role
from runtime import bus
from runtime.embedded import EmbeddedNats
from runtime.testing import eventually
from services.relationships.onboarding.service import due_date
from tests.support.gateway import Gateway


async def call(g: Gateway, role: Role, method: str, url: str, body: object = None, **kw):
    person = g.people[role]
    return await person.client.request(method, url, json=body, headers={"x-csrf-token": person.csrf,
                                                                          "accept": "application/json"}, **kw)


async def new_partner(g: Gateway, *, kind: str = "isv", owner: Role = Role.member) -> dict:
    r = await call(g, Role.member, "POST", "/api/partners", {"name": f"Onb {uuid.uuid4().hex[:8]}", "type": kind,
                                                              "owner": g.people[owner].email})
    assert r.status_code == 201, r.text
    return r.json()


async def plan_of(g: Gateway, partner_id: str) -> dict:
    async def ready():
        r = await call(g, Role.viewer, "GET", f"/api/partners/{partner_id}/onboarding")
        return r.json() if r.status_code == 200 else None

    return await eventually(ready, "the partner's onboarding plan")


class TestTemplateRules:
    def test_the_default_is_the_playbooks_four_weeks(self):
        steps = oc.DEFAULT_TEMPLATE.steps
        assert len(steps) == 16 and [s.week for s in steps] == [w for w in (1, 2, 3, 4) for _ in range(4)]
        assert steps[0].title == "Partnership agreement signed" and steps[-1].title == "Regular check-ins scheduled"

    @pytest.mark.parametrize("week,expected", [(1, date(2026, 11, 29)), (4, date(2026, 12, 20))])
    def test_a_step_is_due_at_the_end_of_its_week(self, week: int, expected: date):
        assert due_date(date(2026, 11, 23), week) == expected

    def test_repeated_keys_are_refused(self):
        with pytest.raises(ValidationError, match="repeated"):
            oc.OnboardingTemplate(steps=(oc.TemplateStep(key="a", title="A", week=1),
                                         oc.TemplateStep(key="a", title="B", week=2)))


class TestPlans:
    async def test_a_new_partner_gets_the_playbook_plan_owned_by_its_owner(self, gw: Gateway):
        partner = await new_partner(gw)
        plan = await plan_of(gw, partner["id"])
        started = date.fromisoformat(plan["started_on"])
        assert len(plan["steps"]) == 16 and plan["done"] == 0 and plan["overdue"] == 0
        assert {s["owner"] for s in plan["steps"]} == {gw.people[Role.member].id}
        assert [s["due_date"] for s in plan["steps"]][::4] == [(started + timedelta(days=7 * w - 1)).isoformat()
                                                               for w in (1, 2, 3, 4)]
        assert plan["days_to_first_opportunity"] is None

    async def test_a_repeated_partner_created_event_makes_no_second_plan(self, gw: Gateway,
                                                                         private_bus: EmbeddedNats):
        partner = await new_partner(gw)
        first = await plan_of(gw, partner["id"])
        nc = await bus.connect(private_bus.url_for("pipeline"), name="onboarding-test")
        try:
            again = pc.PartnerCreatedV1(partner_id=partner["id"], name="Renamed", type=pc.PartnerType.msp,
                                        tier=pc.PartnerTier.bronze, status=pc.PartnerStatus.active, owner=None)
            await nc.jetstream().publish(again.subject, again.model_dump_json().encode(),
                                         headers={"Nats-Msg-Id": str(again.event_id)})
            marker = await new_partner(gw)  # published after: once its plan is there, the repeat was applied
            await plan_of(gw, marker["id"])
        finally:
            await nc.close()
        assert await plan_of(gw, partner["id"]) == first

    async def test_a_creation_redelivered_after_the_deletion_starts_no_plan(self, gw: Gateway,
                                                                           private_bus: EmbeddedNats):
        partner_id, now = uuid.uuid4(), datetime.now(UTC)
        gone = pc.Partner(id=partner_id, name="Gone Ltd", type=pc.PartnerType.isv, tier=pc.PartnerTier.bronze,
                          status=pc.PartnerStatus.active, owner=None, deleted_at=now, version=2,
                          created_at=now - timedelta(minutes=5), updated_at=now)
        late = pc.PartnerCreatedV1(partner_id=partner_id, name="Gone Ltd", type=pc.PartnerType.isv,
                                   tier=pc.PartnerTier.bronze, status=pc.PartnerStatus.active, owner=None)
        nc = await bus.connect(private_bus.url_for("pipeline"), name="onboarding-test")
        try:
            for event in (pc.PartnerDeletedV1(partner=gone), late):  # the creation comes again after the deletion
                await nc.jetstream().publish(event.subject, event.model_dump_json().encode(),
                                             headers={"Nats-Msg-Id": str(event.event_id)})
            marker = await new_partner(gw)  # published after both: once its plan is there, both were applied
            await plan_of(gw, marker["id"])
        finally:
            await nc.close()
        r = await call(gw, Role.viewer, "GET", f"/api/partners/{partner_id}/onboarding")
        assert r.status_code == 404, r.text

    async def test_a_late_step_is_on_its_owners_attention_list_until_done(self, gw: Gateway):
        partner = await new_partner(gw)
        await plan_of(gw, partner["id"])
        url = f"/api/partners/{partner['id']}/onboarding/steps/agreement_signed"
        late = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
        r = await call(gw, Role.member, "PATCH", url, {"due_date": late, "owner": gw.people[Role.manager].email})
        assert r.status_code == 200, r.text
        step = next(s for s in r.json()["steps"] if s["key"] == "agreement_signed")
        assert step["overdue"] and step["owner"] == gw.people[Role.manager].id and r.json()["overdue"] == 1
        title = f"{partner['name']} onboarding: Partnership agreement signed"

        async def on_list(owner: Role) -> bool:
            a = (await call(gw, Role.manager, "GET", "/api/relationships/attention",
                            params={"owner": gw.people[owner].email})).json()
            lines = [x for m in a["members"] for x in (*m["items"], *m.get("outside", []))]
            return any(x["title"] == title for x in lines)

        await eventually(lambda: on_list(Role.manager), "the late step on the manager's attention list")
        assert not await on_list(Role.member)
        done = await call(gw, Role.manager, "PATCH", url, {"done": True})
        assert done.status_code == 200
        step = next(s for s in done.json()["steps"] if s["key"] == "agreement_signed")
        assert step["done_at"] and step["done_by"] == gw.people[Role.manager].email and not step["overdue"]
        # Only what was sent changes: ticking it off keeps its owner and due date.
        assert step["owner"] == gw.people[Role.manager].id and step["due_date"] == late
        assert not await on_list(Role.manager)
        listing = (await call(gw, Role.viewer, "GET", "/api/onboarding/plans", params={"open_only": "true"})).json()
        assert partner["id"] in {p["partner_id"] for p in listing["items"]}

    async def test_time_to_first_opportunity_per_partner_and_type(self, gw: Gateway):
        partner = await new_partner(gw, kind="reseller")
        await plan_of(gw, partner["id"])
        deal = await call(gw, Role.member, "POST", "/api/opportunities", {
            "name": "First", "customer": "Globex", "partner_id": partner["id"], "amount": "10"})
        assert deal.status_code == 201

        async def measured():
            plan = await plan_of(gw, partner["id"])
            return plan if plan["first_opportunity_at"] else None

        plan = await eventually(measured, "the first opportunity to be known")
        assert plan["days_to_first_opportunity"] == 0
        stats = (await call(gw, Role.viewer, "GET", "/api/onboarding/first-opportunity")).json()
        reseller = next(r for r in stats["by_type"] if r["partner_type"] == "reseller")
        assert reseller["with_opportunity"] >= 1 and reseller["median_days"] == 0.0
        assert stats["overall"]["partners"] >= reseller["partners"]


class TestTemplateEditing:
    async def test_new_partners_follow_the_edited_template_and_old_plans_keep_theirs(self, gw: Gateway):
        old = await new_partner(gw)
        await plan_of(gw, old["id"])
        current = (await call(gw, Role.viewer, "GET", "/api/onboarding/template")).json()
        body = {"expected_version": current["version"], "steps": [
            {"key": "kickoff", "title": "Kick-off call", "week": 1},
            {"key": "first_deal", "title": "First deal registered", "week": 6, "owner": gw.people[Role.admin].email}]}
        assert (await call(gw, Role.member, "PUT", "/api/onboarding/template", body)).status_code == 403
        saved = await call(gw, Role.manager, "PUT", "/api/onboarding/template", body)
        assert saved.status_code == 200, saved.text
        assert saved.json()["steps"][1]["owner"] == gw.people[Role.admin].id
        stale = await call(gw, Role.manager, "PUT", "/api/onboarding/template", body)
        assert stale.status_code == 409
        new = await new_partner(gw)
        plan = await plan_of(gw, new["id"])
        assert [(s["key"], s["owner"]) for s in plan["steps"]] == [
            ("kickoff", gw.people[Role.member].id), ("first_deal", gw.people[Role.admin].id)]
        assert len((await plan_of(gw, old["id"]))["steps"]) == 16
        page = await gw.people[Role.manager].client.get("/onboarding", headers={"accept": "text/html"})
        assert page.status_code == 200 and "6 first_deal First deal registered" in page.text
        restore = {"expected_version": saved.json()["version"], "steps": [
            s.model_dump() for s in oc.DEFAULT_TEMPLATE.steps]}
        assert (await call(gw, Role.manager, "PUT", "/api/onboarding/template", restore)).status_code == 200

    @pytest.mark.parametrize("steps,field", [
        ([{"key": "a", "title": "A", "week": 1}, {"key": "a", "title": "B", "week": 1}], "repeated"),
        ([{"key": f"s{i}", "title": "S", "week": 1} for i in range(61)], "steps"),
        ([], "steps"),
        ([{"key": "a", "title": "A", "week": 0}], "week"),
        ([{"key": "a", "title": "A", "week": 53}], "week"),
        ([{"key": "A-b", "title": "A", "week": 1}], "key"),
        ([{"key": "a", "title": "A\x00", "week": 1}], "title"),
        ([{"key": "a", "title": "", "week": 1}], "title"),
        ([{"key": "a", "title": "A", "week": 1, "owner": "nobody@nowhere.test"}], "owner"),
        ([{"key": "a", "title": "A", "week": 1, "extra": True}], "extra"),
        ([{"key": "a", "title": "A", "week": "soon"}], "week"),
    ])
    async def test_a_bad_template_is_refused_with_the_field_named(self, gw: Gateway, steps: list, field: str):
        r = await call(gw, Role.manager, "PUT", "/api/onboarding/template", {"steps": steps})
        assert r.status_code == 422, r.text
        assert field in r.text

    async def test_the_template_form_names_the_bad_line_and_keeps_the_text(self, gw: Gateway):
        m = gw.people[Role.manager]
        r = await m.client.post("/onboarding/template", data={"csrf_token": m.csrf, "steps": "1 ok Fine\nnot a step"})
        assert r.status_code == 422 and "line 2" in r.text and "not a step" in r.text


class TestStepHostileInput:
    @pytest.mark.parametrize("key,body,status", [
        ("no_such_step", {"done": True}, 404),
        ("agreement_signed", {"done": "perhaps"}, 422),
        ("agreement_signed", {"due_date": "9999-12-31"}, 422),
        ("agreement_signed", {"due_date": 20261201}, 422),
        ("agreement_signed", {"owner": "stranger@nowhere.test"}, 422),
        ("agreement_signed", {"owner": "a\x00b"}, 422),
        ("agreement_signed", {"expected_version": 999}, 409),
        ("agreement_signed", {"surprise": 1}, 422),
        ("Bad-Key", {"done": True}, 422),
    ])
    async def test_refused(self, gw: Gateway, key: str, body: dict, status: int):
        partner = await new_partner(gw)
        await plan_of(gw, partner["id"])
        r = await call(gw, Role.member, "PATCH", f"/api/partners/{partner['id']}/onboarding/steps/{key}", body)
        assert r.status_code == status, r.text
        assert (await plan_of(gw, partner["id"]))["version"] == 1, "nothing changed"

    async def test_no_plan_for_an_unknown_partner(self, gw: Gateway):
        r = await call(gw, Role.viewer, "GET", f"/api/partners/{uuid.uuid4()}/onboarding")
        assert r.status_code == 404
        page = await gw.people[Role.viewer].client.get(f"/onboarding/{uuid.uuid4()}", headers={"accept": "text/html"})
        assert page.status_code == 404

    async def test_a_viewer_reads_but_does_not_tick(self, gw: Gateway):
        partner = await new_partner(gw)
        await plan_of(gw, partner["id"])
        url = f"/api/partners/{partner['id']}/onboarding/steps/agreement_signed"
        assert (await call(gw, Role.viewer, "PATCH", url, {"done": True})).status_code == 403
        page = await gw.people[Role.member].client.get(f"/onboarding/{partner['id']}", headers={"accept": "text/html"})
        assert page.status_code == 200 and "Partnership agreement signed" in page.text
        m = gw.people[Role.member]
        form = await m.client.post(f"/onboarding/{partner['id']}/steps/sales_training",
                                   data={"csrf_token": m.csrf, "done": "true"})
        assert form.status_code == 303
        plan = await plan_of(gw, partner["id"])
        assert next(s for s in plan["steps"] if s["key"] == "sales_training")["done_at"]
