"""Use cases of the notifications service: keep what the rules need from other services' events,
raise alerts (once per rule window and person), queue their emails, send the weekly digest, and answer
the gateway's commands. Never commits: the message or command boundary does."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import deadlines as dl
from contracts import notifications as n
from contracts import pipeline as p
from contracts import schedules as s
from contracts import sync
from contracts.base import Event
from runtime.errors import Conflict, Invalid, NotFound
from services.notifications import digest, emails
from services.notifications.domain import Fired, Recipient, digest_week, quiet_until, recipients, zone
from services.notifications.models import Alert, EmailDelivery, Preference
from services.notifications.repository import (
    AlertRepository,
    DeliveryRepository,
    PeopleRepository,
    PipelineCopyRepository,
    PreferenceRepository,
)
from services.notifications.rules import RULES, RULES_BY_KEY, Rule, ScanInput, event_rules

logger = logging.getLogger(__name__)

# An event older than this raises no alert (it still updates what the service knows): a new
# installation reading the stream's history, or a replay, must not mail the VP about last year's deals.
EVENT_ALERT_MAX_AGE = timedelta(days=2)


def now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------- raising alerts


async def raise_alerts(session: AsyncSession, rule: Rule, fired: Sequence[Fired], at: datetime) -> int:
    """Each verdict to each of its recipients who has not muted the rule, unless the same alert reached
    them within the rule's window: a feed entry, and an email if they take email. Returns how many."""
    if not fired:
        return 0
    people = await PeopleRepository(session).active()
    prefs = await PreferenceRepository(session).of([x.user_id for x in people])
    alerts, deliveries = AlertRepository(session), DeliveryRepository(session)
    raised = 0
    for verdict in fired:
        for person in recipients(rule.audience, verdict.owner, people):
            pref = prefs.get(person.user_id)
            if pref is not None and rule.key in (pref.muted_rules or []):
                continue
            if await alerts.fired_within(rule.key, verdict.key, person.user_id, at, rule.window):
                continue
            alert_id = await alerts.add({"rule": rule.key, "key": verdict.key, "user_id": person.user_id,
                                         "title": verdict.title, "why": verdict.why, "link": verdict.link,
                                         "fired_at": at})
            raised += 1
            if pref is None or pref.email:
                mail = emails.alert_email(rule, verdict, person)
                await deliveries.add({"kind": "alert", "rule": rule.key, "alert_id": alert_id,
                                      "user_id": person.user_id, "to": person.email, **mail,
                                      "next_attempt_at": _not_in_quiet_hours(person, pref)})
    if raised:
        logger.info("rule %s raised %d alert(s)", rule.key, raised)
    return raised


def _not_in_quiet_hours(person: Recipient, pref: Preference | None) -> datetime | None:
    if pref is None:
        return None
    return quiet_until(now(), person.time_zone, pref.quiet_from, pref.quiet_until)


# ------------------------------------------------------------------------------------------ events


async def on_events(session: AsyncSession, events: Sequence[Event]) -> None:
    """Any event some rule or copy needs: update the copies first, then evaluate the rules it triggers."""
    copy = PipelineCopyRepository(session)
    snapshots = (p.OpportunityCreatedV1 | p.OpportunityUpdatedV1 | p.OpportunityStageChangedV1
                 | p.OpportunityDeletedV1 | p.OpportunityRestoredV1)
    await copy.lock_deals([e.opportunity.id for e in events if isinstance(e, snapshots)])
    for event in events:
        if isinstance(event, snapshots):
            await copy.upsert_deal(event.opportunity)
        elif isinstance(event, p.PipelineSettingsChangedV1):
            await copy.put_settings(event.settings.version, event.settings.model_dump(mode="json"))
        elif isinstance(event, dl.DeadlineChangedV1):
            await copy.upsert_deadline(event.deadline)
        elif isinstance(event, sync.SyncRunFinishedV1):
            await copy.upsert_sync(event)
    settings = await copy.settings()
    cutoff = now() - EVENT_ALERT_MAX_AGE
    for event in events:
        if event.occurred_at < cutoff:
            continue
        for rule in event_rules(type(event)):
            assert rule.on_event is not None
            await raise_alerts(session, rule, rule.on_event(event, settings), event.occurred_at)


