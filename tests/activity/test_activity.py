"""Partner activity and quality per month: leads, opportunities, proposals from the pipeline's events,
meetings from logged interactions, quality entered per month (only what is sent changes), trended on
the partner page; hostile input refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from gateway.auth import Role
from runtime.testing import eventually
from tests.reviews.helpers import call
from tests.support.gateway import Gateway

MONTH = datetime.now(UTC).strftime("%Y-%m")


async def new_partner(g: Gateway) -> str:
    r = await call(g, Role.member, "POST", "/api/partners", {"name": f"Act {uuid.uuid4().hex[:6]}", "type": "isv"})
    assert r.status_code == 201
    return r.json()["id"]


async def this_month(g: Gateway, pid: str) -> dict | None:
    r = await call(g, Role.viewer, "GET", f"/api/partners/{pid}/activity", params={"months": 1})
    return r.json()["months"][0] if r.status_code == 200 else None


class TestActivity:
    async def test_counted_from_deals_and_meetings(self, gw: Gateway):
        pid = await new_partner(gw)
        deals = []
        for name in ("One", "Two"):
            r = await call(gw, Role.member, "POST", "/api/opportunities", {"name": name, "customer": "Acme",
                                                                            "partner_id": pid, "amount": "100"})
            deals.append(r.json()["id"])
        for stage in ("qualified", "proposal"):
            r = await call(gw, Role.member, "POST", f"/api/opportunities/{deals[0]}/stage", {"stage": stage})
            assert r.status_code == 200, r.text

        async def person():
            c = await call(gw, Role.member, "POST", "/api/contacts", {"partner_id": pid, "name": "Mo"})
            return c.json() if c.status_code == 201 else None

        contact = await eventually(person, "the partner known to relationships")
        logged = await call(gw, Role.member, "POST", "/api/interactions", {
            "kind": "meeting", "contact_ids": [contact["id"]], "occurred_at": datetime.now(UTC).isoformat()})
        assert logged.status_code == 201, logged.text

        async def counted():
            m = await this_month(gw, pid)
            return m if m and m["leads"] == 2 and m["proposals"] == 1 and m["meetings"] == 1 else None

        m = await eventually(counted, "this month's activity")
        assert m["month"] == MONTH and m["opportunities"] == 1 and m["demos"] == 0
        longer = (await call(gw, Role.viewer, "GET", f"/api/partners/{pid}/activity",
                             params={"months": 12, "until": MONTH})).json()["months"]
        assert len(longer) == 12 and longer[-1]["month"] == MONTH and longer[0]["leads"] == 0

    async def test_quality_entered_per_month_and_shown_on_the_partner_page(self, gw: Gateway):
        pid = await new_partner(gw)
        await eventually(lambda: this_month(gw, pid), "the partner known to relationships")
        url = f"/api/partners/{pid}/quality/{MONTH}"
        r = await call(gw, Role.member, "PUT", url, {"lead_quality": "7.5", "implementation_success": 90})
        assert r.status_code == 200 and r.json()["lead_quality"] == "7.50", r.text
        r = await call(gw, Role.member, "PUT", url, {"customer_satisfaction": "82"})
        m = r.json()
        assert m["lead_quality"] == "7.50" and m["customer_satisfaction"] == "82.00" and \
            m["implementation_success"] == "90.00", "only what was sent changed"
        cleared = (await call(gw, Role.member, "PUT", url, {"lead_quality": None})).json()
        assert cleared["lead_quality"] is None and cleared["customer_satisfaction"] == "82.00"
        member = gw.people[Role.member]
        form = await member.client.post(f"/partners/{pid}/quality", data={
            "csrf_token": member.csrf, "month": MONTH, "lead_quality": "6"})
        assert form.status_code == 303 and "notice" in form.headers["location"]
        page = await member.client.get(f"/partners/{pid}", headers={"accept": "text/html"})
        assert page.status_code == 200 and 'data-testid="chart-activity-leads"' in page.text
        assert 'data-testid="activity-table"' in page.text and "6.0" in page.text

    @pytest.mark.parametrize("body,field", [
        ({"lead_quality": 11}, "lead_quality"), ({"lead_quality": -1}, "lead_quality"),
        ({"customer_satisfaction": "1e400"}, "customer_satisfaction"),
        ({"implementation_success": 100.001}, "implementation_success"),
        ({"lead_quality": "x\u0000"}, "lead_quality"), ({"surprise": 1}, "surprise"),
    ])
    async def test_bad_quality_is_refused(self, gw: Gateway, body: dict, field: str):
        pid = await new_partner(gw)
        r = await call(gw, Role.member, "PUT", f"/api/partners/{pid}/quality/{MONTH}", body)
        assert r.status_code == 422 and field in r.text, r.text

    async def test_unknown_partner_bad_month_and_roles(self, gw: Gateway):
        pid = await new_partner(gw)
        await eventually(lambda: this_month(gw, pid), "the partner known to relationships")
        assert (await call(gw, Role.member, "PUT", f"/api/partners/{pid}/quality/2026-13", {})).status_code == 422
        assert (await call(gw, Role.viewer, "GET", f"/api/partners/{pid}/activity",
                           params={"until": "2026-00"})).status_code == 422
        assert (await call(gw, Role.viewer, "GET", f"/api/partners/{pid}/activity",
                           params={"months": 37})).status_code == 422
        assert (await call(gw, Role.member, "PUT", f"/api/partners/{uuid.uuid4()}/quality/{MONTH}",
                           {"lead_quality": 5})).status_code == 404
        assert (await call(gw, Role.viewer, "PUT", f"/api/partners/{pid}/quality/{MONTH}",
                           {"lead_quality": 5})).status_code == 403
