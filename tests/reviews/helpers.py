"""What the review tests set up: a partner with a person, a won deal this month, an open deal and a
certification due."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.auth import Role
from runtime.testing import eventually
from tests.support.gateway import Gateway

TODAY = datetime.now(UTC).date()
THIS_MONTH = TODAY.strftime("%Y-%m")


async def call(g: Gateway, role: Role, method: str, url: str, body: object = None, **kw):
    person = g.people[role]
    return await person.client.request(method, url, json=body, headers={"x-csrf-token": person.csrf,
                                                                          "accept": "application/json"}, **kw)


@dataclass
class Setup:
    partner_id: str
    partner_name: str
    person_id: str
    person_name: str
    open_deal: str
    module: str


async def partner_with_figures(g: Gateway) -> Setup:
    tag = uuid.uuid4().hex[:6]
    r = await call(g, Role.member, "POST", "/api/partners", {"name": f"Rev {tag}", "type": "isv", "status": "active",
                                                              "owner": g.people[Role.member].email})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    won = await call(g, Role.member, "POST", "/api/opportunities", {"name": f"Won {tag}", "customer": "Acme",
                                                                     "partner_id": pid, "amount": "12000"})
    assert won.status_code == 201
    moved = await call(g, Role.member, "POST", f"/api/opportunities/{won.json()['id']}/stage", {"stage": "won"})
    assert moved.status_code == 200, moved.text
    open_ = await call(g, Role.member, "POST", "/api/opportunities", {"name": f"Open {tag}", "customer": "Globex",
                                                                       "partner_id": pid, "amount": "5000"})
    assert open_.status_code == 201

    async def person():
        c = await call(g, Role.member, "POST", "/api/contacts", {"partner_id": pid, "name": f"Ann {tag}"})
        return c.json() if c.status_code == 201 else None

    contact = await eventually(person, "the relationships service to know the partner")
    module = await call(g, Role.manager, "POST", "/api/enablement/modules",
                        {"name": f"Tech {tag}", "duration_minutes": 30})
    assert module.status_code == 201
    cert = await call(g, Role.member, "PUT", f"/api/contacts/{contact['id']}/certifications/{module.json()['id']}",
                      {"due_on": (TODAY + timedelta(days=14)).isoformat()})
    assert cert.status_code == 200, cert.text

    async def in_read_models() -> bool:  # the gateway's read models have the won and the open deal
        k = await call(g, Role.viewer, "GET", f"/api/partners/{pid}/reviews")
        return k.status_code == 200

    await eventually(in_read_models, "the review list")
    return Setup(partner_id=pid, partner_name=f"Rev {tag}", person_id=contact["id"], person_name=f"Ann {tag}",
                 open_deal=open_.json()["id"], module=f"Tech {tag}")
