"""The week's demo data through the real services: four past weeks, closed, with updates (one late, one
missing), decisions, tasks done and tasks carried so often they are flagged, and this week open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts import pipeline as pc
from contracts import week as w
from gateway.auth import Role
from gateway.demo_week import seed_week
from runtime import bus
from runtime.commands import send
from runtime.testing import eventually

pytestmark = pytest.mark.usefixtures("fresh")


async def test_four_past_weeks_and_this_one(gw, private_nats):
    nc = await bus.connect(private_nats, name="test-demo-week")
    try:
        owners = {"vp": gw.people[Role.admin].id, "maria": gw.people[Role.manager].id,
                  "tom": gw.people[Role.member].id, "aisha": gw.people["member2"].id,
                  "board": gw.people[Role.viewer].id}
        for name, handle in (("Snowflake", "maria"), ("HashiCorp", "tom"), ("Okta", "aisha"), ("Elastic", "tom")):
            await send(nc, pc.CreatePartner(name=f"{name}", type=pc.PartnerType.isv, owner=owners[handle]))
        now = datetime.now(UTC)
        counts = await seed_week(nc, owners=owners, names={v: k.title() for k, v in owners.items()},
                                 time_zone="America/New_York", now=now)
        assert counts["meetings"] == 4 and counts["updates"] == 11 and counts["decisions"] == 4

        meetings = (await send(nc, w.ListMeetings())).items
        attendees = {a.user_id for a in (await send(nc, w.GetMeetingView(week=meetings[0].week))).meeting.attendees}
        assert owners["vp"] in attendees and owners["board"] not in attendees
        assert len(meetings) == 5 and meetings[0].status == w.MeetingStatus.open
        assert all(m.status == w.MeetingStatus.closed for m in meetings[1:])
        current = await send(nc, w.GetMeetingView(week=meetings[0].week))
        flagged = [t for t in current.tasks_carried if t.carried >= current.carried_flag_at]
        assert {t.title for t in flagged} == {"Get the HashiCorp reseller addendum signed",
                                              "Collect the Okta win-wire details for AWS"}
        assert all(t.carried == 4 for t in flagged)
        assert any(t.carried == 1 and t.owner == owners["tom"] for t in current.tasks_carried)
        three_back = await send(nc, w.GetMeetingView(week=meetings[3].week))
        late = {u.member: u.on_time for u in three_back.updates if u.status is not None}
        assert late[owners["aisha"]] is False and late[owners["maria"]] is True
        two_back = await send(nc, w.GetMeetingView(week=meetings[2].week))
        assert next(u for u in two_back.updates if u.member == owners["tom"]).status is None
        assert two_back.tasks_done and two_back.meeting.decisions
        snowflake = [ln for u in two_back.updates for ln in u.lines if ln.partner_name == "Snowflake"]
        assert snowflake and snowflake[0].kind == w.LineKind.partner

        # The gateway's read model hears of it all: overdue tasks per member for the dashboard.
        async def overdue():
            r = await gw.people[Role.admin].client.get("/api/week/kpis")
            return r.json() if r.status_code == 200 and r.json()["members"] else None

        kpis = await eventually(overdue, "the week's KPIs")
        tom = next(m for m in kpis["members"] if m["member"] == owners["tom"])
        # Tom left last week's next step and the HashiCorp addendum open (both due on past Fridays); of the last
        # four meetings (this week's and the three before) he submitted on time one and three weeks back.
        assert (tom["overdue_tasks"], tom["updates_on_time"], kpis["weeks"]) == (2, 2, 4)
        assert (now - timedelta(days=35)).date() <= meetings[-1].week
    finally:
        await nc.close()
