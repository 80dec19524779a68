"""Enablement: training modules with a pass mark, certifications per partner person (pass or fail by
the mark, expiry from the module's validity), a certification due or lapsing on its owner's attention
list, the partner's enablement score published and fed into the scorecard's feasibility criterion
where configured (duplicates and late older events change nothing), hostile input refused."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import enablement as ec
from contracts.quarters import add_months
from gateway.auth import Role
from runtime import bus, deadletter
from runtime.embedded import EmbeddedNats
from runtime.testing import eventually
from services.pipeline.handlers import definition as pipeline_definition
from services.relationships.enablement.models import CertificationRow
from services.relationships.enablement.service import score_of, status_of
from tests.support.gateway import Gateway

TODAY = datetime.now(UTC).date()


async def call(g: Gateway, role: Role, method: str, url: str, body: object = None, **kw):
    person = g.people[role]
    return await person.client.request(method, url, json=body, headers={"x-csrf-token": person.csrf,
                                                                          "accept": "application/json"}, **kw)


async def new_partner(g: Gateway, *, scorecard: bool = True) -> dict:
    body: dict = {"name": f"Enb {uuid.uuid4().hex[:8]}", "type": "isv", "owner": g.people[Role.member].email}
    if scorecard:
        body["scorecard"] = {"strategic_fit": 8, "revenue_potential": 6, "feasibility": 2, "risk": 5}
    r = await call(g, Role.member, "POST", "/api/partners", body)
    assert r.status_code == 201, r.text
    return r.json()


async def new_person(g: Gateway, partner_id: str, name: str = "Pat Partner", owner: Role | None = None) -> dict:
    body: dict = {"partner_id": partner_id, "name": name}
    if owner:
        body["owner"] = g.people[owner].email

    async def made():
        r = await call(g, Role.member, "POST", "/api/contacts", body)
        return r.json() if r.status_code == 201 else None

    return await eventually(made, "the relationships service to know the partner")


async def new_module(g: Gateway, **fields) -> dict:
    body = {"name": f"Module {uuid.uuid4().hex[:8]}", "duration_minutes": 90, "pass_mark": 70, **fields}
    r = await call(g, Role.manager, "POST", "/api/enablement/modules", body)
    assert r.status_code == 201, r.text
    return r.json()


async def certify(g: Gateway, contact_id: str, module_id: str, body: dict, status: int = 200) -> dict:
    r = await call(g, Role.member, "PUT", f"/api/contacts/{contact_id}/certifications/{module_id}", body)
    assert r.status_code == status, r.text
    return r.json()


class TestRules:
    def test_status_from_the_last_attempt_and_pass(self):
        row = CertificationRow(score=None, passed_on=None, expires_on=None)
        assert status_of(row, TODAY) is ec.CertificationStatus.due
        row.score = 50
        assert status_of(row, TODAY) is ec.CertificationStatus.failed
        row.passed_on, row.expires_on = TODAY, TODAY
        assert status_of(row, TODAY) is ec.CertificationStatus.passed
        assert status_of(row, TODAY + timedelta(days=1)) is ec.CertificationStatus.expired
        row.expires_on = None
        assert status_of(row, date(2200, 1, 1)) is ec.CertificationStatus.passed

    @pytest.mark.parametrize("covered,required,expected", [(0, 0, None), (0, 3, Decimal("0.00")),
                                                           (2, 3, Decimal("66.67")), (3, 3, Decimal("100.00"))])
    def test_score_is_the_share_of_required_modules_held(self, covered, required, expected):
        assert score_of(covered, required) == expected

    def test_an_attempt_needs_its_day_and_score(self):
        with pytest.raises(ValueError, match="both"):
            ec.RecordCertification(contact_id=uuid.uuid4(), module_id=uuid.uuid4(), score=80)
        with pytest.raises(ValueError, match="due_on"):
            ec.RecordCertification(contact_id=uuid.uuid4(), module_id=uuid.uuid4())


class TestCertifications:
    async def test_pass_and_fail_by_the_mark_with_expiry_from_the_modules_validity(self, gw: Gateway):
        partner = await new_partner(gw)
        person = await new_person(gw, partner["id"])
        module = await new_module(gw, pass_mark=75, valid_months=6)
        taken = TODAY - timedelta(days=3)
        failed = await certify(gw, person["id"], module["id"], {"taken_on": taken.isoformat(), "score": 74})
        assert failed["status"] == "failed" and failed["expires_on"] is None and failed["passed_on"] is None
        passed = await certify(gw, person["id"], module["id"], {"taken_on": TODAY.isoformat(), "score": 75})
        assert passed["status"] == "passed" and passed["id"] == failed["id"]
        assert passed["expires_on"] == add_months(TODAY, 6).isoformat() and passed["owner"] == gw.people[Role.member].id
        # A failed retake keeps the pass until it lapses; an attempt older than the last is refused.
        again = await certify(gw, person["id"], module["id"], {"taken_on": TODAY.isoformat(), "score": 10})
        assert again["status"] == "passed" and again["score"] == 10
        await certify(gw, person["id"], module["id"], {"taken_on": taken.isoformat(), "score": 99}, status=409)
        listed = (await call(gw, Role.viewer, "GET", "/api/enablement/certifications",
                             params={"contact_id": person["id"]})).json()
        assert [c["id"] for c in listed["items"]] == [passed["id"]]

    async def test_due_and_lapsing_certifications_stand_on_the_owners_attention_list(self, gw: Gateway):
        partner = await new_partner(gw)
        person = await new_person(gw, partner["id"], name="Dee Due", owner=Role.manager)
        due_module = await new_module(gw)
        lapsing_module = await new_module(gw, valid_months=12)
        await certify(gw, person["id"], due_module["id"], {"due_on": (TODAY + timedelta(days=5)).isoformat()})
        # A failed attempt keeps the date to pass by.
        failed = await certify(gw, person["id"], due_module["id"], {"taken_on": TODAY.isoformat(), "score": 1})
        assert failed["status"] == "failed" and failed["due_on"] == (TODAY + timedelta(days=5)).isoformat()
        # Passed almost a year ago: it lapses in ten days.
        taken = add_months(TODAY + timedelta(days=10), -12)
        lapsing = await certify(gw, person["id"], lapsing_module["id"], {"taken_on": taken.isoformat(), "score": 90})
        assert lapsing["expires_on"] == (TODAY + timedelta(days=10)).isoformat()

        async def titles(owner: Role) -> set[str]:
            a = (await call(gw, Role.manager, "GET", "/api/relationships/attention",
                            params={"owner": gw.people[owner].email})).json()
            return {x["title"] for m in a["members"] for x in (*m["items"], *m.get("outside", []))}

        due_title = f"Dee Due: pass {due_module['name']}"
        lapse_title = f"Dee Due: {lapsing_module['name']} certification lapses"

        async def both_listed() -> bool:
            return {due_title, lapse_title} <= await titles(Role.manager)

        await eventually(both_listed, "the due and the lapsing certification on the owner's list")
        assert not {due_title, lapse_title} & await titles(Role.member)
        await certify(gw, person["id"], due_module["id"], {"taken_on": TODAY.isoformat(), "score": 100})

        async def due_gone() -> bool:
            return due_title not in await titles(Role.manager)

        await eventually(due_gone, "the passed certification off the list")
        page = await gw.people[Role.viewer].client.get("/enablement", headers={"accept": "text/html"})
        assert page.status_code == 200 and "Dee Due" in page.text and lapsing_module["name"] in page.text

    @pytest.mark.parametrize("body,status,field", [
        ({"taken_on": "2026-11-01"}, 422, "score"),
        ({"taken_on": "2026-11-01", "score": 101}, 422, "score"),
        ({"taken_on": "2026-11-01", "score": -1}, 422, "score"),
        ({"taken_on": "9999-12-31", "score": 80}, 422, "taken_on"),
        ({"taken_on": 20261101, "score": 80}, 422, "taken_on"),
        ({"due_on": "2026-13-45"}, 422, "due_on"),
        ({"due_on": "2026-12-01", "extra": "x"}, 422, "extra"),
        ({}, 422, "due_on"),
        ({"taken_on": "2026-11-01", "score": "1e400"}, 422, "score"),
    ])
    async def test_a_bad_certification_is_refused(self, gw: Gateway, body: dict, status: int, field: str):
        partner = await new_partner(gw)
        person = await new_person(gw, partner["id"])
        module = await new_module(gw)
        r = await call(gw, Role.member, "PUT", f"/api/contacts/{person['id']}/certifications/{module['id']}", body)
        assert r.status_code == status and field in r.text, r.text
        listed = (await call(gw, Role.viewer, "GET", "/api/enablement/certifications",
                             params={"contact_id": person["id"]})).json()
        assert listed["total"] == 0

    async def test_unknown_ids_and_roles(self, gw: Gateway):
        partner = await new_partner(gw)
        person = await new_person(gw, partner["id"])
        module = await new_module(gw)
        body = {"due_on": TODAY.isoformat()}
        for url in (f"/api/contacts/{uuid.uuid4()}/certifications/{module['id']}",
                    f"/api/contacts/{person['id']}/certifications/{uuid.uuid4()}"):
            assert (await call(gw, Role.member, "PUT", url, body)).status_code == 404
        url = f"/api/contacts/{person['id']}/certifications/{module['id']}"
        assert (await call(gw, Role.viewer, "PUT", url, body)).status_code == 403
        assert (await call(gw, Role.viewer, "GET", f"/api/partners/{uuid.uuid4()}/enablement")).status_code == 404
        page = await gw.people[Role.viewer].client.get(f"/enablement/{uuid.uuid4()}", headers={"accept": "text/html"})
        assert page.status_code == 404


class TestModules:
    @pytest.mark.parametrize("body,field", [
        ({"name": "A\x00B", "duration_minutes": 10}, "name"),
        ({"name": "", "duration_minutes": 10}, "name"),
        ({"name": "X" * 201, "duration_minutes": 10}, "name"),
        ({"name": "Ok", "duration_minutes": 0}, "duration_minutes"),
        ({"name": "Ok", "duration_minutes": 10**12}, "duration_minutes"),
        ({"name": "Ok", "duration_minutes": 10, "pass_mark": 101}, "pass_mark"),
        ({"name": "Ok", "duration_minutes": 10, "valid_months": 0}, "valid_months"),
        ({"name": "Ok", "duration_minutes": 10, "owner": "x"}, "owner"),
        ({"name": "Ok"}, "duration_minutes"),
    ])
    async def test_a_bad_module_is_refused_with_the_field_named(self, gw: Gateway, body: dict, field: str):
        r = await call(gw, Role.manager, "POST", "/api/enablement/modules", body)
        assert r.status_code == 422 and field in r.text, r.text

    async def test_managers_add_and_change_modules(self, gw: Gateway):
        body = {"name": f"Sales {uuid.uuid4().hex[:6]}", "duration_minutes": 60}
        assert (await call(gw, Role.member, "POST", "/api/enablement/modules", body)).status_code == 403
        made = (await call(gw, Role.manager, "POST", "/api/enablement/modules", body)).json()
        assert made["pass_mark"] == 70 and made["valid_months"] == 12 and not made["required"]
        assert (await call(gw, Role.manager, "POST", "/api/enablement/modules", body)).status_code == 409
        url = f"/api/enablement/modules/{made['id']}"
        stale = await call(gw, Role.manager, "PATCH", url, {"expected_version": 9, "pass_mark": 80})
        assert stale.status_code == 409
        described = await call(gw, Role.manager, "PATCH", url, {"description": "Selling with us", "valid_months": 24})
        assert described.status_code == 200
        changed = await call(gw, Role.manager, "PATCH", url, {"expected_version": 2, "archived": True})
        assert changed.status_code == 200 and changed.json()["archived"]
        # Fields not sent stay as they were (the command carries only what was set).
        assert changed.json()["description"] == "Selling with us" and changed.json()["valid_months"] == 24
        listed = (await call(gw, Role.viewer, "GET", "/api/enablement/modules")).json()
        assert made["id"] not in {m["id"] for m in listed["items"]}
        assert (await call(gw, Role.manager, "PATCH", f"/api/enablement/modules/{uuid.uuid4()}",
                           {"required": True})).status_code == 404


class TestScoreIntoTheScorecard:
    async def test_the_score_feeds_feasibility_only_where_configured(self, gw: Gateway):
        partner = await new_partner(gw)
        person = await new_person(gw, partner["id"])
        required = await new_module(gw, required=True)
        await certify(gw, person["id"], required["id"], {"taken_on": TODAY.isoformat(), "score": 100})

        async def scored():
            r = (await call(gw, Role.viewer, "GET", f"/api/partners/{partner['id']}/enablement")).json()
            return r if r["covered_modules"] == 1 else None

        found = await eventually(scored, "the partner's enablement")
        assert found["score"] is not None and Decimal(found["score"]) > 0
        assert found["valid_certifications"] == 1
        partner_now = (await call(gw, Role.viewer, "GET", f"/api/partners/{partner['id']}")).json()
        assert partner_now["scorecard"]["feasibility"] == "2.00", "not configured: set by hand"

        settings = (await call(gw, Role.admin, "GET", "/api/pipeline/settings")).json()
        assert settings["feasibility_from_enablement"] is False
        on = await call(gw, Role.admin, "PATCH", "/api/pipeline/settings", {"feasibility_from_enablement": True})
        assert on.status_code == 200, on.text
        expected = str((Decimal(found["score"]) / 10).quantize(Decimal("0.01")))

        async def fed():
            p = (await call(gw, Role.viewer, "GET", f"/api/partners/{partner['id']}")).json()
            return p if p["scorecard"]["feasibility"] == expected else None

        card = await eventually(fed, "feasibility from the enablement score")
        # 8*w1 + 6*w2 + f*w3 + 5*w4 with the default weights: the weighted score moved with it.
        assert card["score"] != partner_now["score"]
        off = await call(gw, Role.admin, "PATCH", "/api/pipeline/settings", {"feasibility_from_enablement": False})
        assert off.status_code == 200

    async def test_duplicate_late_and_hostile_score_events(self, gw: Gateway, private_bus: EmbeddedNats):
        partner = await new_partner(gw)
        await call(gw, Role.admin, "PATCH", "/api/pipeline/settings", {"feasibility_from_enablement": True})
        nc = await bus.connect(private_bus.url_for("relationships"), name="enablement-test")
        op = await bus.connect(private_bus.url, name="enablement-test-operator")
        key = next(s.inbox_key for s in pipeline_definition.subscriptions
                   if s.models[0] is ec.EnablementScoreChangedV1)
        try:
            js = nc.jetstream()

            async def publish(ev: ec.EnablementScoreChangedV1, data: bytes | None = None,
                              msg_id: str | None = None) -> None:
                await js.publish(ev.subject, data or ev.model_dump_json().encode(),
                                 headers={"Nats-Msg-Id": msg_id or str(ev.event_id)})

            def event(version: int, score: str) -> ec.EnablementScoreChangedV1:
                return ec.EnablementScoreChangedV1(
                    partner_id=partner["id"], score=Decimal(score), required_modules=4, covered_modules=3,
                    valid_certifications=3, as_of=datetime.now(UTC), version=version)

            newer, older = event(7, "80"), event(3, "20")
            await publish(newer)
            await publish(newer, msg_id=str(uuid.uuid4()))  # the same event again, past the broker's dedupe
            await publish(older)

            async def feasibility() -> str:
                return (await call(gw, Role.viewer, "GET", f"/api/partners/{partner['id']}")).json()[
                    "scorecard"]["feasibility"]

            async def at_eight():
                return await feasibility() == "8.00"

            await eventually(at_eight, "feasibility 8.00 from the newer event")
            good = json.loads(event(8, "10").model_dump_json())
            before = len(await deadletter.list_all(op.jetstream(), consumer=key))
            hostile = [
                json.dumps({**good, "score": "1e400"}).encode(),
                json.dumps({**good, "score": "-5"}).encode(),
                json.dumps({**good, "version": 0}).encode(),
                json.dumps({**good, "as_of": "9999-12-31T00:00:00Z"}).encode(),
                json.dumps({**good, "partner_id": "x\u0000y"}).encode(),
                json.dumps({**good, "schema_version": 9}).encode(),
                ("[" * 5000 + "]" * 5000).encode(),
            ]
            for body in hostile:
                await publish(event(9, "10"), data=body, msg_id=str(uuid.uuid4()))
            marker = event(10, "50")
            await publish(marker)

            async def settled():
                letters = await deadletter.list_all(op.jetstream(), consumer=key)
                return len(letters) - before == len(hostile) and await feasibility() == "5.00"

            await eventually(settled, "the hostile events parked, the valid one after them applied")
            letters = (await deadletter.list_all(op.jetstream(), consumer=key))[before:]
            assert all(x.reason for x in letters)
        finally:
            await call(gw, Role.admin, "PATCH", "/api/pipeline/settings", {"feasibility_from_enablement": False})
            await nc.close()
            await op.close()
