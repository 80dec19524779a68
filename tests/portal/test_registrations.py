"""Deal registration end to end: a partner registers, the conflict check finds other deals and
registrations for the same customer (spelled differently), only the partner's owner or a manager
decides, an approval becomes the partner's deal exactly once; bad and hostile input is refused."""

from __future__ import annotations

import re
import uuid

import pytest

from contracts.registrations import customer_key
from gateway.auth import Role
from tests.portal.conftest import Portal
from tests.portal.helpers import call


def _customer() -> str:
    return f"Zeta{uuid.uuid4().hex[:6]}"


async def _register(person, customer: str, **extra) -> dict:
    r = await call(person, "POST", "/api/portal/registrations",
                   {"name": f"Deal for {customer}", "customer": customer, "amount": "2500.50", **extra})
    assert r.status_code == 201, r.text
    return r.json()


class TestCustomerKey:
    @pytest.mark.parametrize("a,b", [("Acme, Inc.", "ACME"), ("Acmé GmbH", "acme"), ("The  Acme Corp", "acme"),
                                     ("Acme-Labs Ltd", "acme labs")])
    def test_spellings_of_one_customer_share_a_key(self, a: str, b: str):
        assert customer_key(a) == customer_key(b) != ""

    @pytest.mark.parametrize("a,b", [("Acme", "Acme Labs"), ("Globex", "Initech")])
    def test_different_customers_do_not(self, a: str, b: str):
        assert customer_key(a) != customer_key(b)

    def test_only_a_legal_form_is_no_customer(self):
        assert customer_key("Inc.") == "" and customer_key("  ") == ""


class TestConflicts:
    async def test_a_registration_for_a_customer_in_play_is_flagged_for_the_team_only(self, portal: Portal):
        customer = _customer()
        member = portal.gateway.people[Role.member]
        deal = await call(member, "POST", "/api/opportunities", {"name": "Ours", "customer": f"{customer} Inc.",
                                                                 "amount": "100", "partner_id": portal.b.id})
        assert deal.status_code == 201
        first = await _register(portal.a.user, customer.upper())
        assert "conflicts" not in first and first["status"] == "pending"
        second = await _register(portal.b.user, f"{customer}, LLC")
        team = (await call(member, "GET", f"/api/registrations/{second['id']}")).json()
        kinds = sorted((c["kind"], c["id"]) for c in team["conflicts"])
        assert kinds == sorted([("opportunity", deal.json()["id"]), ("registration", first["id"])])
        page = await call(member, "GET", "/registrations", accept="text/html")
        assert page.status_code == 200 and f"{customer}, LLC" in page.text and "conflict" in page.text

    async def test_approving_over_a_conflict_needs_acknowledging_it(self, portal: Portal):
        customer = _customer()
        owner = portal.gateway.people[Role.member]
        await _register(portal.b.user, customer)
        reg = await _register(portal.a.user, customer)
        refused = await call(owner, "POST", f"/api/registrations/{reg['id']}/decision", {"approve": True})
        assert refused.status_code == 409 and "acknowledge_conflicts" in refused.text
        ok = await call(owner, "POST", f"/api/registrations/{reg['id']}/decision",
                        {"approve": True, "acknowledge_conflicts": True, "reason": "Yours: you brought it first."})
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "approved" and ok.json()["opportunity_id"]


