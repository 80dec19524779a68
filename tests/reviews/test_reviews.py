"""Business reviews: the agenda pre-filled from the partner's figures (won revenue against the previous
period and open deals from the gateway's read models; commissions, funding and certifications due from
their services), notes, decisions, follow-up tasks that land on the owner's week, held once (a touch
with each attendee), the print view; hostile input refused with the field named."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from contracts import reviews as rc
from gateway.auth import Role
from runtime.formatting import money
from runtime.testing import eventually
from tests.reviews.helpers import THIS_MONTH, TODAY, Setup, call, partner_with_figures
from tests.support.gateway import Gateway


class TestPeriods:
    @pytest.mark.parametrize("kind,on,expected", [
        (rc.ReviewKind.monthly, date(2026, 12, 3), "2026-11"),
        (rc.ReviewKind.monthly, date(2026, 1, 31), "2025-12"),
        (rc.ReviewKind.quarterly, date(2026, 12, 3), "2026-Q3"),
        (rc.ReviewKind.quarterly, date(2026, 2, 1), "2025-Q4"),
    ])
    def test_the_default_is_the_last_whole_period(self, kind, on, expected):
        assert rc.default_period(kind, on) == expected

    def test_ranges_and_bad_labels(self):
        assert rc.period_range(rc.ReviewKind.monthly, "2026-02") == (date(2026, 2, 1), date(2026, 3, 1))
        assert rc.period_range(rc.ReviewKind.quarterly, "2026-Q4") == (date(2026, 10, 1), date(2027, 1, 1))
        assert rc.previous_period(rc.ReviewKind.quarterly, "2026-Q1") == "2025-Q4"
        for kind, label in ((rc.ReviewKind.monthly, "2026-13"), (rc.ReviewKind.monthly, "2026-Q1"),
                            (rc.ReviewKind.quarterly, "2026-11")):
            with pytest.raises(ValueError):
                rc.period_range(kind, label)


async def plan(g: Gateway, s: Setup, **extra) -> dict:
    body = {"kind": "monthly", "scheduled_on": TODAY.isoformat(), "period": THIS_MONTH, "attendees": [s.person_id],
            **extra}

    async def made():
        r = await call(g, Role.member, "POST", f"/api/partners/{s.partner_id}/reviews", body)
        assert r.status_code == 201, r.text
        agenda = r.json()["agenda"]
        # The read models fill as the pipeline's events arrive: retry until both deals are in.
        return r.json() if agenda["revenue"] and agenda["open_deals"] == 1 else None

    return await eventually(made, "a review whose agenda holds the won and the open deal")


class TestAgenda:
    async def test_the_agenda_holds_the_partners_figures(self, gw: Gateway):
        s = await partner_with_figures(gw)
        review = await plan(gw, s)
        a = review["agenda"]
        assert a["period"] == THIS_MONTH and a["previous_period"] == rc.previous_period(rc.ReviewKind.monthly,
                                                                                          THIS_MONTH)
        assert a["revenue"] == [{"currency": "USD", "amount": "12000.00", "previous": "0.00", "deals": 1}]
        assert a["pipeline"][0]["amount"] == "5000.00" and [d["id"] for d in a["deals"]] == [s.open_deal]
        assert a["deals"][0]["stage"] == "Lead", "the stage's name, not its key"
        assert a["commissions"] == [] and a["funding"] == [] and a["unavailable"] == []
        assert a["certifications"] == [{"person": s.person_name, "module": s.module, "status": "due",
                                        "on": (TODAY + timedelta(days=14)).isoformat()}]
        assert review["owner"] == gw.people[Role.member].id and review["status"] == "planned"
        assert [x["name"] for x in review["attendees"]] == [s.person_name]
        page = await gw.people[Role.viewer].client.get(f"/reviews/{review['id']}/print",
                                                       headers={"accept": "text/html"})
        assert page.status_code == 200 and money("12000", "USD") in page.text and s.module in page.text

    async def test_the_default_period_and_a_refresh(self, gw: Gateway):
        s = await partner_with_figures(gw)
        r = await call(gw, Role.member, "POST", f"/api/partners/{s.partner_id}/reviews",
                       {"kind": "quarterly", "scheduled_on": "2026-12-03"})
        assert r.status_code == 201 and r.json()["period"] == "2026-Q3"
        refreshed = await call(gw, Role.member, "PATCH", f"/api/reviews/{r.json()['id']}", {"refresh_agenda": True})
        assert refreshed.status_code == 200 and refreshed.json()["agenda"]["as_of"] >= r.json()["agenda"]["as_of"]
        assert refreshed.json()["version"] == 2


class TestDuringTheMeeting:
    async def test_notes_decisions_follow_ups_on_the_week_and_held_once(self, gw: Gateway):
        s = await partner_with_figures(gw)
        review = await plan(gw, s)
        url = f"/api/reviews/{review['id']}"
        assert (await call(gw, Role.member, "PATCH", url, {"notes": "Pipeline review.\nGood quarter."})).status_code \
            == 200
        decided = await call(gw, Role.member, "POST", f"{url}/decisions", {"text": "Joint webinar in January"})
        assert decided.status_code == 200 and decided.json()["decisions"][0]["text"] == "Joint webinar in January"
        title = f"Send the MDF plan {uuid.uuid4().hex[:4]}"
        due = (TODAY + timedelta(days=7)).isoformat()
        followed = await call(gw, Role.member, "POST", f"{url}/follow-ups",
                              {"title": title, "owner": gw.people[Role.member].email, "due_date": due})
        assert followed.status_code == 200, followed.text
        fu = followed.json()["follow_ups"]
        assert [(f["title"], f["owner"], f["status"]) for f in fu] == [(title, gw.people[Role.member].id, "open")]
        tasks = (await call(gw, Role.member, "GET", "/api/tasks", params={"owner": "me", "link_id": s.partner_id}))
        assert title in {t["title"] for t in tasks.json()["items"]}

        async def on_the_week_page() -> bool:
            page = await gw.people[Role.member].client.get("/week", headers={"accept": "text/html"})
            return title in page.text

        await eventually(on_the_week_page, "the follow-up on the owner's week")

        async def touches() -> int:
            c = (await call(gw, Role.viewer, "GET", f"/api/contacts/{s.person_id}")).json()
            return c["contact"]["strength"]["touches"]

        assert await touches() == 0
        held = await call(gw, Role.member, "PATCH", url, {"held": True})
        assert held.status_code == 200 and held.json()["status"] == "held" and held.json()["held_at"]
        assert await touches() == 1
        # Back to planned and held again: the meeting is logged once.
        await call(gw, Role.member, "PATCH", url, {"held": False})
        await call(gw, Role.member, "PATCH", url, {"held": True})
        assert await touches() == 1
        listed = (await call(gw, Role.viewer, "GET", f"/api/partners/{s.partner_id}/reviews")).json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == review["id"]
        page = await gw.people[Role.viewer].client.get(f"/reviews/{review['id']}/print",
                                                       headers={"accept": "text/html"})
        assert "Joint webinar in January" in page.text and title in page.text and "Good quarter." in page.text


class TestRefused:
    async def test_hostile_input(self, gw: Gateway):
        s = await partner_with_figures(gw)
        other = await call(gw, Role.member, "POST", "/api/partners", {"name": f"Other {uuid.uuid4().hex[:6]}",
                                                                      "type": "isv"})
        stranger = await call(gw, Role.member, "POST", "/api/contacts", {"partner_id": other.json()["id"],
                                                                          "name": "Stranger"})
        base = {"kind": "monthly", "scheduled_on": TODAY.isoformat()}
        url = f"/api/partners/{s.partner_id}/reviews"
        for body, field in (({**base, "period": "2026-13"}, "period"), ({**base, "period": "2026-Q5"}, "period"),
                            ({**base, "kind": "quarterly", "period": "2026-11"}, "period"),
                            ({**base, "kind": "weekly"}, "kind"), ({**base, "scheduled_on": "9999-01-01"},
                                                                   "scheduled_on"),
                            ({**base, "scheduled_on": 20261201}, "scheduled_on"),
                            ({**base, "attendees": [str(uuid.uuid4())]}, "attendees"),
                            ({**base, "attendees": ["x\u0000"]}, "attendees"),
                            ({**base, "owner": "nobody@nowhere.test"}, "owner"),
                            ({**base, "surprise": True}, "surprise")):
            r = await call(gw, Role.member, "POST", url, body)
            assert r.status_code == 422 and field in r.text, (body, r.status_code, r.text)
        if stranger.status_code == 201:
            r = await call(gw, Role.member, "POST", url, {**base, "attendees": [stranger.json()["id"]]})
            assert r.status_code == 422 and "attendees" in r.text
        assert (await call(gw, Role.viewer, "POST", url, base)).status_code == 403
        assert (await call(gw, Role.member, "POST", f"/api/partners/{uuid.uuid4()}/reviews", base)).status_code \
            == 404
        assert (await call(gw, Role.viewer, "GET", f"/api/partners/{s.partner_id}/reviews")).json()["total"] == 0
        review = await plan(gw, s)
        rurl = f"/api/reviews/{review['id']}"
        for method, path, body in (("PATCH", "", {"notes": "a\u0000b"}), ("PATCH", "", {"notes": "x" * 20_001}),
                                   ("PATCH", "", {"expected_version": 99, "notes": "late"}),
                                   ("POST", "/decisions", {"text": ""}),
                                   ("POST", "/follow-ups", {"title": "T", "owner": "nobody@nowhere.test",
                                                            "due_date": TODAY.isoformat()}),
                                   ("POST", "/follow-ups", {"title": "T", "owner": gw.people[Role.member].email,
                                                            "due_date": "0001-01-01"})):
            r = await call(gw, Role.member, method, rurl + path, body)
            assert r.status_code in (409, 422), (path, body, r.text)
        assert (await call(gw, Role.viewer, "GET", rurl)).json()["version"] == 1, "nothing changed"
        assert (await call(gw, Role.viewer, "GET", f"/api/reviews/{uuid.uuid4()}")).status_code == 404
        page = await gw.people[Role.viewer].client.get(f"/reviews/{uuid.uuid4()}", headers={"accept": "text/html"})
        assert page.status_code == 404
