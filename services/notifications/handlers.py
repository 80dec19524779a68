"""What the notifications service answers on the bus: the events its rules and copies need (built from
the rule table), the hourly tick, and the gateway's commands. Thin: parse, call the service, return."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import deadlines as dl
from contracts import notifications as n
from contracts import pipeline as p
from contracts import schedules as s
from contracts import sync as sy
from contracts.base import Event
from runtime.inbox import Subscription
from runtime.service import ServiceDefinition
from services.notifications import delivery, schedules, service
from services.notifications.rules import triggering_events

CONSUMER = "notifications"

# Events kept for the scans (deals, settings, deadlines, sync health), whether or not a rule fires on them.
COPIED: tuple[type[Event], ...] = (p.OpportunityCreatedV1, p.OpportunityUpdatedV1, p.OpportunityStageChangedV1,
                                   p.OpportunityDeletedV1, p.OpportunityRestoredV1,
                                   p.PipelineSettingsChangedV1, dl.DeadlineChangedV1, sy.SyncRunFinishedV1)


async def _one(session: AsyncSession, event: Event) -> None:
    await service.on_events(session, [event])


async def _hourly(session: AsyncSession, event: Event) -> None:
    await service.on_hourly(session, [event])


def _subscriptions() -> tuple[Subscription, ...]:
    models: dict[str, type[Event]] = {m.subject: m for m in COPIED}
    for event in triggering_events():
        models.setdefault(event.subject, event)
    subs = [Subscription(consumer=CONSUMER, models=(m,), handle=_one, handle_many=service.on_events)
            for m in models.values()]
    subs.append(Subscription(consumer=CONSUMER, models=(s.HourlyTickV1,), handle=_hourly))
    return tuple(subs)


SUBSCRIPTIONS = _subscriptions()

definition = ServiceDefinition(
    name="notifications",
    publishes=(s.STREAM,),
    subscriptions=SUBSCRIPTIONS,
    commands=(
        (n.SyncPeople, service.sync_people),
        (n.ListRules, service.list_rules),
        (n.ListFeed, service.list_feed),
        (n.MarkAlertsRead, service.mark_read),
        (n.GetPreferences, service.get_preferences),
        (n.SetPreferences, service.set_preferences),
        (n.ListDeliveries, service.list_deliveries),
        (n.RetryDelivery, service.retry_delivery),
        (n.SendDigestNow, service.send_digest_now),
    ),
    workers=(delivery.sender, schedules.publish_plans),
)
