"""The audit log: who changed what, when, with the state before and after."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import AuditEntry
from runtime.telemetry import current_trace_id, redact


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, BaseModel):
        value = json.loads(value.model_dump_json())
    if isinstance(value, dict):
        return redact(value)
    return value


async def record(session: AsyncSession, *, actor: str, action: str, entity: str, entity_id: object = None,
                 before: Any = None, after: Any = None) -> None:
    session.add(AuditEntry(actor=actor, action=action, entity=entity,
                           entity_id=None if entity_id is None else str(entity_id),
                           before=_plain(before), after=_plain(after), trace_id=current_trace_id()))
