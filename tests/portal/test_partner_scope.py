"""The partner trust boundary, as a table over every route of the app (enumerated from the app, so a
route added later is in the table without touching this file): a partner user of A asking for B's
things is refused (403) everywhere outside the portal, gets 404 for B's ids inside it, and no answer
it gets — lists, counts, CSV, search, pages — carries anything of B's."""

from __future__ import annotations

import pytest

from gateway.auth import Role
from tests.portal.conftest import Portal
from tests.portal.helpers import call
from tests.support.routes import all_routes, fill_path, is_public, requirement

ROUTES = [(m, p, r) for m, p, r in all_routes() if not is_public(p, m) and requirement(r) is not None]
# Routes about the caller's own account, open to partner users too (sign out would end the session).
OWN = [(m, p, r) for m, p, r in ROUTES if requirement(r).partners_allowed and requirement(r).required_role
       is not Role.partner]
PORTAL = [(m, p, r) for m, p, r in ROUTES if requirement(r).required_role is Role.partner]
TEAM = [(m, p, r) for m, p, r in ROUTES if not requirement(r).partners_allowed]


def _ids(portal: Portal) -> dict[str, str]:
    """B's ids under every path-parameter name that names one."""
    b = portal.b
    return {"partner_id": b.id, "opportunity_id": b.deal_id, "registration_id": b.registration_id,
            "period": "2026-Q4", "user_id": b.user.id, "contact_id": b.ids["contact_id"]}


def test_the_table_sees_the_portal_and_the_team_routes():
    assert len(PORTAL) >= 8 and len(TEAM) >= 100, (len(PORTAL), len(TEAM))
    assert {p for _, p, _ in OWN} >= {"/signout", "/api/me", "/account", "/api/session"}
    assert all(p.startswith(("/portal", "/api/portal")) for _, p, _ in PORTAL)


@pytest.mark.parametrize("method,path,route", TEAM, ids=[f"{m} {p}" for m, p, _ in TEAM])
async def test_a_partner_user_is_refused_every_team_route(portal: Portal, method: str, path: str, route):
    url = fill_path(path, route, _ids(portal))
    body = {} if method in ("POST", "PUT", "PATCH") else None
    for accept in ("application/json", "text/html"):
        response = await call(portal.a.user, method, url, body, accept=accept)
        assert response.status_code == 403, f"{accept}: {response.status_code} {response.text[:300]}"
        assert portal.b.marker not in response.text


@pytest.mark.parametrize("method,path,route", PORTAL, ids=[f"{m} {p}" for m, p, _ in PORTAL])
async def test_inside_the_portal_b_is_not_found_and_never_shown(portal: Portal, method: str, path: str, route):
    url = fill_path(path, route, _ids(portal))
    names_an_id = any(f"{{{k}}}" in path for k in ("opportunity_id", "registration_id", "partner_id"))
    body = {} if method in ("POST", "PUT", "PATCH") else None
    response = await call(portal.a.user, method, url, body, accept="text/html" if not path.startswith("/api/")
                          else "application/json")
    if names_an_id:
        assert response.status_code == 404, f"{response.status_code} {response.text[:300]}"
    elif method == "GET":
        assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
        assert portal.a.marker in response.text or "statement" in path or path.endswith("/register") or \
            path.endswith("/onboarding"), "A's own data should be there"
    else:
        assert response.status_code == 422, response.text  # an empty registration
    assert portal.b.marker not in response.text, response.text[:500]


@pytest.mark.parametrize("method,path,route", PORTAL, ids=[f"{m} {p}" for m, p, _ in PORTAL])
async def test_the_team_and_tokens_do_not_use_the_portal(portal: Portal, method: str, path: str, route):
    url = fill_path(path, route, _ids(portal))
    for role in (Role.viewer, Role.admin):
        response = await call(portal.gateway.people[role], method, url, {} if method == "POST" else None)
        assert response.status_code == 403, response.text


