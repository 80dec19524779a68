"""Calls as a signed-in person, and what the portal tests set up: two partner organisations, each
with a partner user, deals, a registration and commission entries, each marked with a word of its
own so a leak of B's data into A's answers can be searched for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from gateway.auth import Role
from runtime.testing import eventually
from tests.support.gateway import PASSWORD, Gateway, Person, csrf_from

FLAT_INVOICE = {"rate": {"kind": "flat", "rate": "10"}, "basis": "invoice", "duration": "lifetime",
                "clawback_days": 60}


async def call(person: Person, method: str, url: str, body: object = None, *, accept: str = "application/json",
               **kwargs: object):
    return await person.client.request(method, url, json=body, headers={"x-csrf-token": person.csrf,
                                                                          "accept": accept}, **kwargs)


@dataclass
class Org:
    """A partner organisation as the tests made it."""

    id: str
    name: str
    marker: str  # a word only this organisation's records carry
    user: Person
    deal_id: str = ""
    registration_id: str = ""
    ids: dict[str, str] = field(default_factory=dict)


async def partner_user(g: Gateway, partner_id: str, email: str) -> Person:
    admin = g.people[Role.admin]
    r = await call(admin, "POST", "/api/users", {"email": email, "name": f"Partner {email}", "role": "partner",
                                                  "password": PASSWORD, "partner_id": partner_id})
    assert r.status_code == 201, r.text
    # Signed in by hand: a partner user lands on /portal, not the dashboard Gateway.sign_in expects.
    client = g.client()
    page = await client.get("/signin")
    signed = await client.post("/signin", data={"email": email, "password": PASSWORD,
                                                 "csrf_token": csrf_from(page.text), "next": "/"})
    assert signed.status_code == 303 and signed.headers["location"] == "/portal", signed.headers
    home = await client.get("/portal", headers={"accept": "text/html"})
    assert home.status_code == 200, home.text
    return Person(role=Role.partner, email=email, client=client, csrf=csrf_from(home.text), id=r.json()["id"])


async def make_org(g: Gateway, label: str, *, owner: Person) -> Org:
    marker = f"{label}{uuid.uuid4().hex[:6]}"
    member = g.people[Role.member]
    r = await call(member, "POST", "/api/partners", {"name": f"Org {marker}", "type": "referral",
                                                       "status": "active", "owner": owner.email})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    user = await partner_user(g, pid, f"{marker.lower()}@partner.test")
    org = Org(id=pid, name=f"Org {marker}", marker=marker, user=user)
    deal = await call(member, "POST", "/api/opportunities", {
        "name": f"Deal {marker}", "customer": f"Customer {marker}", "partner_id": pid, "amount": "12345.00",
        "deal_model": "referral"})
    assert deal.status_code == 201, deal.text
    org.deal_id = deal.json()["id"]
    reg = await call(user, "POST", "/api/portal/registrations", {
        "name": f"Registered {marker}", "customer": f"Prospect {marker}", "amount": "5000"})
    assert reg.status_code == 201, reg.text
    org.registration_id = reg.json()["id"]

    async def known() -> bool:
        s = await call(member, "GET", f"/api/commissions/statements/{pid}/2026-Q4")
        return s.status_code == 200 and bool(s.json()["partner_name"])

    await eventually(known, "the commissions service to learn of the new partner")
    a = await call(member, "POST", "/api/commissions/agreements", {
        "partner_id": pid, "name": f"Fee {marker}", "direction": "payable", "currency": "USD",
        "effective_from": "2026-01-01", "terms": FLAT_INVOICE})
    assert a.status_code == 201, a.text
    inv = await call(member, "POST", "/api/commissions/revenue/invoices", {
        "invoice_id": f"INV-{marker}", "customer": f"Invoiced {marker}", "partner_id": pid, "amount": "1000.00",
        "currency": "USD", "paid_at": "2026-11-05T10:00:00Z"})
    assert inv.status_code == 201, inv.text
    return org


async def certified_people(g: Gateway, orgs: list[Org]) -> None:
    """A person at each organisation (named with its marker) certified on a training module."""
    manager, member = g.people[Role.manager], g.people[Role.member]
    module = await call(manager, "POST", "/api/enablement/modules", {"name": f"Module {uuid.uuid4().hex[:6]}",
                                                                      "duration_minutes": 60, "required": True})
    assert module.status_code == 201, module.text
    for org in orgs:
        async def made(org: Org = org):
            r = await call(member, "POST", "/api/contacts", {"partner_id": org.id, "name": f"Person {org.marker}"})
            return r.json() if r.status_code == 201 else None

        person = await eventually(made, "the relationships service to know the partner")
        org.ids["contact_id"] = person["id"]
        r = await call(member, "PUT", f"/api/contacts/{person['id']}/certifications/{module.json()['id']}",
                       {"taken_on": "2026-11-02", "score": 95})
        assert r.status_code == 200, r.text
