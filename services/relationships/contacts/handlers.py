"""What the contacts area answers on the bus: thin — parse, call, return. It consumes nothing of its own:
the service's shared pipeline copy (services/relationships/pipeline_copy.py) keeps the deals, partners
and rates it reads, and hands co-sell deals' people to contacts.team."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import contacts as c
from services.relationships.contacts import cooling, imports, insight, service

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