class TestWhatAPartnerSees:
    async def test_lists_and_counts_hold_only_its_own(self, portal: Portal):
        a = portal.a
        deals = (await call(a.user, "GET", "/api/portal/deals")).json()
        assert deals["total"] == 1 and [d["id"] for d in deals["items"]] == [a.deal_id]
        regs = (await call(a.user, "GET", "/api/portal/registrations")).json()
        assert regs["total"] == 1 and regs["items"][0]["id"] == a.registration_id
        assert "conflicts" not in regs["items"][0]

    async def test_search_does_not_find_b(self, portal: Portal):
        a, b = portal.a, portal.b
        found = (await call(a.user, "GET", "/api/portal/deals", params={"q": f"Customer {b.marker}"})).json()
        assert found["total"] == 0 and found["items"] == []
        page = await call(a.user, "GET", "/portal", accept="text/html", params={"q": b.marker})
        assert page.status_code == 200 and "No deals match" in page.text
        mine = (await call(a.user, "GET", "/api/portal/deals", params={"q": a.marker})).json()
        assert mine["total"] == 1

    async def test_csv_and_statement_are_its_own(self, portal: Portal):
        a, b = portal.a, portal.b
        csv_text = (await call(a.user, "GET", "/api/portal/deals.csv")).text
        assert csv_text.count("\r\n") == 2 and a.marker in csv_text and b.marker not in csv_text
        statement = (await call(a.user, "GET", "/api/portal/statements/2026-Q4")).json()
        assert statement["partner_id"] == a.id
        lines = [e for s in statement["sections"] for e in s["lines"]]
        assert lines and all(e["partner_id"] == a.id for e in lines)
        statement_csv = (await call(a.user, "GET", "/api/portal/statements/2026-Q4.csv")).text
        assert f"Invoiced {a.marker}" in statement_csv and b.marker not in statement_csv

    async def test_the_partner_id_comes_from_the_account_never_the_request(self, portal: Portal):
        a, b = portal.a, portal.b
        sent = await call(a.user, "POST", "/api/portal/registrations", {
            "name": "Smuggled", "customer": "Someone", "amount": "1", "partner_id": b.id})
        assert sent.status_code == 422  # no such field: the body cannot name a partner
        summary = (await call(a.user, "GET", "/api/portal/summary", params={"partner_id": b.id})).json()
        assert summary["partner_id"] == a.id and summary["name"] == a.name

    async def test_sign_in_lands_on_the_portal_and_the_dashboard_refuses(self, portal: Portal):
        page = await call(portal.a.user, "GET", "/", accept="text/html")
        assert page.status_code == 403 and "/portal" in page.text and "Dashboard" not in page.text
        me = (await call(portal.a.user, "GET", "/api/me")).json()
        assert me["role"] == "partner" and me["partner_id"] == portal.a.id

    async def test_its_onboarding_plan(self, portal: Portal):
        plan = (await call(portal.a.user, "GET", "/api/portal/onboarding")).json()
        assert plan["total"] == 16 and plan["done"] == 0
        assert plan["steps"][0] == {**plan["steps"][0], "title": "Partnership agreement signed", "week": 1}
        assert plan["steps"][0]["owner_name"] == "The member" and "owner" not in plan["steps"][0]
        page = await call(portal.a.user, "GET", "/portal", accept="text/html")
        assert "Your onboarding" in page.text and "Certification exam passed" in page.text

    async def test_its_own_peoples_certifications(self, portal: Portal):
        a, b = portal.a, portal.b
        mine = (await call(a.user, "GET", "/api/portal/certifications")).json()
        assert [c["person"] for c in mine["certifications"]] == [f"Person {a.marker}"]
        assert mine["certifications"][0]["status"] == "passed" and "owner" not in mine["certifications"][0]
        assert mine["required_modules"] >= 1 and mine["covered_modules"] == 1
        page = await call(a.user, "GET", "/portal", accept="text/html")
        assert "Your people's certifications" in page.text and f"Person {a.marker}" in page.text
        assert f"Person {b.marker}" not in page.text
        # And B's person is reachable by no team route for A's user.
        url = f"/api/enablement/certifications?contact_id={b.ids['contact_id']}"
        assert (await call(a.user, "GET", url)).status_code == 403

    async def test_tier_progress(self, portal: Portal):
        summary = (await call(portal.a.user, "GET", "/api/portal/summary")).json()
        p = summary["progress"]
        assert p["tier"] == "bronze" and p["next_tier"] == "silver"
        assert p["next_threshold"] == "20000.00" and p["remaining"] == "20000.00" and p["percent"] == 0