class TestDecisions:
    async def test_an_approval_becomes_the_partners_deal_once(self, portal: Portal):
        a, b = portal.a, portal.b
        owner = portal.gateway.people[Role.member]
        reg = await _register(a.user, _customer(), expected_close_date="2027-03-31", notes="Met at re:Invent")
        decided = await call(owner, "POST", f"/api/registrations/{reg['id']}/decision", {"approve": True})
        assert decided.status_code == 200, decided.text
        deal_id = decided.json()["opportunity_id"]
        deal = (await call(owner, "GET", f"/api/opportunities/{deal_id}")).json()
        assert deal["partner_id"] == a.id and deal["owner"] == owner.id and deal["amount"] == "2500.50"
        mine = (await call(a.user, "GET", f"/api/portal/deals/{deal_id}")).json()
        assert mine["stage"] and "owner" not in mine
        assert (await call(b.user, "GET", f"/api/portal/deals/{deal_id}")).status_code == 404
        again = await call(owner, "POST", f"/api/registrations/{reg['id']}/decision", {"approve": True})
        assert again.status_code == 409
        seen = (await call(a.user, "GET", f"/api/portal/registrations/{reg['id']}")).json()
        assert seen["status"] == "approved" and seen["opportunity_id"] == deal_id
        audit = (await call(portal.gateway.people[Role.admin], "GET", "/api/audit",
                            params={"entity": "deal_registration"})).json()
        actions = {(e["action"], e["entity_id"]) for e in audit}
        assert ("registration.approved", reg["id"]) in actions and ("registration.submitted", reg["id"]) in actions

    async def test_a_decline_reaches_the_partner_with_its_reason(self, portal: Portal):
        reg = await _register(portal.a.user, _customer())
        r = await call(portal.gateway.people[Role.manager], "POST", f"/api/registrations/{reg['id']}/decision",
                       {"approve": False, "reason": "Already a direct customer."})
        assert r.status_code == 200 and r.json()["opportunity_id"] is None
        page = await call(portal.a.user, "GET", "/portal", accept="text/html")
        assert "Already a direct customer." in page.text and "declined" in page.text

    async def test_a_decline_needs_a_reason_and_the_queue_page_declines_with_it(self, portal: Portal):
        reg = await _register(portal.a.user, _customer())
        manager = portal.gateway.people[Role.manager]
        url = f"/api/registrations/{reg['id']}/decision"
        for reason in (None, "", "   "):
            r = await call(manager, "POST", url, {"approve": False, "reason": reason})
            assert r.status_code == 422 and "say why you decline" in r.text, (reason, r.text)
        queue = await manager.client.get("/registrations", headers={"accept": "text/html"})
        # The Decline button is there and can be seen: not the white-on-transparent `ghost` of the dark header.
        button = re.search(rf'action="/registrations/{reg["id"]}/decision".*?(<button[^>]*value="false"[^>]*>)',
                           queue.text, re.S)
        assert button and 'class="ghost-dark"' in button[1] and 'data-testid="decline"' in button[1]
        refused = await manager.client.post(f"/registrations/{reg['id']}/decision", data={
            "csrf_token": manager.csrf, "approve": "false", "reason": ""}, headers={"accept": "text/html"})
        assert refused.status_code == 422 and "say why you decline" in refused.text
        declined = await manager.client.post(f"/registrations/{reg['id']}/decision", data={
            "csrf_token": manager.csrf, "approve": "false", "reason": "Already sold direct."})
        assert declined.status_code == 303 and "Declined" in declined.headers["location"]
        seen = (await call(portal.a.user, "GET", f"/api/portal/registrations/{reg['id']}")).json()
        assert (seen["status"], seen["reason"]) == ("rejected", "Already sold direct.")
        audit = (await call(portal.gateway.people[Role.admin], "GET", "/api/audit",
                            params={"entity": "deal_registration"})).json()
        assert ("registration.rejected", reg["id"]) in {(e["action"], e["entity_id"]) for e in audit}

    async def test_the_portal_deal_page_names_stages_as_the_team_pages_do(self, portal: Portal):
        page = await call(portal.a.user, "GET", f"/portal/deals/{portal.a.deal_id}", accept="text/html")
        assert page.status_code == 200
        history = page.text.split("<h2>Stages</h2>", 1)[1]
        assert ": Lead</li>" in history and ": lead</li>" not in history, history[:300]

    async def test_only_the_owner_or_a_manager_decides(self, portal: Portal):
        reg = await _register(portal.a.user, _customer())
        url = f"/api/registrations/{reg['id']}/decision"
        g = portal.gateway
        other = await call(g.people[Role.admin], "POST", "/api/users", {
            "email": f"m{uuid.uuid4().hex[:6]}@portal.test", "role": "member",
            "password": "correct horse battery staple 2"})
        assert other.status_code == 201
        client, csrf = await g.sign_in(other.json()["email"], "correct horse battery staple 2")
        not_owner = await client.post(url, json={"approve": True}, headers={"x-csrf-token": csrf})
        assert not_owner.status_code == 403, not_owner.text
        await client.aclose()
        assert (await call(g.people[Role.viewer], "POST", url, {"approve": True})).status_code == 403
        assert (await call(portal.a.user, "POST", url, {"approve": True})).status_code == 403


