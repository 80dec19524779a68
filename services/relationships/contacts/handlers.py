"""What the contacts area answers on the bus: thin — parse, call, return. Of events it takes only the
hourly tick (the cooling scan): the service's shared pipeline copy (services/relationships/pipeline_copy.py)
keeps the deals, partners and rates it reads, and hands co-sell deals' people to contacts.team."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import contacts as c
from contracts import schedules
from contracts.base import Event
from runtime.inbox import Subscription
from services.relationships.contacts import cooling, imports, insight, service
from services.relationships.enablement import service as enablement


async def on_hourly_tick(session: AsyncSession, event: Event) -> None:
    """The bus's hourly tick (contracts/schedules.py): announce the crucial contacts that entered their
    warning window since the last hour (an index read of the contacts near cold, never every contact)."""
    await cooling.scan_cooling(session, c.ScanCooling(as_of=event.occurred_at, actor="schedule"))
    # Passes lapse with time: each partner's enablement score as of the tick (published only if it moved).
    await enablement.refresh(session, None, actor="schedule", now=event.occurred_at)


# The service's durable on the schedules stream (relationships__SCHEDULES). One subscription per subject
# and consumer (the inbox key): another area wanting the hourly tick adds its work to this handler.
SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(consumer="relationships", models=(schedules.HourlyTickV1,), handle=on_hourly_tick),
)

COMMANDS: tuple[tuple[type[Any], Callable[[AsyncSession, Any], Awaitable[Any]]], ...] = (
    (c.CreateContact, service.create_contact),
    (c.UpdateContact, service.update_contact),
    (c.GetContact, service.get_contact),
    (c.ListContacts, service.list_contacts),
    (c.LogInteraction, service.log_interaction),
    (c.DeleteInteraction, service.delete_interaction),
    (c.ImportContacts, imports.import_contacts),
    (c.ImportCalendar, imports.import_calendar),
    (c.GetHeatmap, insight.heatmap),
    (c.GetAttention, insight.attention),
    (c.GetRelationshipHealth, insight.health),
    (c.SetCapacity, service.set_capacity),
    (c.GetRelationshipSettings, service.get_settings),
    (c.UpdateRelationshipSettings, service.update_settings),
    (c.ScanCooling, cooling.scan_cooling),
)