async def on_hourly(session: AsyncSession, events: Sequence[Event]) -> None:
    """The hourly tick: every scan rule over what the service knows, then the digests now due."""
    for tick in events:
        assert isinstance(tick, s.HourlyTickV1)
        await scan(session, tick.occurred_at)
        await send_digests(session, tick.occurred_at)


async def scan(session: AsyncSession, at: datetime) -> int:
    copy = PipelineCopyRepository(session)
    view = ScanInput(now=at, open_deals=await copy.open_deals(), settings=await copy.settings(),
                     open_deadlines=await copy.open_deadlines(), syncs=await copy.syncs())
    raised = 0
    for rule in RULES:
        if rule.scan is not None:
            raised += await raise_alerts(session, rule, rule.scan(view), at)
    return raised


async def send_digests(session: AsyncSession, at: datetime) -> int:
    """Queue the weekly digest for everyone whose Monday 08:00 (their time zone) has come this hour,
    once per person and week whatever the number of ticks, redeliveries or processes."""
    people = await PeopleRepository(session).active()
    prefs = await PreferenceRepository(session).of([x.user_id for x in people])
    deliveries = DeliveryRepository(session)
    queued = 0
    content: dict[str, Any] | None = None
    for person in people:
        pref = prefs.get(person.user_id)
        wants = pref.digest if pref is not None else person.role == "admin"
        week = digest_week(at, person.time_zone) if wants and (pref is None or pref.email) else None
        if week is None or await deliveries.digest_sent(person.user_id, week):
            continue
        if content is None:
            content = await digest.gather(session, at)
        mail = emails.digest_email(content, person, week)
        if await deliveries.add({"kind": "digest", "rule": None, "alert_id": None, "user_id": person.user_id,
                                 "to": person.email, "dedupe_key": f"digest:{person.user_id}:{week}", **mail,
                                 "next_attempt_at": None}):
            queued += 1
    return queued


async def send_digest_now(session: AsyncSession, cmd: n.SendDigestNow) -> n.DigestQueued:
    """This week's digest to one person now, outside the Monday schedule (at most once a minute)."""
    person = next((x for x in await PeopleRepository(session).active() if x.user_id == cmd.user_id), None)
    if person is None:
        raise NotFound("the notifications service does not know you yet; try again in a minute", field="user_id")
    at = now()
    year, week_number, _ = at.astimezone(zone(person.time_zone)).isocalendar()
    week = f"{year}-W{week_number:02d}"
    mail = emails.digest_email(await digest.gather(session, at), person, week)
    queued = await DeliveryRepository(session).add({
        "kind": "digest", "rule": None, "alert_id": None, "user_id": person.user_id, "to": person.email,
        "dedupe_key": f"digest-now:{person.user_id}:{at.isoformat(timespec='minutes')}", **mail,
        "next_attempt_at": None})
    if not queued:
        raise Conflict("a digest was queued for you a moment ago")
    return n.DigestQueued(to=person.email, week=week)


# ---------------------------------------------------------------------------------------- commands


async def sync_people(session: AsyncSession, cmd: n.SyncPeople) -> n.PeopleSynced:
    ids = [m.user_id for m in cmd.people]
    if len(set(ids)) != len(ids):
        raise Invalid("a person is listed twice", field="people")
    rows = [{"user_id": m.user_id, "email": m.email, "name": m.name, "role": m.role.value, "active": m.active,
             "time_zone": m.time_zone} for m in cmd.people]
    deactivated = await PeopleRepository(session).replace_all(rows)
    return n.PeopleSynced(people=len(rows), deactivated=deactivated)