class TestHostileInput:
    @pytest.mark.parametrize("body,field", [
        ({"name": "N\x00ul", "customer": "C", "amount": "1"}, "name"),
        ({"name": "N", "customer": "C\x07", "amount": "1"}, "customer"),
        ({"name": "N" * 201, "customer": "C", "amount": "1"}, "name"),
        ({"name": "N", "customer": "C", "amount": "1e20"}, "amount"),
        ({"name": "N", "customer": "C", "amount": "-5"}, "amount"),
        ({"name": "N", "customer": "C", "amount": "1.001"}, "amount"),
        ({"name": "N", "customer": "C", "amount": "1", "expected_close_date": "9999-01-01"}, "expected_close_date"),
        ({"name": "N", "customer": "C", "amount": "1", "expected_close_date": 1700000000}, "expected_close_date"),
        ({"name": "N", "customer": "C", "amount": "1", "currency": "XXXX"}, "currency"),
        ({"name": "N", "customer": "C", "amount": "1", "notes": "x" * 4001}, "notes"),
        ({"name": "N", "customer": "C", "amount": "1", "status": "approved"}, "status"),
        ({"name": {"deep": {"deeper": ["x"]}}, "customer": "C", "amount": "1"}, "name"),
        ({"name": "N", "customer": "Inc.", "amount": "1"}, "customer"),
    ])
    async def test_refused_with_the_field_named(self, portal: Portal, body: dict, field: str):
        r = await call(portal.a.user, "POST", "/api/portal/registrations", body)
        assert r.status_code == 422, r.text
        assert field in r.text

    async def test_the_form_shows_errors_beside_fields_and_keeps_what_was_typed(self, portal: Portal):
        r = await portal.a.user.client.post("/portal/register", data={
            "csrf_token": portal.a.user.csrf, "name": "Typed", "customer": "Keep me", "amount": "lots"})
        assert r.status_code == 422 and 'value="Keep me"' in r.text and "Enter a number" in r.text
        ok = await portal.a.user.client.post("/portal/register", data={
            "csrf_token": portal.a.user.csrf, "name": "From the form", "customer": _customer(), "amount": "10"})
        assert ok.status_code == 303 and ok.headers["location"].startswith("/portal?notice=")

    async def test_a_decision_on_nothing_or_garbage(self, portal: Portal):
        owner = portal.gateway.people[Role.member]
        missing = await call(owner, "POST", f"/api/registrations/{uuid.uuid4()}/decision", {"approve": True})
        assert missing.status_code == 404
        reg = await _register(portal.a.user, _customer())
        for body in ({"approve": "maybe"}, {"approve": True, "reason": "\x00"}, {"approve": True, "owner": "nobody"},
                     {"approve": True, "extra": 1}, {}):
            r = await call(owner, "POST", f"/api/registrations/{reg['id']}/decision", body)
            assert r.status_code == 422, (body, r.text)
        stale = await call(owner, "POST", f"/api/registrations/{reg['id']}/decision",
                           {"approve": True, "expected_version": 7})
        assert stale.status_code == 409
        assert (await call(portal.a.user, "GET", f"/api/portal/registrations/{reg['id']}")).json()["status"] == \
            "pending"

    async def test_without_csrf_a_partner_cannot_register(self, portal: Portal):
        r = await portal.a.user.client.post("/api/portal/registrations", json={"name": "N", "customer": "C",
                                                                                "amount": "1"})
        assert r.status_code == 403
