"""The contacts area's settings (how strength is computed, roles, efforts, capacity) as stored."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import contacts as c
from services.relationships.contacts.repository import ContactRepository


async def settings_of(session: AsyncSession) -> c.RelationshipSettings:
    stored, version = await ContactRepository(session).settings()
    if stored is None:
        return c.RelationshipSettings()
    return c.RelationshipSettings.model_validate({**stored, "version": version})