async def list_rules(session: AsyncSession, cmd: n.ListRules) -> n.RuleList:
    return n.RuleList(items=[n.RuleInfo(
        key=r.key, title=r.title, description=r.description,
        trigger=", ".join(e.subject for e in r.on) if r.on else "schedule (hourly)",
        audience=r.audience.value, window_hours=int(r.window.total_seconds() // 3600)) for r in RULES])


def _alert(a: Alert) -> n.Alert:
    return n.Alert(id=a.id, rule=a.rule, title=a.title, why=a.why, link=a.link, created_at=a.created_at,
                   read_at=a.read_at)


async def list_feed(session: AsyncSession, cmd: n.ListFeed) -> n.Feed:
    items, total, unread = await AlertRepository(session).feed(cmd.user_id, unread_only=cmd.unread_only,
                                                               offset=cmd.offset, limit=cmd.limit)
    return n.Feed(items=[_alert(a) for a in items], total=total, unread=unread, offset=cmd.offset, limit=cmd.limit)


async def mark_read(session: AsyncSession, cmd: n.MarkAlertsRead) -> n.MarkedRead:
    return n.MarkedRead(marked=await AlertRepository(session).mark_read(cmd.user_id, cmd.alert_ids))


async def _preferences(session: AsyncSession, user_id: str) -> n.Preferences:
    people = {x.user_id: x for x in await PeopleRepository(session).active()}
    person = people.get(user_id)
    pref = (await PreferenceRepository(session).of([user_id])).get(user_id)
    tz = person.time_zone if person else "UTC"
    if pref is None:
        return n.Preferences(user_id=user_id, digest=person is not None and person.role == "admin", time_zone=tz)
    return n.Preferences(user_id=user_id, email=pref.email, digest=pref.digest, quiet_from=pref.quiet_from,
                         quiet_until=pref.quiet_until, muted_rules=list(pref.muted_rules or []), time_zone=tz)


async def get_preferences(session: AsyncSession, cmd: n.GetPreferences) -> n.Preferences:
    return await _preferences(session, cmd.user_id)


async def set_preferences(session: AsyncSession, cmd: n.SetPreferences) -> n.Preferences:
    unknown = sorted(set(cmd.muted_rules) - set(RULES_BY_KEY))
    if unknown:
        raise Invalid(f"no such rule: {', '.join(unknown)}", field="muted_rules")
    if (cmd.quiet_from is None) != (cmd.quiet_until is None):
        raise Invalid("give both ends of the quiet hours, or neither", field="quiet_until")
    await PreferenceRepository(session).put({
        "user_id": cmd.user_id, "email": cmd.email, "digest": cmd.digest, "quiet_from": cmd.quiet_from,
        "quiet_until": cmd.quiet_until, "muted_rules": sorted(set(cmd.muted_rules))})
    return await _preferences(session, cmd.user_id)


def delivery_view(d: EmailDelivery) -> n.Delivery:
    return n.Delivery(id=d.id, kind=d.kind, rule=d.rule, to=d.to, subject=d.subject,
                      status=n.DeliveryStatus(d.status), attempts=d.attempts, last_error=d.last_error,
                      next_attempt_at=d.next_attempt_at, sent_at=d.sent_at, created_at=d.created_at)


async def list_deliveries(session: AsyncSession, cmd: n.ListDeliveries) -> n.DeliveryList:
    rows, total = await DeliveryRepository(session).page(cmd.status.value if cmd.status else None,
                                                         cmd.offset, cmd.limit)
    return n.DeliveryList(items=[delivery_view(d) for d in rows], total=total, offset=cmd.offset, limit=cmd.limit)


async def retry_delivery(session: AsyncSession, cmd: n.RetryDelivery) -> n.Delivery:
    d = await DeliveryRepository(session).get(cmd.delivery_id)
    if d is None:
        raise NotFound("no such delivery", field="delivery_id")
    if d.status == "sent":
        raise Conflict("this email was sent already")
    d.status, d.next_attempt_at = "pending", None
    await session.flush()
    return delivery_view(d)
