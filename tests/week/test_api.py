"""The week over HTTP in front of the real services: pages, the update API with its versions and errors,
tasks with who may change what, the meeting view and its minutes, closing, and the calendar feed."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.auth import Role
from runtime.testing import eventually
from tests.week.conftest import call

pytestmark = pytest.mark.usefixtures("fresh")


async def this_week(gw) -> str:
    r = await call(gw, Role.member, "GET", "/api/week")
    assert r.status_code == 200, r.text
    return r.json()["week"]


async def deal(gw, owner: str, **kw) -> dict:
    r = await call(
        gw,
        Role.member,
        "POST",
        "/api/opportunities",
        {"name": f"Deal {uuid.uuid4().hex[:6]}", "customer": "Acme", "amount": "25000.00", "owner": owner, **kw},
    )
    assert r.status_code == 201, r.text
    return r.json()


class TestUpdateApi:
    async def test_prefilled_draft_conflict_submit_and_the_meeting_view(self, gw):
        week = await this_week(gw)
        me = gw.people[Role.member].id
        close = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
        mine = await deal(gw, me, expected_close_date=close)
        theirs = await deal(gw, gw.people["member2"].id, expected_close_date=close)

        async def prefilled():
            r = await call(gw, Role.member, "GET", f"/api/week/meetings/{week}/updates/me")
            return r.json() if any(ln["ref_id"] == mine["id"] for ln in r.json()["lines"]) else None

        update = await eventually(prefilled, "the deal to reach the member's form")
        assert theirs["id"] not in {ln["ref_id"] for ln in update["lines"]}
        lines = [
            {**{k: ln[k] for k in ("key", "kind", "ref_id", "label")}, "status": "at_risk", "note": "legal review"}
            for ln in update["lines"]
            if ln["kind"] == "deal"
        ]
        lines.append(
            {
                "key": "free:1",
                "label": "AWS summit",
                "status": "on_track",
                "next_step": "book booth",
                "next_step_due": week,
            }
        )
        url = f"/api/week/meetings/{week}/updates/me"
        saved = await call(gw, Role.member, "PUT", url, {"version": 0, "lines": lines})
        assert saved.status_code == 200, saved.text
        stale = await call(gw, Role.member, "PUT", url, {"version": 0, "lines": []})
        assert stale.status_code == 409 and stale.json()["detail"][0]["loc"][-1] == "version"
        huge = await call(gw, Role.member, "PUT", url, {"version": 1, "lines": [{"key": "k", "note": "x" * 5000}]})
        assert huge.status_code == 422 and huge.json()["detail"][0]["loc"][-1] == "note"
        unknown = await call(
            gw,
            Role.member,
            "PUT",
            url,
            {"version": 1, "lines": [{"key": "deal:x", "kind": "deal", "ref_id": str(uuid.uuid4())}]},
        )
        assert unknown.status_code == 422, unknown.text
        submitted = await call(gw, Role.member, "PUT", url, {"version": 1, "lines": lines, "submit": True})
        assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"

        other = await call(gw, Role.member, "GET", f"/api/week/meetings/{week}/updates/{gw.people['member2'].id}")
        assert other.status_code == 403
        as_manager = await call(
            gw, Role.manager, "GET", f"/api/week/meetings/{week}/updates/{gw.people[Role.member].email}"
        )
        assert as_manager.status_code == 200 and as_manager.json()["status"] == "submitted"

        view = (await call(gw, Role.admin, "GET", f"/api/week/meetings/{week}")).json()
        mine_update = next(u for u in view["updates"] if u["member"] == me)
        assert mine_update["status"] == "submitted" and len(mine_update["lines"]) == len(lines)
        assert any(t["title"] == "book booth" for t in view["tasks_new"])
        created = [c for c in view["changes"] if c["opportunity_id"] == mine["id"]]
        assert created and created[0]["kind"] == "created" and created[0]["amount"] == "25000.00"

        decision = await call(
            gw, Role.manager, "POST", f"/api/week/meetings/{week}/decisions", {"text": "Focus on the Snowflake launch"}
        )
        assert decision.status_code == 201
        md = await call(gw, Role.viewer, "GET", f"/api/week/meetings/{week}/minutes.md")
        assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
        assert "Focus on the Snowflake launch" in md.text and "AWS summit" in md.text and "book booth" in md.text

        version = (await call(gw, Role.member, "GET", "/api/week")).json()["version"]
        assert (
            await call(gw, Role.member, "POST", f"/api/week/meetings/{week}/close", {"version": version})
        ).status_code == 403
        closed = await call(gw, Role.manager, "POST", f"/api/week/meetings/{week}/close", {"version": version})
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        late = await call(gw, Role.member, "PUT", url, {"version": submitted.json()["version"], "lines": []})
        assert late.status_code == 409 and late.json()["detail"][0]["loc"][-1] == "week"

    async def test_bad_weeks_and_members(self, gw):
        await this_week(gw)
        for url, status in (
            ("/api/week/meetings/2026-12-01", 422),
            ("/api/week/meetings/not-a-date", 422),
            ("/api/week/meetings/1990-01-01", 404),
            ("/api/week/meetings/1990-01-01/updates/nobody@x.test", 422),
        ):
            r = await call(gw, Role.manager, "GET", url)
            assert r.status_code == status, (url, r.text)


class TestTasksApi:
    async def test_who_may_create_and_change_tasks(self, gw):
        await this_week(gw)
        me, other = gw.people[Role.member], gw.people["member2"]
        due = (date.today() + timedelta(days=3)).isoformat()
        for_other = await call(
            gw, Role.member, "POST", "/api/tasks", {"owner": other.email, "title": "t", "due_date": due}
        )
        assert for_other.status_code == 403
        mine = await call(
            gw, Role.member, "POST", "/api/tasks", {"owner": me.email, "title": "call the PDM", "due_date": due}
        )
        assert mine.status_code == 201 and mine.json()["owner"] == me.id
        task = mine.json()
        by_other = await call(gw, "member2", "PATCH", f"/api/tasks/{task['id']}", {"version": 1, "status": "done"})
        assert by_other.status_code == 403
        no_reason = await call(
            gw, Role.member, "PATCH", f"/api/tasks/{task['id']}", {"version": 1, "status": "dropped"}
        )
        assert no_reason.status_code == 422
        assigned = await call(
            gw, Role.manager, "POST", "/api/tasks", {"owner": other.id, "title": "renew", "due_date": due}
        )
        assert assigned.status_code == 201
        unknown_owner = await call(
            gw, Role.manager, "POST", "/api/tasks", {"owner": "ghost@x.test", "title": "t", "due_date": due}
        )
        assert unknown_owner.status_code == 422 and unknown_owner.json()["detail"][0]["loc"][-1] == "owner"
        done = await call(gw, Role.member, "PATCH", f"/api/tasks/{task['id']}", {"version": 1, "status": "done"})
        assert done.status_code == 200 and done.json()["status"] == "done"
        stale = await call(gw, Role.member, "PATCH", f"/api/tasks/{task['id']}", {"version": 1, "status": "open"})
        assert stale.status_code == 409
        missing = await call(gw, Role.manager, "PATCH", f"/api/tasks/{uuid.uuid4()}", {"version": 1, "status": "done"})
        assert missing.status_code == 404

    async def test_calendar_feed_shows_open_tasks_and_stops_when_revoked(self, gw):
        await this_week(gw)
        me = gw.people[Role.member]
        due = date.today() + timedelta(days=2)
        await call(
            gw,
            Role.member,
            "POST",
            "/api/tasks",
            {"owner": me.id, "title": "Send MAP claim; call, Bob", "due_date": due.isoformat()},
        )
        made = await call(gw, Role.member, "POST", "/api/tasks/calendar-feed")
        assert made.status_code == 201
        url = made.json()["url"]
        path = url.split("testserver", 1)[-1] if "testserver" in url else "/" + url.split("/", 3)[3]
        anonymous = gw.client()
        feed = await anonymous.get(path)
        assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
        assert f"DTSTART;VALUE=DATE:{due:%Y%m%d}" in feed.text and "Send MAP claim\\; call\\, Bob" in feed.text
        assert all(len(line.encode()) <= 75 for line in feed.text.split("\r\n"))
        assert (await anonymous.get(path.replace("pocal_", "pocal_x"))).status_code == 404
        assert (await call(gw, Role.member, "DELETE", "/api/tasks/calendar-feed")).status_code == 204
        assert (await anonymous.get(path)).status_code == 404
        await anonymous.aclose()


class TestPages:
    async def test_week_pages_render_for_each_role(self, gw):
        week = await this_week(gw)
        for role in (Role.member, Role.manager, Role.admin):
            page = await gw.people[role].client.get("/week", headers={"accept": "text/html"})
            assert page.status_code == 200 and 'data-testid="update-form"' in page.text
        viewer = await gw.people[Role.viewer].client.get("/week", headers={"accept": "text/html"})
        assert viewer.status_code == 303 and "/week/meeting" in viewer.headers["location"]
        meeting = await gw.people[Role.viewer].client.get(f"/week/meeting?week={week}", headers={"accept": "text/html"})
        assert meeting.status_code == 200 and "Updates:" in meeting.text and "close-meeting" not in meeting.text
        as_vp = await gw.people[Role.admin].client.get("/week/meeting", headers={"accept": "text/html"})
        assert 'data-testid="close-meeting"' in as_vp.text
        past = await gw.people[Role.viewer].client.get("/week/meetings", headers={"accept": "text/html"})
        assert past.status_code == 200 and week in past.text
        bad = await gw.people[Role.viewer].client.get("/week/meeting?week=2026-12-02", headers={"accept": "text/html"})
        assert bad.status_code == 404


class TestSettingsApi:
    async def test_only_admins_change_the_week_with_a_valid_zone_and_the_current_version(self, gw):
        await this_week(gw)
        current = (await call(gw, Role.viewer, "GET", "/api/week/settings")).json()
        body = {"time_zone": "Europe/Berlin", "updates_due_weekday": 0, "updates_due_hour": 10,
                "version": current["version"]}
        assert (await call(gw, Role.manager, "PUT", "/api/week/settings", body)).status_code == 403
        for bad, field in (({"time_zone": "Mars/Olympus"}, "time_zone"), ({"updates_due_hour": 24}, "updates_due_hour"),
                           ({"time_zone": "x" * 65}, "time_zone")):
            r = await call(gw, Role.admin, "PUT", "/api/week/settings", {**body, **bad})
            assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field, r.text
        stale = await call(gw, Role.admin, "PUT", "/api/week/settings", {**body, "version": current["version"] + 5})
        assert stale.status_code == 409
        assert (await call(gw, Role.viewer, "GET", "/api/week/settings")).json() == current
        changed = await call(gw, Role.admin, "PUT", "/api/week/settings", body)
        assert changed.status_code == 200 and changed.json()["time_zone"] == "Europe/Berlin"
