"""Rules fire on their trigger, once per window and person, whatever the duplicates; the email goes
through a real SMTP server once; the in-app feed shows the alert with why it fired and a link."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts import deadlines as dl
from contracts import notifications as n
from contracts import pipeline as p
from runtime.commands import send
from runtime.testing import eventually
from tests.notifications.conftest import (
    ADMIN,
    MANAGER,
    MEMBER,
    OWNER,
    carried,
    cooling,
    deadline,
    deal,
    deliveries,
    feed,
    mails_about,
    publish,
    settled,
    tick,
    won,
)


class TestBigDealWon:
    async def test_fires_once_to_the_leads_and_the_owner_with_one_email_each(self, service, bus_client, mailbox):
        deal_id = uuid.uuid4()
        event = won(deal_id, "80000.00", customer=f"Globex {deal_id.hex[:6]}")
        await publish(bus_client, event)
        await publish(bus_client, event)  # the same event again (a redelivery the broker did not fold)
        # A second fact about the same deal (won again after a reopen) within the window: no new alert.
        await publish(bus_client, won(deal_id, "80000.00", customer=f"Globex {deal_id.hex[:6]}"))
        await settled(bus_client, service)

        for user in (ADMIN, MANAGER, OWNER):
            mine = [a for a in (await feed(bus_client, user)).items if a.link == f"/opportunities/{deal_id}"]
            assert len(mine) == 1, user
            assert mine[0].rule == "big_deal_won"
            assert "$80,000" in mine[0].why and "$50,000" in mine[0].why
        assert not [a for a in (await feed(bus_client, MEMBER)).items if str(deal_id) in a.link]

        subject = f"Globex {deal_id.hex[:6]}"
        got = await eventually(lambda: _n(mails_about(mailbox, subject), 3), "three emails")
        assert sorted(str(m["To"]) for m in got) == ["manager@example.test", "owner@example.test", "vp@example.test"]
        body = got[0].get_body(preferencelist=("plain",)).get_content()
        assert f"https://partnerops.example.test/opportunities/{deal_id}" in body
        assert "Why:" in body
        html = got[0].get_body(preferencelist=("html",)).get_content()
        assert f'href="https://partnerops.example.test/opportunities/{deal_id}"' in html
        await settled(bus_client, service)
        assert len(mails_about(mailbox, subject)) == 3

    async def test_a_deal_below_the_line_raises_nothing(self, service, bus_client, mailbox):
        deal_id = uuid.uuid4()
        await publish(bus_client, won(deal_id, "49999.99", customer=f"Small {deal_id.hex[:6]}"))
        await settled(bus_client, service)
        assert not [a for a in (await feed(bus_client, ADMIN)).items if str(deal_id) in a.link]

    async def test_an_old_event_read_from_history_raises_nothing(self, service, bus_client):
        deal_id = uuid.uuid4()
        old = won(deal_id, "90000.00").model_copy(update={"occurred_at": datetime.now(UTC) - timedelta(days=30)})
        await publish(bus_client, old)
        await settled(bus_client, service)
        assert not [a for a in (await feed(bus_client, ADMIN)).items if str(deal_id) in a.link]


def _n(items, count):
    async def check():
        return items if len(items) >= count else None
    return check()


class TestAceActionRequired:
    async def test_fires_once_per_due_date_and_again_for_a_new_one(self, service, bus_client):
        due = (datetime.now(UTC) + timedelta(days=10)).date()
        snapshot = deal(ace=p.AceState(review_status=p.AceReviewStatus.action_required, action_due_date=due,
                                       reviewer_comments="Add the customer's website"))
        await publish(bus_client, p.OpportunityUpdatedV1(opportunity=snapshot))
        await publish(bus_client, p.OpportunityUpdatedV1(opportunity=snapshot.model_copy(update={"version": 2})))
        later = snapshot.model_copy(update={"version": 3, "ace": snapshot.ace.model_copy(
            update={"action_due_date": due + timedelta(days=5)})})
        await publish(bus_client, p.OpportunityUpdatedV1(opportunity=later))
        await settled(bus_client, service)
        mine = [a for a in (await feed(bus_client, OWNER)).items if a.link == f"/opportunities/{snapshot.id}"]
        assert len(mine) == 2
        assert {due.isoformat() in a.why for a in mine} == {True, False}
        assert "Add the customer's website" in mine[0].why


class TestScheduledRules:
    async def test_a_stuck_deal_fires_on_the_tick_and_not_again_within_a_week(self, service, bus_client):
        now = datetime.now(UTC)
        stuck = deal(entered=now - timedelta(days=45), name=f"Stuck {uuid.uuid4().hex[:6]}")
        fresh = deal(entered=now - timedelta(days=2))
        for o in (stuck, fresh):
            await publish(bus_client, p.OpportunityCreatedV1(opportunity=o))
        await settled(bus_client, service)
        first = tick(now)
        for t in (first, tick(now + timedelta(hours=1)), tick(now + timedelta(days=3))):
            await publish(bus_client, t)
        await publish(bus_client, first)  # a redelivered tick
        await settled(bus_client, service)
        mine = [a for a in (await feed(bus_client, OWNER)).items if a.rule == "deal_stuck"]
        assert [a.link for a in mine].count(f"/opportunities/{stuck.id}") == 1
        assert f"/opportunities/{fresh.id}" not in [a.link for a in mine]
        why = next(a.why for a in mine if a.link == f"/opportunities/{stuck.id}")
        assert "45 days" in why and "Proposal" in why
        await publish(bus_client, tick(now + timedelta(days=8)))  # a week later it is still stuck: reminded
        await settled(bus_client, service)
        mine = [a for a in (await feed(bus_client, OWNER)).items if a.link == f"/opportunities/{stuck.id}"]
        assert len(mine) == 2

    async def test_an_ace_deadline_within_three_days_fires(self, service, bus_client):
        now = datetime.now(UTC)
        due = (now + timedelta(days=2)).date()
        o = deal(ace=p.AceState(review_status=p.AceReviewStatus.action_required, action_due_date=due),
                 entered=now)
        await publish(bus_client, p.OpportunityCreatedV1(opportunity=o))
        await settled(bus_client, service)
        await publish(bus_client, tick(now))
        await settled(bus_client, service)
        rules = [a.rule for a in (await feed(bus_client, ADMIN)).items if a.link == f"/opportunities/{o.id}"]
        assert sorted(rules) == ["ace_action_required", "ace_deadline_near"]


class TestFeed:
    async def test_mark_read_counts_and_only_touches_the_users_own_alerts(self, service, bus_client):
        deal_id = uuid.uuid4()
        await publish(bus_client, won(deal_id, "150000.00"))
        await settled(bus_client, service)
        before = await feed(bus_client, OWNER)
        assert before.unread >= 1
        mine = next(a for a in before.items if str(deal_id) in a.link)
        admin_alert = next(a for a in (await feed(bus_client, ADMIN)).items if str(deal_id) in a.link)
        # The owner cannot mark the VP's alert read: ids are matched within the user's own feed.
        marked = await send(bus_client, n.MarkAlertsRead(user_id=OWNER, alert_ids=[admin_alert.id, mine.id]))
        assert marked.marked == 1
        after = await feed(bus_client, OWNER)
        assert after.unread == before.unread - 1
        assert next(a for a in (await feed(bus_client, ADMIN)).items if a.id == admin_alert.id).read_at is None

    async def test_muted_rule_and_email_off_are_respected(self, service, bus_client, mailbox):
        await send(bus_client, n.SetPreferences(user_id=MANAGER, muted_rules=["big_deal_won"]))
        await send(bus_client, n.SetPreferences(user_id=OWNER, email=False))
        try:
            deal_id = uuid.uuid4()
            await publish(bus_client, won(deal_id, "70000.00", customer=f"Muted {deal_id.hex[:6]}"))
            await settled(bus_client, service)
            assert not [a for a in (await feed(bus_client, MANAGER)).items if str(deal_id) in a.link]
            assert [a for a in (await feed(bus_client, OWNER)).items if str(deal_id) in a.link]
            to = [d.to for d in await deliveries(bus_client) if f"Muted {deal_id.hex[:6]}" in d.subject]
            assert to == ["vp@example.test"]
        finally:
            await send(bus_client, n.SetPreferences(user_id=MANAGER))
            await send(bus_client, n.SetPreferences(user_id=OWNER))


class TestRelationshipsRules:
    async def test_a_funding_deadline_fires_at_its_step_and_stops_once_met(self, service, bus_client):
        now = datetime.now(UTC)
        d = deadline(due=(now + timedelta(days=10)).date())
        await publish(bus_client, dl.DeadlineChangedV1(deadline=d))
        await settled(bus_client, service)
        await publish(bus_client, tick(now))
        await publish(bus_client, tick(now + timedelta(hours=1)))
        await settled(bus_client, service)
        mine = [a for a in (await feed(bus_client, OWNER)).items if a.link == d.link]
        assert len(mine) == 1 and mine[0].rule == "funding_deadline" and "$25,000 at stake" in mine[0].why
        # Met (a newer version), then an older version arrives late: no more reminders.
        await publish(bus_client, dl.DeadlineChangedV1(deadline=d.model_copy(
            update={"status": dl.DeadlineStatus.met, "version": 2})))
        await publish(bus_client, dl.DeadlineChangedV1(deadline=d))
        await settled(bus_client, service)
        await publish(bus_client, tick(now + timedelta(days=8)))  # would be the 3-day step
        await settled(bus_client, service)
        assert len([a for a in (await feed(bus_client, OWNER)).items if a.link == d.link]) == 1

    async def test_a_task_carried_a_third_time_alerts_its_owner_and_the_vp_once(self, service, bus_client):
        event = carried(3)
        await publish(bus_client, carried(2))
        await publish(bus_client, event)
        await publish(bus_client, event.model_copy(update={"event_id": uuid.uuid4()}))
        await settled(bus_client, service)
        for user in (OWNER, ADMIN):
            mine = [a for a in (await feed(bus_client, user)).items if event.task.title in a.title]
            assert len(mine) == 1 and mine[0].rule == "task_carried"
        assert not [a for a in (await feed(bus_client, MANAGER)).items if event.task.title in a.title]

    async def test_a_crucial_contact_cooling_alerts_once_per_crossing(self, service, bus_client):
        event = cooling(5)
        await publish(bus_client, event)
        await publish(bus_client, event.model_copy(update={"event_id": uuid.uuid4(), "days_until_cold": 4}))
        await settled(bus_client, service)
        for user in (OWNER, ADMIN):
            mine = [a for a in (await feed(bus_client, user)).items if a.link == event.link]
            assert len(mine) == 1 and mine[0].rule == "contact_cooling", user
            assert "goes cold in 5 days" in mine[0].why and "$180,000" in mine[0].why


class TestSyncStale:
    async def test_a_stale_sync_alerts_the_admins_once_per_episode(self, service, bus_client):
        from contracts import sync

        catalog = f"Cat{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)

        def finished(at, *, ok=True, success=None, error=None):
            return sync.SyncRunFinishedV1(source="aws", catalog=catalog, kind="incremental", ok=ok, finished_at=at,
                                          last_success_at=at if ok else success, error=error)

        def mine(feed_):
            return [a for a in feed_.items if a.rule == "sync_stale" and catalog in a.title]

        good = now - timedelta(minutes=30)
        await publish(bus_client, finished(good))
        await settled(bus_client, service)
        await publish(bus_client, tick(now))  # 30 minutes: not stale
        await settled(bus_client, service)
        assert mine(await feed(bus_client, ADMIN)) == []
        # The passes fail from then on; the next ticks find it stale: one alert, however many ticks.
        await publish(bus_client, finished(now + timedelta(minutes=20), ok=False, success=good,
                                           error="ThrottlingException from AWS (after retries)"))
        await settled(bus_client, service)
        for hours in (1, 2, 3):
            await publish(bus_client, tick(now + timedelta(hours=hours)))
        await settled(bus_client, service)
        [alert] = mine(await feed(bus_client, ADMIN))
        assert alert.link == "/sync" and "ThrottlingException" in alert.why
        assert mine(await feed(bus_client, OWNER)) == [] and mine(await feed(bus_client, MANAGER)) == []
        # A good pass ends the episode; stale again later is a new episode and a new alert.
        recovered = now + timedelta(hours=4)
        await publish(bus_client, finished(recovered))
        await settled(bus_client, service)
        await publish(bus_client, tick(recovered + timedelta(minutes=10)))
        await publish(bus_client, tick(recovered + timedelta(hours=2)))
        await settled(bus_client, service)
        assert len(mine(await feed(bus_client, ADMIN))) == 2
